//! Benchmark workloads for power-loop.
//!
//! `power-loop-bench --workload <name> [--key value …]` runs one workload and prints ONE JSON
//! line on stdout (diagnostics go to stderr). Workloads live in [`workloads`], one module each;
//! add a new one by adding a module and a row to [`workloads::WORKLOADS`].
//!
//! # Owns
//! The benchmark binary and its workloads. Not a timed test: numbers are printed, not asserted.
//!
//! # Must not import
//! Nothing is off limits (it is a leaf binary), but workloads use public APIs only.
//!
//! # Seams
//! None: a leaf binary.
//!
//! # Feature flags
//! None.
//!
//! # Stability
//! Not published; its output keys may change with the workloads.

mod args;
mod workloads;

use std::process::ExitCode;

fn usage() -> String {
    let names: Vec<&str> = workloads::WORKLOADS
        .iter()
        .filter(|w| !w.hidden)
        .map(|w| w.name)
        .collect();
    format!(
        "usage: power-loop-bench --workload <{}> [--dsn DSN | --pg | --mysql] [--table-prefix P] [--pool N] [--lease on|off] [--synchronous FULL|NORMAL] [--group-commit on|off] [--dir PATH]\n\
         \x20 store: [--turns N] [--rounds N] [--window N] [--runtime current_thread|multi_thread]\n\
         \x20 W1/W6: [--sends N]   W2: [--sends N]   W3: [--turns N] [--runs N]\n\
         \x20 W4: [--sessions N] [--sends N] [--in-flight N]   W5: [--items N] [--concurrency N] [--journal on|off] [--executor in-process|subprocess|fleet] [--workers N]\n\
         \x20 W7: [--sessions N] [--sends N] [--in-flight N] [--latency-ms N] [--workers 1,2,4] [--lease-wait-ms N] [--smoke] [--fight]   W7-fight: the same keys\n\
         \x20 --pg uses POWER_LOOP_TEST_PG_DSN, --mysql POWER_LOOP_TEST_MYSQL_DSN; without --dsn/--pg each workload runs on a fresh SQLite file",
        names.join("|")
    )
}

fn main() -> ExitCode {
    let args = match args::Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("power-loop-bench: {msg}\n{}", usage());
            return ExitCode::from(2);
        }
    };
    if args.help {
        println!("{}", usage());
        return ExitCode::SUCCESS;
    }
    let Some(name) = args.workload.as_deref() else {
        eprintln!("power-loop-bench: --workload is required\n{}", usage());
        return ExitCode::from(2);
    };
    let Some(workload) = workloads::WORKLOADS.iter().find(|w| w.name == name) else {
        eprintln!("power-loop-bench: unknown workload `{name}`\n{}", usage());
        return ExitCode::from(2);
    };
    match (workload.run)(&args) {
        Ok(serde_json::Value::Null) => ExitCode::SUCCESS,
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("power-loop-bench: workload `{name}` failed: {e}");
            ExitCode::FAILURE
        }
    }
}
