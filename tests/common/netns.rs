//! Two "nodes" on one machine: network namespaces joined by a veth pair, with addresses of the
//! test's own making (192.0.2.0/24, TEST-NET-1, which no real network routes). Needs root and
//! iproute2's `ip` (scripts/test.sh installs it); removed again when dropped.

use std::process::{Command, Stdio};

/// The namespaces and the address of each node's end of the veth pair.
pub struct Nodes {
    names: [String; 2],
    veth: String,
}

impl Nodes {
    /// The address of node `i` (0 or 1).
    pub fn addr(i: usize) -> String {
        format!("192.0.2.{}", i + 1)
    }

    /// Creates the two namespaces and the link between them; None (said on stderr) where this
    /// process is not root or has no `ip`.
    pub fn create(tag: &str) -> Option<Nodes> {
        let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        });
        let has_ip = Command::new("ip")
            .arg("-V")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !root || !has_ip {
            eprintln!(
                "SKIPPED: two-namespace tests need root and iproute2 (root: {root}, ip: {has_ip})"
            );
            return None;
        }
        let id = std::process::id();
        let veth = [format!("kv0-{id}"), format!("kv1-{id}")];
        let nodes = Nodes {
            names: [format!("kiln-{tag}0-{id}"), format!("kiln-{tag}1-{id}")],
            veth: veth[0].clone(),
        };
        for n in &nodes.names {
            ip(&["netns", "add", n]);
        }
        ip(&[
            "link", "add", &veth[0], "type", "veth", "peer", "name", &veth[1],
        ]);
        for (i, (ns, dev)) in nodes.names.iter().zip(&veth).enumerate() {
            ip(&["link", "set", dev, "netns", ns]);
            let addr = format!("{}/24", Nodes::addr(i));
            ip(&["-n", ns, "addr", "add", &addr, "dev", dev]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        Some(nodes)
    }

    /// The name of node `i`'s network namespace (for `ip netns exec`).
    pub fn namespace(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// `kiln ARGS` in node `i`'s namespace, with one compute thread a rank (as every rank of
    /// the runs it is compared with).
    pub fn kiln(&self, i: usize, args: &[String]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.env("RAYON_NUM_THREADS", "1");
        cmd.args(["netns", "exec", &self.names[i], env!("CARGO_BIN_EXE_kiln")])
            .args(args);
        cmd
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth pair, and with it the other end.
        // A pair not yet moved into the namespaces is deleted by name (an error otherwise).
        let del = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .stderr(Stdio::null())
                .status()
                .ok();
        };
        for n in &self.names {
            del(&["netns", "del", n]);
        }
        del(&["link", "del", &self.veth]);
    }
}

/// Runs `ip ARGS`, failing the test with its message.
fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}
