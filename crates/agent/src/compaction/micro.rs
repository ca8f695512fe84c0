//! Microcompaction: large tool outputs, except the most recent `hot_tail` ones, are
//! replaced in the in-memory history by a pointer to a spill file under `<home>/.cache/`. Store
//! rows are never modified. Improvements: spill files are named by session and seq (a re-send
//! rewrites the same file instead of piling up new ones), and without a home directory (or when
//! the write fails) the output is trimmed in place (head and tail kept) instead of aborting the
//! send.

use std::path::{Path, PathBuf};

use power_loop_contracts::{Content, Message, Role};

const SPILLED: &str = "[tool output saved to ";
const TRIMMED: &str = "[tool output trimmed by microcompact";

/// Microcompaction settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicroConfig {
    /// The most recent large outputs kept verbatim (`CONTEXT_MICRO_HOT_TAIL`, default 10).
    pub hot_tail: usize,
    /// Outputs longer than this many characters are candidates (`CONTEXT_MICRO_SIZE_LIMIT`,
    /// default 1000).
    pub size_limit: usize,
    /// The agent home; spill files go to `<home>/.cache/`. `None` = trim in place.
    pub home: Option<PathBuf>,
}

impl MicroConfig {
    /// Reads `CONTEXT_MICRO_HOT_TAIL` / `CONTEXT_MICRO_SIZE_LIMIT` (malformed values are logged
    /// and replaced by the defaults).
    pub fn from_env(home: Option<&Path>) -> Self {
        MicroConfig {
            hot_tail: env_usize("CONTEXT_MICRO_HOT_TAIL", 10),
            size_limit: env_usize("CONTEXT_MICRO_SIZE_LIMIT", 1000),
            home: home.map(Path::to_path_buf),
        }
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().unwrap_or_else(|_| {
            tracing::warn!(target: "power_loop::agent", %name, value = %v, "not a non-negative integer; using the default {default}");
            default
        }),
        _ => default,
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn trim_in_place(text: &str, name: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let head: String = chars.iter().take(400).collect();
    let tail: String = chars[chars.len().saturating_sub(200)..].iter().collect();
    format!(
        "{TRIMMED}, {name}, {} chars; middle omitted]\n{head}\n…\n{tail}",
        chars.len()
    )
}

/// Spills or trims every large tool output but the last `hot_tail`; returns how many messages
/// were rewritten. `seqs` (parallel to `history`, may be shorter) names the spill files.
pub fn microcompact(
    history: &mut [Message],
    seqs: &[Option<i64>],
    session_id: &str,
    cfg: &MicroConfig,
) -> usize {
    let candidates = candidates(history, cfg);
    let n = candidates.len().saturating_sub(cfg.hot_tail);
    for &i in &candidates[..n] {
        rewrite(&mut history[i], i, seqs, session_id, cfg);
    }
    n
}

/// Whether [`microcompact`] would rewrite anything (read-only check).
pub(crate) fn would_rewrite(history: &[Message], cfg: &MicroConfig) -> bool {
    candidates(history, cfg).len() > cfg.hot_tail
}

/// Indices of the large tool outputs not yet spilled or trimmed.
fn candidates(history: &[Message], cfg: &MicroConfig) -> Vec<usize> {
    history
        .iter()
        .enumerate()
        .filter(|(_, m)| m.role == Role::Tool)
        .filter(|(_, m)| match &m.content {
            Some(Content::Text(t)) => {
                !t.starts_with(SPILLED)
                    && !t.starts_with(TRIMMED)
                    && t.chars().count() > cfg.size_limit
            }
            _ => false,
        })
        .map(|(i, _)| i)
        .collect()
}

/// Spills (or trims) the tool output `m` at history index `i`.
fn rewrite(m: &mut Message, i: usize, seqs: &[Option<i64>], session_id: &str, cfg: &MicroConfig) {
    {
        let text = m.text();
        let name = m.name.clone().unwrap_or_else(|| "tool".to_owned());
        let key = match seqs.get(i).copied().flatten() {
            Some(s) => format!("{s:06}"),
            None => format!("mem{i}"),
        };
        let replaced = cfg
            .home
            .as_ref()
            .and_then(|home| {
                let dir = home.join(".cache");
                let path = dir.join(format!("tool_{}_{key}.md", sanitize(session_id)));
                let body = format!("# Tool output: {name}\n\n{text}\n");
                let same = std::fs::read_to_string(&path).is_ok_and(|b| b == body);
                let ok = same
                    || (std::fs::create_dir_all(&dir).is_ok()
                        && std::fs::write(&path, body).is_ok());
                if !ok {
                    tracing::warn!(target: "power_loop::agent", path = %path.display(), "could not write the tool-output spill file; trimming in place");
                }
                ok.then(|| {
                    format!(
                        "{SPILLED}{}, {name}, {} chars]",
                        path.display(),
                        text.chars().count()
                    )
                })
            })
            .unwrap_or_else(|| trim_in_place(&text, &name));
        m.content = Some(Content::Text(replaced));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big(n: usize) -> Message {
        Message::tool("c", "x".repeat(n)).with_name("bash")
    }

    #[test]
    fn spills_all_but_hot_tail() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = MicroConfig {
            hot_tail: 1,
            size_limit: 10,
            home: Some(dir.path().to_path_buf()),
        };
        let mut h = vec![Message::user("u"), big(50), big(5), big(60), big(70)];
        let seqs = vec![Some(1), Some(2), Some(3), Some(4), Some(5)];
        assert_eq!(microcompact(&mut h, &seqs, "s/1", &cfg), 2);
        assert!(h[1].text().starts_with(SPILLED));
        assert!(h[1].text().ends_with(", bash, 50 chars]"));
        assert_eq!(h[2].text(), "xxxxx");
        assert!(h[3].text().starts_with(SPILLED));
        assert_eq!(h[4].text().len(), 70);
        let f = dir.path().join(".cache").join("tool_s_1_000002.md");
        assert!(
            std::fs::read_to_string(f)
                .unwrap()
                .contains(&"x".repeat(50))
        );
        // idempotent: nothing left to spill
        assert_eq!(microcompact(&mut h, &seqs, "s/1", &cfg), 0);
    }

    #[test]
    fn trims_without_home() {
        let cfg = MicroConfig {
            hot_tail: 0,
            size_limit: 10,
            home: None,
        };
        let mut h = vec![big(5000)];
        assert_eq!(microcompact(&mut h, &[], "s", &cfg), 1);
        assert!(h[0].text().starts_with(TRIMMED));
        assert!(h[0].text().len() < 700);
    }
}
