//! Tool names that OpenAI and Anthropic both accept (`^[a-zA-Z0-9_-]{1,64}$`), unique per registry.

use std::collections::HashSet;

/// The longest name providers accept.
pub const MAX_TOOL_NAME_LEN: usize = 64;

/// Maps `raw` onto `[A-Za-z0-9_-]{1,64}`: every other character becomes `_`; a name longer than
/// 64 keeps its first 55 characters plus `_` and 8 hex digits of a hash of the whole name (so two
/// long names that share a beginning stay apart); an empty name becomes `tool`.
pub fn sanitize_tool_name(raw: &str) -> String {
    let mut s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        s.push_str("tool");
    }
    if s.len() > MAX_TOOL_NAME_LEN {
        let hash = fnv1a(raw.as_bytes());
        s.truncate(MAX_TOOL_NAME_LEN - 9);
        s.push_str(&format!("_{:08x}", hash as u32));
    }
    s
}

/// Whether `name` already matches `^[a-zA-Z0-9_-]{1,64}$`.
pub fn is_portable_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_TOOL_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Hands out sanitized names that stay unique: a clash gets `_2`, `_3`, … (shortened to fit).
#[derive(Debug, Default, Clone)]
pub(crate) struct NameAllocator {
    taken: HashSet<String>,
}

impl NameAllocator {
    /// An allocator that avoids `taken` (e.g. the tools already in a registry).
    pub(crate) fn with_taken(taken: impl IntoIterator<Item = String>) -> Self {
        NameAllocator {
            taken: taken.into_iter().collect(),
        }
    }

    /// Marks `name` as used (a name kept from an earlier listing).
    pub(crate) fn reserve(&mut self, name: &str) {
        self.taken.insert(name.to_owned());
    }

    /// A fresh unique name for `prefix + remote`.
    pub(crate) fn allocate(&mut self, prefix: &str, remote: &str) -> String {
        let base = sanitize_tool_name(&format!("{prefix}{remote}"));
        if self.taken.insert(base.clone()) {
            return base;
        }
        for n in 2u32.. {
            let suffix = format!("_{n}");
            let mut candidate = base.clone();
            candidate.truncate(MAX_TOOL_NAME_LEN - suffix.len());
            candidate.push_str(&suffix);
            if self.taken.insert(candidate.clone()) {
                return candidate;
            }
        }
        unreachable!("u32 suffixes are not exhausted")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_portable_and_stable() {
        assert_eq!(sanitize_tool_name("fs.read_file"), "fs_read_file");
        assert_eq!(sanitize_tool_name("get-sum"), "get-sum");
        assert_eq!(sanitize_tool_name("héllo wörld!"), "h_llo_w_rld_");
        assert_eq!(sanitize_tool_name(""), "tool");
        let long = "x".repeat(100);
        let a = sanitize_tool_name(&long);
        assert_eq!(a.len(), 64);
        assert_eq!(a, sanitize_tool_name(&long));
        assert_ne!(a, sanitize_tool_name(&format!("{long}y")));
        for n in ["fs.read", &long, "a/b", "ok"] {
            assert!(is_portable_tool_name(&sanitize_tool_name(n)));
        }
    }

    #[test]
    fn clashes_after_sanitizing_get_suffixes() {
        let mut a = NameAllocator::with_taken(["fs_read".to_owned()]);
        assert_eq!(a.allocate("fs_", "read"), "fs_read_2");
        assert_eq!(a.allocate("fs_", "read!"), "fs_read_");
        assert_eq!(a.allocate("fs_", "read?"), "fs_read__2");
        let long = "y".repeat(80);
        let first = a.allocate("", &long);
        let second = a.allocate("", &long);
        assert_ne!(first, second);
        assert!(second.len() <= 64 && is_portable_tool_name(&second));
    }
}
