//! `${VAR}` / `${VAR:-default}` expansion, as Claude Code and editors do in `mcpServers` files.

/// Expands `${VAR}` and `${VAR:-default}` in `input` with `lookup`. A `$` not followed by `{` is
/// kept. An unset variable without a default is an error naming it (so a missing token never
/// becomes an empty `Authorization` header silently).
pub fn expand_env_vars(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("unclosed `${{` in {input:?}"));
        };
        let body = &after[..end];
        let (name, default) = match body.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (body, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`${{{body}}}` is not a valid variable reference"));
        }
        match (lookup(name), default) {
            (Some(v), _) => out.push_str(&v),
            (None, Some(d)) => out.push_str(d),
            (None, None) => {
                return Err(format!(
                    "environment variable {name} is not set (referenced as `${{{name}}}`; use `${{{name}:-default}}` for a default)"
                ));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::expand_env_vars;

    fn env(k: &str) -> Option<String> {
        (k == "TOKEN").then(|| "abc".to_owned())
    }

    #[test]
    fn expands_set_default_and_plain_dollars() {
        assert_eq!(
            expand_env_vars("Bearer ${TOKEN}", &env).unwrap(),
            "Bearer abc"
        );
        assert_eq!(
            expand_env_vars("${NOPE:-x}/${TOKEN}", &env).unwrap(),
            "x/abc"
        );
        assert_eq!(expand_env_vars("$HOME and $", &env).unwrap(), "$HOME and $");
    }

    #[test]
    fn unset_or_malformed_references_are_errors() {
        assert!(
            expand_env_vars("${NOPE}", &env)
                .unwrap_err()
                .contains("NOPE is not set")
        );
        assert!(expand_env_vars("${TOKEN", &env).is_err());
        assert!(expand_env_vars("${a b}", &env).is_err());
    }
}
