//! `cargo xtask`: developer tasks of the power-loop workspace (see `xtask::tasks::USAGE`).

fn main() {
    std::process::exit(xtask::tasks::run(std::env::args().skip(1)));
}
