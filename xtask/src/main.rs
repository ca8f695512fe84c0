//! Developer tasks for the power-loop workspace (filled by the foundation issue).

fn main() {
    eprintln!("xtask: no task yet");
    std::process::exit(2);
}
