//! The `power-loop` command-line tool (filled by the agent-loop issue).

fn main() {
    eprintln!("power-loop: not built yet");
    std::process::exit(2);
}
