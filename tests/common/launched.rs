//! A `kiln launch` run watched from a test: its log lines as they come, its ranks' pids, signals
//! to them, and a guard that kills the whole process group if the test fails midway.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// How long any one wait of a test may last before it fails (a CI machine under load is slow,
/// never this slow).
pub const PATIENCE: Duration = Duration::from_secs(180);

/// A free TCP port on this machine (for MASTER_PORT).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    l.local_addr().unwrap().port()
}

/// A small xorshift generator: a test's random points, from a seed the test prints.
pub fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// A seed from the clock (printed by the test, so a failure can be replayed).
pub fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1
}

/// The run's batch counter (epoch × `per_epoch` + batch) in a `Train: <epoch> [<batch>/N ...`
/// log line.
pub fn batch_of(line: &str, per_epoch: u64) -> Option<u64> {
    let rest = line.strip_prefix("Train: ")?;
    let (epoch, rest) = rest.split_once(" [")?;
    let batch = rest.split('/').next()?.trim();
    Some(epoch.parse::<u64>().ok()? * per_epoch + batch.parse::<u64>().ok()?)
}

/// A launched process (its own process group), its stdout and stderr lines.
pub struct Launched {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    /// Every stderr line read so far.
    pub errors: Vec<String>,
    /// Whether the launcher has been reaped (its process group may then be another's).
    reaped: bool,
}

impl Launched {
    /// Starts `cmd` (typically `kiln launch ...`, or `ip netns exec ... kiln launch ...`).
    pub fn start(mut cmd: Command) -> Launched {
        use std::os::unix::process::CommandExt;
        let mut child = cmd
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = |r: Box<dyn std::io::Read + Send>| {
            let (tx, rx) = channel();
            std::thread::spawn(move || {
                for line in BufReader::new(r).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            });
            rx
        };
        let stdout = lines(Box::new(child.stdout.take().unwrap()));
        let stderr = lines(Box::new(child.stderr.take().unwrap()));
        Launched {
            child,
            stdout,
            stderr,
            errors: Vec::new(),
            reaped: false,
        }
    }

    /// The launcher's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads stdout until a line satisfies `want` (which returns true); fails the test if the
    /// output ends first or after [`PATIENCE`].
    pub fn wait_stdout(&mut self, what: &str, want: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) if want(&line) => return,
                Ok(_) => {}
                Err(e) => panic!(
                    "no {what} on stdout ({e}); stderr so far: {:?}",
                    self.drain()
                ),
            }
        }
    }

    /// Reads stderr until a line contains `text`; returns that line.
    pub fn wait_stderr(&mut self, text: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.errors.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(e) => panic!("no {text:?} on stderr ({e}): {:?}", self.errors),
            }
        }
    }

    /// Every stderr line read so far, and those waiting.
    fn drain(&mut self) -> Vec<String> {
        self.errors.extend(self.stderr.try_iter());
        self.errors.clone()
    }

    /// The pid of the child of the launcher that runs `rank` (None before it starts or after it
    /// has been reaped).
    pub fn rank_pid(&self, rank: usize) -> Option<u32> {
        rank_pid(self.pid(), rank)
    }

    /// Waits for the launcher to end (at most [`PATIENCE`]); its status and all of stderr.
    pub fn finish(&mut self) -> (ExitStatus, Vec<String>) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                self.reaped = true;
                // The readers end with the pipes (once every rank has exited too).
                self.errors.extend(self.stderr.iter());
                return (status, self.errors.clone());
            }
            assert!(
                Instant::now() < deadline,
                "the launcher did not end: {:?}",
                self.drain()
            );
            self.errors.extend(self.stderr.try_iter());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Launched {
    /// SIGKILLs the launcher and every rank it started (they share its process group), and
    /// reaps the launcher.
    pub fn kill_all(&mut self) {
        if !self.reaped {
            signal(&format!("-{}", self.pid()), "KILL");
            self.child.wait().ok();
            self.reaped = true;
        }
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// The child of `launcher` whose environment has RANK=`rank`.
pub fn rank_pid(launcher: u32, rank: usize) -> Option<u32> {
    let children =
        std::fs::read_to_string(format!("/proc/{launcher}/task/{launcher}/children")).ok()?;
    let want = format!("RANK={rank}");
    children
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == want.as_bytes()))
        })
}

/// Sends signal `sig` (a name: KILL, STOP) to `target` (a pid, or −pgid for a process group).
pub fn signal(target: &str, sig: &str) {
    Command::new("kill")
        .args([format!("-{sig}").as_str(), "--", target])
        .stderr(Stdio::null())
        .status()
        .ok();
}
