//! Unit tests of the lexer and the built-in rules (the table kept from the first policy).
use super::*;

fn words(s: &str) -> Vec<Vec<String>> {
    split_commands(s).into_iter().map(|c| c.words).collect()
}

#[test]
fn splits_on_operators_and_quotes() {
    assert_eq!(
        words("echo 'a;b' && ls -l | wc -l; x=1 cat \"f g\""),
        vec![
            vec!["echo", "a;b"],
            vec!["ls", "-l"],
            vec!["wc", "-l"],
            vec!["cat", "f g"]
        ]
    );
    let c = &split_commands("echo hi > out.txt 2>&1")[0];
    assert_eq!(c.words, vec!["echo", "hi"]);
    assert_eq!(c.redirects, vec!["out.txt", "1"]);
    assert_eq!(
        words("cat <<EOF\nshutdown now\nEOF\necho ok"),
        vec![vec!["cat"], vec!["echo", "ok"]]
    );
    assert_eq!(
        words("echo $(reboot)"),
        vec![vec!["echo", "$(…)"], vec!["reboot"]]
    );
}

#[test]
fn policy_table() {
    let p = CommandPolicy::default();
    let allowed = [
        "echo halt",
        "grep shutdown log.txt",
        "cat reboot.md",
        "ls -la",
        "rm -rf build",
        "rm -rf ./target/debug",
        "rm -rf /tmp/work-123",
        "echo 'rm -rf /'",
        "git commit -m 'reboot the plan'",
        "man dd",
        "echo dd",
        "python3 -c 'print(1)'",
        "cat /dev/null > out.txt",
        "echo x > /dev/null",
        "find . -name '*.rs' | xargs grep -n shutdown",
        "printf 'mkfs\\n'",
        "echo su",
        "chmod -R 755 ./scripts",
        "dd if=/dev/zero of=./disk.img bs=1M count=1",
    ];
    for c in allowed {
        assert_eq!(p.check(c), PolicyDecision::Allow, "should allow: {c}");
    }
    // The denied commands of the first table are all in `DESTRUCTIVE` of tests/policy.rs,
    // checked there with and without a workspace.
}

#[test]
fn rules_are_data() {
    let json = serde_json::to_string(&CommandPolicy::default()).unwrap();
    let back: CommandPolicy = serde_json::from_str(&json).unwrap();
    assert_eq!(back, CommandPolicy::default());
    let custom = CommandPolicy::allow_all().with_rule(PolicyRule {
        id: "no_curl".into(),
        reason: "no downloads".into(),
        matcher: RuleMatch::Program {
            names: vec!["curl".into()],
        },
    });
    assert!(matches!(
        custom.check("curl x"),
        PolicyDecision::Deny { .. }
    ));
    assert_eq!(custom.check("reboot"), PolicyDecision::Allow);
}
