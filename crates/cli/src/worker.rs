//! `power-loop worker`: serves one workflow leaf over stdin/stdout (the worker protocol of
//! `power_loop::SubprocessExecutor`). The parent starts it; it is not meant for a terminal.

use power_loop::{StoreOptions, WorkerHost};

/// Runs the worker on this process's stdin/stdout; true when it reported a result.
pub(crate) async fn run() -> bool {
    let host = WorkerHost::new(|dsn, prefix| {
        Box::pin(async move {
            power_loop::open_store(&dsn, StoreOptions::default().with_table_prefix(prefix)).await
        })
    });
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let code = power_loop::serve_worker(host, stdin, tokio::io::stdout()).await;
    code == 0
}
