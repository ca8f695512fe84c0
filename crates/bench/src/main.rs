//! Benchmark workloads for power-loop (filled by the store and bench issues).

fn main() {
    eprintln!("power-loop-bench: no workload yet");
    std::process::exit(2);
}
