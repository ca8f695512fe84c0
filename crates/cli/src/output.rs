//! Output helpers: pipe-safe printing to stdout, human tables with headers, readable times,
//! JSON lines, and progress bars on stderr.

use std::io::Write;

use comfy_table::{ContentArrangement, Table, presets};
use indicatif::{ProgressBar, ProgressStyle};
use power_loop::{Error, Result};

use crate::exit;

/// Writes `text` to stdout. A closed pipe (`| head`) becomes the quiet
/// [`exit::broken_pipe`] error, never a panic.
pub(crate) fn out(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(map_io)
}

/// Writes `text` and a newline to stdout (see [`out`]).
pub(crate) fn line(text: impl std::fmt::Display) -> Result<()> {
    out(&format!("{text}\n"))
}

/// Writes one compact JSON value and a newline to stdout.
pub(crate) fn json(value: &serde_json::Value) -> Result<()> {
    line(serde_json::to_string(value)?)
}

fn map_io(e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        exit::broken_pipe()
    } else {
        Error::from(e)
    }
}

/// A human table with a header row (no borders, fits the terminal width when there is one).
pub(crate) fn table<I, S>(header: I) -> Table
where
    I: IntoIterator<Item = S>,
    S: Into<comfy_table::Cell>,
{
    let mut t = Table::new();
    t.load_preset(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header);
    t
}

/// Prints a table to stdout (a message on stderr instead when it has no rows).
pub(crate) fn print_table(t: &Table, empty: &str) -> Result<()> {
    if t.row_count() == 0 {
        eprintln!("{empty}");
        return Ok(());
    }
    let text = t.to_string();
    // The preset draws its (blank) left border as one space: flush the table left.
    let trimmed: Vec<&str> = text
        .lines()
        .map(|l| l.strip_prefix(' ').unwrap_or(l).trim_end())
        .collect();
    line(trimmed.join("\n"))
}

/// `2026-12-06 21:02:49 UTC` for epoch milliseconds.
pub(crate) fn time(ms: i64) -> String {
    format!(
        "{} UTC",
        power_loop::CivilDateTime::from_epoch_ms(ms).date_time()
    )
}

/// `3 min ago`-style age of an epoch-milliseconds time, relative to now.
pub(crate) fn age(ms: i64) -> String {
    let now = power_loop_now_ms();
    let d = (now - ms).max(0) / 1000;
    match d {
        0..60 => format!("{d} s ago"),
        60..3_600 => format!("{} min ago", d / 60),
        3_600..86_400 => format!("{} h ago", d / 3_600),
        _ => format!("{} d ago", d / 86_400),
    }
}

/// The wall clock in epoch milliseconds.
pub(crate) fn power_loop_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A progress bar on stderr for `len` items (hidden when stderr is not a terminal, or for
/// small jobs).
pub(crate) fn progress(len: u64, what: &str) -> ProgressBar {
    if len < 20 {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

/// Parses a duration such as `30d`, `12h`, `45m`, `90s` or `500ms` (a bare number is days).
pub(crate) fn parse_duration_ms(text: &str) -> Result<i64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: i64 = num.parse().map_err(|_| {
        exit::usage(format!(
            "`{text}` is not a duration; use e.g. 30d, 12h, 45m, 90s"
        ))
    })?;
    let scale = match unit.trim() {
        "" | "d" | "day" | "days" => 86_400_000,
        "h" | "hour" | "hours" => 3_600_000,
        "m" | "min" | "minutes" => 60_000,
        "s" | "sec" | "seconds" => 1_000,
        "ms" => 1,
        other => {
            return Err(exit::usage(format!(
                "unknown duration unit `{other}` in `{text}`; use d, h, m, s or ms"
            )));
        }
    };
    Ok(n.saturating_mul(scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration_ms("30d").unwrap(), 30 * 86_400_000);
        assert_eq!(parse_duration_ms("2").unwrap(), 2 * 86_400_000);
        assert_eq!(parse_duration_ms("90s").unwrap(), 90_000);
        assert_eq!(parse_duration_ms("45m").unwrap(), 45 * 60_000);
        assert!(parse_duration_ms("x").is_err());
        assert!(parse_duration_ms("3y").is_err());
    }
}
