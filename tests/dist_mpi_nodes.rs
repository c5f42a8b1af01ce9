//! MPI over two "nodes" (feature `mpi`, as root): two network namespaces joined by a veth pair
//! (tests/common/netns.rs), `mpirun` in node 0's with one rank on each node, told to start node
//! 1's daemon inside node 1's namespace by an rsh agent script (`--mca plm_rsh_agent`), and to
//! keep its traffic on the veth subnet. A short training run over the two nodes ends with the
//! bits of the same 2-rank run on one node; and a rank SIGSTOPped mid-run ends the job within
//! `--dist-timeout`, named by rank 0. Skipped, saying why, where the test is not root or has no
//! `ip`.
#![cfg(feature = "mpi")]

mod common;

use common::launched::{signal, Launched};
use common::netns::Nodes;
use common::{assert_same_bits, dataset, kiln_ok_in, train_args};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The settings of both runs: 64 images, 2 ranks of batch 16, 2 epochs, SyncBN (so the ranks'
/// BNs share their statistics as a real run's would).
const RUN: [&str; 5] = ["--epochs", "2", "-b", "16", "--sync-bn"];
/// The veth subnet of tests/common/netns.rs, where MPI's daemons and ranks must talk.
const SUBNET: &str = "192.0.2.0/24";

/// The two nodes and the rsh agent script that enters node 1.
struct Cluster {
    nodes: Nodes,
    agent: PathBuf,
}

impl Cluster {
    /// The nodes, or None (said on stderr) where the test cannot make them.
    fn create(tag: &str, dir: &Path) -> Option<Cluster> {
        let nodes = Nodes::create(tag)?;
        // OpenMPI calls its agent as `AGENT [options] HOST COMMAND...` (ssh's form), the command
        // a shell line; this one runs it in node 1's namespace.
        let agent = dir.join("enter-node1.sh");
        let script = format!(
            "#!/bin/sh\nwhile [ \"${{1#-}}\" != \"$1\" ]; do shift; done\nshift\n\
             exec ip netns exec {} /bin/sh -c \"$*\"\n",
            nodes.namespace(1)
        );
        std::fs::write(&agent, script).unwrap();
        std::fs::set_permissions(&agent, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        Some(Cluster { nodes, agent })
    }

    /// `mpirun` in node 0's namespace running kiln (the arguments to add) on both nodes, one rank each, with one
    /// compute thread a rank and `tag` in every rank's environment (to find its processes).
    fn mpirun(&self, tag: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", self.nodes.namespace(0), "mpirun"])
            .arg("--allow-run-as-root")
            .args([
                "--host",
                &format!("{}:1,{}:1", Nodes::addr(0), Nodes::addr(1)),
            ])
            .args(["-np", "2"])
            .args(["--mca", "plm_rsh_agent", self.agent.to_str().unwrap()])
            .args(["--mca", "oob_tcp_if_include", SUBNET])
            .args(["--mca", "btl_tcp_if_include", SUBNET])
            .args(["--mca", "btl", "self,tcp"])
            .args([
                "-x",
                "RAYON_NUM_THREADS=1",
                "-x",
                &format!("KILN_TEST_TAG={tag}"),
            ])
            .arg(env!("CARGO_BIN_EXE_kiln"))
            .stdin(Stdio::null());
        cmd
    }
}

/// `mpirun -np 2` on this machine alone (no namespaces), one compute thread a rank.
fn mpirun_one_node() -> Command {
    let mut cmd = Command::new("mpirun");
    cmd.args(["--allow-run-as-root", "--oversubscribe", "-np", "2"])
        .args(["-x", "RAYON_NUM_THREADS=1"])
        .arg(env!("CARGO_BIN_EXE_kiln"));
    cmd
}

#[test]
fn two_nodes_end_with_the_bits_of_one_node() {
    let data = dataset("mpi-nodes", 64, 32);
    let Some(cluster) = Cluster::create("mn", &data) else {
        println!("skipped: the two-node MPI test needs root and iproute2");
        return;
    };
    let out = data.join("runs");
    let started = Instant::now();
    kiln_ok_in(
        mpirun_one_node(),
        &train_args(&data, &out, "one-node", &RUN),
    );
    let one_node = started.elapsed();
    let nodes = cluster.mpirun("same-bits");
    let stdout = kiln_ok_in(nodes, &train_args(&data, &out, "two-nodes", &RUN));
    assert!(stdout.contains("on 2 rank(s)"), "{stdout}");
    println!(
        "one node {one_node:.1?}, two nodes {:.1?}",
        started.elapsed() - one_node
    );
    assert_same_bits(
        &out.join("one-node/last.safetensors"),
        &out.join("two-nodes/last.safetensors"),
        "two nodes against one",
    );
    drop(cluster);
}

#[test]
fn a_stopped_rank_on_the_other_node_ends_the_job_by_the_timeout_with_its_name() {
    let data = dataset("mpi-stop", 64, 32);
    let Some(cluster) = Cluster::create("ms", &data) else {
        println!("skipped: the two-node MPI test needs root and iproute2");
        return;
    };
    let timeout = Duration::from_secs(3);
    let tag = format!("stop-{}", std::process::id());
    let mut args = train_args(&data, &data.join("runs"), "stopped", &RUN);
    args.extend(["--epochs", "20", "--dist-timeout", "3s"].map(String::from));
    let mut mpirun = cluster.mpirun(&tag);
    mpirun.args(&args);
    let mut run = Launched::start(mpirun);
    // mpirun gives rank 0 a terminal, so kiln draws a progress bar: its lines end with epochs.
    run.wait_stdout("an epoch's summary", |l| l.contains("train_loss"));
    let rank1 = rank_pid(&tag, 1).expect("rank 1 runs").to_string();
    signal(&rank1, "STOP");
    let stopped = Instant::now();
    let (status, errors) = run.finish();
    let took = stopped.elapsed();
    println!("rank 1 stopped; the job ended {took:.1?} later");
    // Whatever outlived mpirun (it should not) goes with the namespaces.
    signal(&rank1, "KILL");
    assert!(!status.success(), "{errors:#?}");
    // Stopped between collectives, rank 1 did not reach the next; stopped inside one, it
    // stopped answering there.
    let named = errors.iter().find(|l| {
        l.starts_with("error: MPI ")
            && l.contains("did not complete within 3s")
            && (l.contains(": rank 1 did not reach it")
                || l.contains(": rank 1 reached it but stopped"))
    });
    assert!(named.is_some(), "{errors:#?}");
    println!("{}", named.unwrap());
    // The timeout, the arrival check and mpirun's teardown of both nodes.
    assert!(took >= timeout && took < timeout * 4, "{took:?}");
    drop(cluster);
}

/// The pid of the kiln process of MPI rank `rank` whose environment holds KILN_TEST_TAG=`tag`.
fn rank_pid(tag: &str, rank: usize) -> Option<u32> {
    let want = [
        format!("KILN_TEST_TAG={tag}"),
        format!("OMPI_COMM_WORLD_RANK={rank}"),
    ];
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
            let vars: Vec<&[u8]> = env.split(|&b| b == 0).collect();
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            exe.file_name().is_some_and(|n| n == "kiln")
                && want.iter().all(|w| vars.contains(&w.as_bytes()))
        })
}
