#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `power-loop schema print-ddl`: the provisioning script of the DSN's backend, rendered with the
//! dialect its backend descriptor carries, without connecting (the server DSNs below point
//! nowhere).

use std::process::Command;

/// The script printed for `dsn` with table prefix `t_`, one statement per line.
fn print_ddl(dsn: &str) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_power-loop"))
        .args(["--dsn", dsn, "--table-prefix", "t_", "schema", "print-ddl"])
        .env_remove("POWER_LOOP_DSN")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "print-ddl {dsn} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The `CREATE TABLE` line of the sessions table.
fn sessions_line(lines: &[String]) -> &str {
    lines
        .iter()
        .find(|l| l.starts_with("CREATE TABLE IF NOT EXISTS t_sessions "))
        .expect("a sessions table")
}

#[test]
fn each_backend_prints_its_own_dialect_without_connecting() {
    let sqlite = print_ddl("sqlite://:memory:");
    let postgres = print_ddl("postgres://nobody@127.0.0.1:1/none");
    let mysql = print_ddl("mysql://nobody@127.0.0.1:1/none");
    for lines in [&sqlite, &postgres, &mysql] {
        assert!(lines.iter().all(|l| l.ends_with(';')), "{lines:?}");
        assert!(lines[0].contains("t_schema_migrations"), "{lines:?}");
    }
    assert!(sessions_line(&sqlite).contains("created_at INTEGER NOT NULL"));
    assert!(sessions_line(&postgres).contains("created_at BIGINT NOT NULL"));
    assert!(sessions_line(&mysql).contains("session_id VARCHAR(255) NOT NULL"));
    assert!(sessions_line(&mysql).ends_with("ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;"));
}

#[test]
fn a_dsn_without_a_backend_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_power-loop"))
        .args(["--dsn", "oracle://x/y", "schema", "print-ddl"])
        .env_remove("POWER_LOOP_DSN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("oracle"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
