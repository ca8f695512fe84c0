//! A unified diff of two line lists (difflib-style output, 3 lines of context).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Equal,
    Replace,
    Delete,
    Insert,
}

type Op = (Tag, usize, usize, usize, usize);

const DP_LIMIT: usize = 4_000_000;

fn opcodes(a: &[&str], b: &[&str]) -> Vec<Op> {
    let mut pre = 0;
    while pre < a.len() && pre < b.len() && a[pre] == b[pre] {
        pre += 1;
    }
    let mut suf = 0;
    while suf < a.len() - pre && suf < b.len() - pre && a[a.len() - 1 - suf] == b[b.len() - 1 - suf]
    {
        suf += 1;
    }
    let (am, bm) = (&a[pre..a.len() - suf], &b[pre..b.len() - suf]);
    // matched pairs (i, j) in the middle, by LCS (or none when too large)
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    if !am.is_empty() && !bm.is_empty() && am.len() * bm.len() <= DP_LIMIT {
        let (n, m) = (am.len(), bm.len());
        let mut dp = vec![0u32; (n + 1) * (m + 1)];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                dp[i * (m + 1) + j] = if am[i] == bm[j] {
                    dp[(i + 1) * (m + 1) + j + 1] + 1
                } else {
                    dp[(i + 1) * (m + 1) + j].max(dp[i * (m + 1) + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n && j < m {
            if am[i] == bm[j] {
                pairs.push((i + pre, j + pre));
                i += 1;
                j += 1;
            } else if dp[(i + 1) * (m + 1) + j] >= dp[i * (m + 1) + j + 1] {
                i += 1;
            } else {
                j += 1;
            }
        }
    }
    let mut all: Vec<(usize, usize)> = (0..pre).map(|k| (k, k)).collect();
    all.extend(pairs);
    all.extend((0..suf).map(|k| (a.len() - suf + k, b.len() - suf + k)));
    let mut ops: Vec<Op> = Vec::new();
    let (mut i, mut j) = (0, 0);
    let mut k = 0;
    while k <= all.len() {
        let (mi, mj) = all.get(k).copied().unwrap_or((a.len(), b.len()));
        if i < mi || j < mj {
            let tag = match (i < mi, j < mj) {
                (true, true) => Tag::Replace,
                (true, false) => Tag::Delete,
                _ => Tag::Insert,
            };
            ops.push((tag, i, mi, j, mj));
        }
        if k == all.len() {
            break;
        }
        // run of equal pairs
        let (si, sj) = (mi, mj);
        let mut len = 0;
        while let Some(&(pi, pj)) = all.get(k) {
            if pi == si + len && pj == sj + len {
                len += 1;
                k += 1;
            } else {
                break;
            }
        }
        ops.push((Tag::Equal, si, si + len, sj, sj + len));
        i = si + len;
        j = sj + len;
    }
    ops
}

fn grouped(mut codes: Vec<Op>, n: usize) -> Vec<Vec<Op>> {
    if codes.is_empty() {
        codes.push((Tag::Equal, 0, 1, 0, 1));
    }
    if let Some(first) = codes.first_mut()
        && first.0 == Tag::Equal
    {
        first.1 = first.1.max(first.2.saturating_sub(n));
        first.3 = first.3.max(first.4.saturating_sub(n));
    }
    if let Some(last) = codes.last_mut()
        && last.0 == Tag::Equal
    {
        last.2 = last.2.min(last.1 + n);
        last.4 = last.4.min(last.3 + n);
    }
    let nn = n + n;
    let mut groups = Vec::new();
    let mut group: Vec<Op> = Vec::new();
    for (tag, mut i1, i2, mut j1, j2) in codes {
        if tag == Tag::Equal && i2 - i1 > nn {
            group.push((tag, i1, i2.min(i1 + n), j1, j2.min(j1 + n)));
            groups.push(std::mem::take(&mut group));
            i1 = i1.max(i2.saturating_sub(n));
            j1 = j1.max(j2.saturating_sub(n));
        }
        group.push((tag, i1, i2, j1, j2));
    }
    let only_equal = group.len() == 1 && group[0].0 == Tag::Equal;
    if !group.is_empty() && !only_equal {
        groups.push(group);
    }
    groups
}

fn range(start: usize, stop: usize) -> String {
    let mut beginning = start + 1;
    let length = stop - start;
    if length == 1 {
        return beginning.to_string();
    }
    if length == 0 {
        beginning -= 1;
    }
    format!("{beginning},{length}")
}

/// Unified diff with headers `--- before` / `+++ after`, lines joined by `\n`.
pub(crate) fn unified_diff(a: &[&str], b: &[&str]) -> String {
    let groups = grouped(opcodes(a, b), 3);
    if groups.is_empty() {
        return String::new();
    }
    let mut out = vec!["--- before".to_owned(), "+++ after".to_owned()];
    for g in groups {
        let (first, last) = (g[0], g[g.len() - 1]);
        out.push(format!(
            "@@ -{} +{} @@",
            range(first.1, last.2),
            range(first.3, last.4)
        ));
        for (tag, i1, i2, j1, j2) in g {
            if tag == Tag::Equal {
                out.extend(a[i1..i2].iter().map(|l| format!(" {l}")));
                continue;
            }
            if matches!(tag, Tag::Replace | Tag::Delete) {
                out.extend(a[i1..i2].iter().map(|l| format!("-{l}")));
            }
            if matches!(tag, Tag::Replace | Tag::Insert) {
                out.extend(b[j1..j2].iter().map(|l| format!("+{l}")));
            }
        }
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_shape() {
        let a: Vec<String> = (1..=10).map(|i| format!("l{i}")).collect();
        let mut b = a.clone();
        b[4] = "changed".into();
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let b: Vec<&str> = b.iter().map(String::as_str).collect();
        let d = unified_diff(&a, &b);
        assert_eq!(
            d,
            "--- before\n+++ after\n@@ -2,7 +2,7 @@\n l2\n l3\n l4\n-l5\n+changed\n l6\n l7\n l8"
        );
        assert_eq!(unified_diff(&a, &a), "");
        let d = unified_diff(&[], &["x"]);
        assert_eq!(d, "--- before\n+++ after\n@@ -0,0 +1 @@\n+x");
    }
}
