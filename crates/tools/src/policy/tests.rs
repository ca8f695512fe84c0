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
    let blocked = [
        ("rm -rf /", "recursive_delete_system"),
        ("rm -rf / --no-preserve-root", "recursive_delete_system"),
        ("rm -fr /*", "recursive_delete_system"),
        ("rm -r ~", "recursive_delete_system"),
        ("rm -rf $HOME", "recursive_delete_system"),
        ("rm -rf /etc", "recursive_delete_system"),
        ("rm -rf /usr/lib/", "recursive_delete_system"),
        ("cd x && rm -Rf //", "recursive_delete_system"),
        ("sudo ls", "privileged"),
        ("su -", "privileged"),
        ("shutdown -h now", "power"),
        ("/sbin/reboot", "power"),
        ("halt", "power"),
        ("echo ok; poweroff", "power"),
        ("systemctl reboot", "power_systemctl"),
        ("mkfs -t ext4 /dev/sda1", "filesystem_format"),
        ("mkfs.ext4 /dev/sdb", "filesystem_format"),
        ("dd if=/dev/zero of=/dev/sda", "raw_device_write"),
        ("cat img > /dev/nvme0n1", "raw_device_write"),
        ("shred /dev/sda", "raw_device_write"),
        (":(){ :|:& };:", "fork_bomb"),
        ("bomb() { bomb | bomb & }; bomb", "fork_bomb"),
        ("bash -c 'rm -rf /'", "recursive_delete_system"),
        ("sh -c \"shutdown now\"", "power"),
        ("env FOO=1 reboot", "power"),
        ("nohup timeout 5 reboot &", "power"),
        ("echo $(reboot)", "power"),
        ("echo `halt`", "power"),
        ("eval 'reboot'", "power"),
        ("if true; then reboot; fi", "power"),
        ("chmod -R 777 /", "recursive_permissions_system"),
    ];
    for (c, rule) in blocked {
        match p.check(c) {
            PolicyDecision::Deny { rule: r, .. } => assert_eq!(r, rule, "{c}"),
            PolicyDecision::Allow => panic!("should block: {c}"),
        }
    }
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
