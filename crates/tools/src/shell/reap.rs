//! Ending a shell and everything it started, including processes that left its process group
//! (`setsid`, `setpgid`) or were orphaned (double fork), without making the host a subreaper.
//!
//! Each launched shell carries a random tag in its environment ([`TAG_VAR`]). A process is
//! the shell's if, in `/proc`, it is a descendant of the shell (parent chain), is in the
//! shell's process group, or was started with the tag in its environment (which every
//! descendant inherits unless it clears its environment). The shell is stopped (SIGSTOP) so it
//! starts nothing new, its processes are sent SIGKILL round after round until a scan finds
//! none, then the shell itself is killed. Signals go through a pidfd
//! opened after the process's start time was checked, so a recycled pid is never hit.
//!
//! Limits (also in `docs/sandboxing.md`): a process that both cleared its environment and
//! left the shell's parent chain and process group before the kill escapes; processes of
//! another user that the host cannot signal are left alone. `/proc` is Linux-only; elsewhere
//! only the process group is killed.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// The environment variable holding a shell's tag.
pub(crate) const TAG_VAR: &str = "POWER_LOOP_SHELL_TAG";

/// Most kill rounds before giving up on processes that refuse to die (e.g. stuck in D state).
const MAX_ROUNDS: usize = 100;
/// Pause between rounds, so killed processes can exit and orphans get reparented.
const ROUND_PAUSE: Duration = Duration::from_millis(5);

/// A fresh random tag for one shell.
pub(crate) fn new_tag() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect()
}

/// The fields of `/proc/<pid>/stat` this module needs.
#[derive(Debug, Clone, Copy)]
struct Stat {
    pid: u32,
    ppid: u32,
    pgrp: u32,
    zombie: bool,
    start_time: u64,
}

fn read_stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `comm` may hold spaces and parentheses: the fields start after the LAST `)`.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0]=state f[1]=ppid f[2]=pgrp … f[19]=starttime
    Some(Stat {
        pid,
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        zombie: matches!(*f.first()?, "Z" | "X"),
        start_time: f.get(19)?.parse().ok()?,
    })
}

fn scan() -> Vec<Stat> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(read_stat)
        .collect()
}

fn has_tag(pid: u32, needle: &[u8]) -> bool {
    match std::fs::read(format!("/proc/{pid}/environ")) {
        Ok(env) => env.split(|b| *b == 0).any(|kv| kv == needle),
        Err(_) => false,
    }
}

/// The live processes belonging to the shell `root` (not `root` itself). `root_alive` says
/// whether `root` still names the shell: only then does its parent chain count (a recycled pid
/// must not pull in strangers). Its process group counts while the shell lives or while no
/// other process holds its pid (a group id cannot be recycled while the group has members).
/// The tag always counts.
fn members(root: u32, root_alive: bool, needle: &[u8], me: u32) -> Vec<Stat> {
    let all = scan();
    let group_ok = root_alive || !all.iter().any(|s| s.pid == root);
    let mut descendants: HashSet<u32> = HashSet::new();
    if root_alive {
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        for s in &all {
            children.entry(s.ppid).or_default().push(s.pid);
        }
        let mut stack = vec![root];
        while let Some(p) = stack.pop() {
            for &c in children.get(&p).map(Vec::as_slice).unwrap_or(&[]) {
                if descendants.insert(c) {
                    stack.push(c);
                }
            }
        }
    }
    all.into_iter()
        .filter(|s| s.pid != root && s.pid != me && !s.zombie)
        .filter(|s| {
            descendants.contains(&s.pid) || (group_ok && s.pgrp == root) || has_tag(s.pid, needle)
        })
        .collect()
}

/// Sends `sig` to `s` unless its pid now names another process.
fn signal_checked(s: &Stat, sig: rustix::process::Signal) {
    let Some(pid) = i32::try_from(s.pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    #[cfg(target_os = "linux")]
    {
        let Ok(fd) = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()) else {
            return; // already gone
        };
        // The pidfd pins the process: if the start time still matches, it is the one we saw.
        if read_stat(s.pid).is_some_and(|now| now.start_time == s.start_time) {
            let _ = rustix::process::pidfd_send_signal(&fd, sig);
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        if read_stat(s.pid).is_some_and(|now| now.start_time == s.start_time) {
            let _ = rustix::process::kill_process(pid, sig);
        }
    }
}

/// A launched shell: its pid, its start time (to recognise it later) and its tag.
#[derive(Debug, Clone)]
pub(crate) struct ShellProcess {
    pid: u32,
    start_time: Option<u64>,
    tag: String,
}

impl ShellProcess {
    /// Records a shell right after it was spawned (`pid` 0 when the pid is unknown).
    pub(crate) fn new(pid: u32, tag: String) -> Self {
        let start_time = read_stat(pid).map(|s| s.start_time);
        ShellProcess {
            pid,
            start_time,
            tag,
        }
    }

    /// The shell's current `/proc` entry, if `pid` still names it.
    fn current(&self) -> Option<Stat> {
        let now = read_stat(self.pid)?;
        (Some(now.start_time) == self.start_time && !now.zombie).then_some(now)
    }

    /// Kills every process of the shell, then the shell. Blocks for at most ~0.5 s; returns
    /// how many processes were still alive after the last round (0 when all are gone).
    pub(crate) fn kill_tree(&self) -> usize {
        if self.pid <= 1 {
            return 0;
        }
        let needle = format!("{TAG_VAR}={}", self.tag).into_bytes();
        let me = std::process::id();
        let shell = self.current();
        // Stop the shell first so it cannot start more while its children are being killed.
        if let Some(s) = &shell {
            signal_checked(s, rustix::process::Signal::STOP);
        }
        let mut left = 0;
        for _ in 0..MAX_ROUNDS {
            let found = members(self.pid, shell.is_some(), &needle, me);
            left = found.len();
            if found.is_empty() {
                break;
            }
            for s in &found {
                signal_checked(s, rustix::process::Signal::KILL);
            }
            std::thread::sleep(ROUND_PAUSE);
        }
        if let Some(s) = &shell {
            signal_checked(s, rustix::process::Signal::KILL);
        }
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parsing_survives_odd_command_names() {
        let me = read_stat(std::process::id()).unwrap();
        assert_eq!(me.pid, std::process::id());
        assert!(me.ppid > 0 && me.start_time > 0 && !me.zombie);
    }

    #[test]
    fn tags_are_random_hex() {
        let (a, b) = (new_tag(), new_tag());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
