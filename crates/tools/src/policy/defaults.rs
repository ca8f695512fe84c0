//! The built-in rules of [`CommandPolicy::default`](super::CommandPolicy::default).

use super::{PolicyRule, RuleMatch};

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Top-level system directories protected with everything below them.
pub(super) const SYSTEM_TREES: &[&str] = &[
    "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/opt",
    "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/usr", "/var",
];

/// Shells: `-c` scripts and scripts read from stdin are analysed.
pub(super) const SHELLS: &[&str] = &[
    "sh",
    "bash",
    "dash",
    "zsh",
    "ksh",
    "mksh",
    "ash",
    "fish",
    "rbash",
    "busybox-sh",
];

fn rule(id: &str, reason: &str, matcher: RuleMatch) -> PolicyRule {
    PolicyRule {
        id: id.into(),
        reason: reason.into(),
        matcher,
    }
}

fn with_arg(program: &str, args: &[&str]) -> RuleMatch {
    RuleMatch::ProgramWithArg {
        program: program.into(),
        args: strings(args),
    }
}

const POWER: &str = "shutting down, rebooting or suspending the machine is not allowed";

pub(super) fn default_rules() -> Vec<PolicyRule> {
    // The power verbs `loginctl` takes; `systemctl` takes them and more.
    let power_verbs = [
        "poweroff",
        "reboot",
        "halt",
        "kexec",
        "suspend",
        "hibernate",
        "hybrid-sleep",
    ];
    let systemctl_only = [
        "suspend-then-hibernate",
        "soft-reboot",
        "rescue",
        "emergency",
        "poweroff.target",
        "reboot.target",
        "halt.target",
        "kexec.target",
        "rescue.target",
        "emergency.target",
        "suspend.target",
        "hibernate.target",
        "soft-reboot.target",
        "ctrl-alt-del.target",
        "exit.target",
    ];
    let power_units = [power_verbs.as_slice(), systemctl_only.as_slice()].concat();
    vec![
        rule(
            "privileged",
            "privilege escalation or leaving the sandbox's root (sudo/su/doas/chroot/nsenter) is not allowed; run the command without it",
            RuleMatch::Program {
                names: strings(&[
                    "sudo", "su", "doas", "pkexec", "chroot", "nsenter", "runuser", "capsh",
                ]),
            },
        ),
        rule(
            "power",
            POWER,
            RuleMatch::Program {
                names: strings(&["shutdown", "reboot", "halt", "poweroff", "kexec"]),
            },
        ),
        rule(
            "power_systemctl",
            POWER,
            with_arg("systemctl", &power_units),
        ),
        rule("power_loginctl", POWER, with_arg("loginctl", &power_verbs)),
        rule(
            "power_init",
            "changing the init runlevel is not allowed",
            with_arg("init", &["0", "6", "1", "s", "S"]),
        ),
        rule(
            "power_telinit",
            "changing the init runlevel is not allowed",
            with_arg("telinit", &["0", "6", "1", "s", "S"]),
        ),
        rule(
            "filesystem_format",
            "formatting or repartitioning disks is not allowed",
            RuleMatch::Program {
                names: strings(&[
                    "mkfs", "mkfs.*", "mke2fs", "mkswap", "mkdosfs", "mkntfs", "wipefs", "fdisk",
                    "sfdisk", "cfdisk", "gdisk", "sgdisk", "parted", "diskutil",
                ]),
            },
        ),
        rule(
            "recursive_delete_system",
            "refusing recursive/forced deletion of a root, home or system path; delete paths inside the workspace, written literally",
            RuleMatch::ProtectedTarget {
                programs: strings(&["rm"]),
                flags: strings(&[
                    "r",
                    "R",
                    "f",
                    "--recursive",
                    "--force",
                    "--no-preserve-root",
                ]),
                protected: strings(&["/", "/*", "~", "~/", "~/*", "$HOME", "${HOME}"]),
                protected_trees: strings(SYSTEM_TREES),
            },
        ),
        rule(
            "find_delete_system",
            "refusing `find -delete`/`-exec` starting at a root, home or system path; start find inside the workspace",
            RuleMatch::ProtectedTarget {
                programs: strings(&["find"]),
                flags: strings(&["-delete", "-exec", "-execdir", "-ok", "-okdir"]),
                protected: strings(&["/", "~"]),
                protected_trees: strings(SYSTEM_TREES),
            },
        ),
        rule(
            "move_system",
            "refusing to move a root, home or system path (or to move files onto one); move files inside the workspace",
            RuleMatch::ProtectedTarget {
                programs: strings(&["mv"]),
                flags: Vec::new(),
                protected: strings(&["/", "~"]),
                protected_trees: strings(SYSTEM_TREES),
            },
        ),
        rule(
            "recursive_permissions_system",
            "refusing recursive permission/owner changes of a root or system path",
            RuleMatch::ProtectedTarget {
                programs: strings(&["chmod", "chown", "chgrp"]),
                flags: strings(&["R", "--recursive"]),
                protected: strings(&["/", "/*", "~", "~/", "$HOME", "${HOME}"]),
                protected_trees: strings(SYSTEM_TREES),
            },
        ),
        rule(
            "raw_device_write",
            "refusing to write to a raw device or kernel control file",
            RuleMatch::DeviceWrite {
                device_prefixes: strings(&[
                    "/dev/sd",
                    "/dev/hd",
                    "/dev/vd",
                    "/dev/xvd",
                    "/dev/nvme",
                    "/dev/mmcblk",
                    "/dev/disk",
                    "/dev/rdisk",
                    "/dev/mem",
                    "/dev/kmem",
                    "/dev/port",
                    "/dev/loop",
                    "/dev/dm-",
                    "/dev/md",
                    "/dev/mapper/",
                    "/dev/sr",
                    "/dev/nbd",
                    "/proc/sysrq-trigger",
                    "/proc/sys/",
                    "/sys/",
                ]),
                programs: strings(&["shred", "wipefs", "blkdiscard", "badblocks", "tee"]),
                destination_programs: strings(&["cp", "mv", "install", "ln", "rsync"]),
            },
        ),
        rule(
            "fork_bomb",
            "fork bombs (a function calling itself in a pipeline or the background) are not allowed",
            RuleMatch::ForkBomb,
        ),
        rule(
            "kill_all",
            "signalling every process (kill -1, kill 1, killall5) is not allowed; kill specific process ids",
            RuleMatch::KillAll,
        ),
        rule(
            "dynamic_command",
            "the command name is not known before the shell runs; write the command name literally",
            RuleMatch::DynamicCommand,
        ),
        rule(
            "opaque_script",
            "a shell or interpreter would run a script the policy cannot see; save the script to a file in the workspace, review it, then run that file",
            RuleMatch::OpaqueScript {
                interpreters: strings(&[
                    "python", "python2", "python3", "perl", "ruby", "node", "php", "lua",
                ]),
            },
        ),
    ]
}
