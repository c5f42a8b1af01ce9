//! Elastic restarts (`kiln launch --max-restarts`) of a 2-rank run over TCP: rank 1 SIGKILLed at
//! random points and SIGSTOPped once (a hang, which rank 0's `--dist-timeout` ends, naming rank
//! 1); every rank restarts from the newest whole recovery checkpoint, and the run ends with the
//! same bits as the uninterrupted 2-rank run. The same over 2 "nodes" (network namespaces, as
//! root), one of them killed whole mid-run and started again. Also the flags `kiln launch`
//! refuses, each with its reason and exit status 2.
#![cfg(not(feature = "mpi"))] // an MPI build joins launched ranks through MPI, not TCP

mod common;

use common::launched::{batch_of, clock_seed, free_port, next, signal, Launched};
use common::netns::Nodes;
use common::{assert_same_bits, dataset, kiln_ok_in, train_args};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// 128 images, 2 ranks of batch 16: 4 updates an epoch, 12 in all; a recovery checkpoint every
/// 2 updates, one numbered checkpoint kept. A timeout of 10 s is far above any wait between collectives here (a recovery write,
/// an evaluation), even on a loaded machine.
const RUN: [&str; 12] = [
    "--checkpoint-hist",
    "1",
    "--epochs",
    "3",
    "-b",
    "16",
    "--recovery-interval",
    "2",
    "--log-interval",
    "1",
    "--dist-timeout",
    "10s",
];
const BATCHES_PER_EPOCH: u64 = 4;
const BATCHES: u64 = 12;
/// SIGKILLs of rank 1. Each costs a restart (two processes starting, the model built, the
/// checkpoint read: about 2 s here) and the batches since the last recovery checkpoint; the
/// SIGSTOP costs the 10 s timeout. 3 kills and a stop keep the test near 40 s on 2 cores, and
/// still land kills before the first checkpoint, between checkpoints and mid-write.
const KILLS: usize = 3;

/// The kiln binary with one compute thread a rank: a node of one rank would otherwise take all
/// the cores, and a different thread count may sum in another order (other bits).
fn kiln() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kiln"));
    cmd.env("RAYON_NUM_THREADS", "1");
    cmd
}

/// `kiln launch` with `flags`, the rendezvous on `port`, running `train`.
fn launch_args(flags: &[&str], port: u16, train: Vec<String>) -> Vec<String> {
    let mut args: Vec<String> = std::iter::once("launch")
        .chain(flags.iter().copied())
        .map(str::to_string)
        .chain([
            "--master-port".to_string(),
            port.to_string(),
            "--".to_string(),
        ])
        .collect();
    args.extend(train);
    args
}

/// One test, so the uninterrupted run is made once and the runs take the cores one at a time
/// (two at once would bring the waits between collectives close to the timeout).
#[test]
fn restarts_end_with_the_bits_of_the_uninterrupted_run() {
    let data = dataset("elastic", 128, 32);
    let out = data.join("runs");
    let train = train_args(&data, &out, "straight", &RUN);
    kiln_ok_in(
        kiln(),
        &launch_args(&["--nproc-per-node", "2"], free_port(), train),
    );
    let straight = out.join("straight/last.safetensors");
    killed_and_stopped_ranks(&data, &straight);
    match Nodes::create("el") {
        Some(nodes) => a_node_killed_and_started_again(&nodes, &data, &straight),
        None => println!("two-namespace part skipped (needs root and iproute2)"),
    }
}

/// Rank 1 SIGKILLed at KILLS random points and SIGSTOPped at one more.
fn killed_and_stopped_ranks(data: &Path, straight: &Path) {
    let out = data.join("runs");

    let mut seed = clock_seed();
    println!("random-point seed {seed}");
    // KILLS + 1 points in the first two thirds of the run (the rest leaves the last one time to
    // land), one of them the SIGSTOP.
    let mut points: Vec<u64> = (0..=KILLS)
        .map(|_| next(&mut seed) % (BATCHES * 2 / 3))
        .collect();
    points.sort();
    let stop_at = (next(&mut seed) % points.len() as u64) as usize;
    let mut cmd = kiln();
    cmd.args(launch_args(
        &["--nproc-per-node", "2", "--max-restarts", "5"],
        free_port(),
        train_args(data, &out, "elastic", &RUN),
    ));
    let mut run = Launched::start(cmd);
    for (i, &point) in points.iter().enumerate() {
        run.wait_stdout("log line", |l| {
            batch_of(l, BATCHES_PER_EPOCH).is_some_and(|b| b >= point)
        });
        let jitter = next(&mut seed) % 150;
        std::thread::sleep(Duration::from_millis(jitter));
        let pid = run.rank_pid(1).expect("rank 1 runs").to_string();
        let (sig, expect) = match i == stop_at {
            true => ("STOP", "rank 1 did not answer within 10s"),
            false => ("KILL", "rank 1 (pid"),
        };
        println!("SIG{sig} to rank 1 {jitter} ms after batch {point}");
        signal(&pid, sig);
        let named = run.wait_stderr(expect);
        println!("  {named}");
        if !named.contains("restarting this node's ranks") {
            println!("  {}", run.wait_stderr("restarting this node's ranks"));
        }
        // The restarted rank 0 starts its output with this line; what comes before it is the
        // previous ranks'.
        run.wait_stdout("restart", |l| l.starts_with("Training "));
    }
    let (status, errors) = run.finish();
    assert!(status.success(), "{errors:#?}");
    let restarts = errors.iter().filter(|l| l.contains("restarting")).count();
    assert_eq!(restarts, KILLS + 1, "{errors:#?}");
    assert_same_bits(
        straight,
        &out.join("elastic/last.safetensors"),
        "after restarts",
    );
}

/// Two nodes of one rank each (network namespaces); node 1 killed whole (launcher and rank) at
/// a random point and started again.
fn a_node_killed_and_started_again(nodes: &Nodes, data: &Path, straight: &Path) {
    let out = data.join("runs");
    let node = |i: usize| {
        let rank = i.to_string();
        let flags = [
            "--nnodes",
            "2",
            "--node-rank",
            &rank,
            "--master-addr",
            &Nodes::addr(0),
            "--max-restarts",
            "3",
        ];
        let train = train_args(data, &out, "nodes", &RUN);
        Launched::start(nodes.kiln(i, &launch_args(&flags, 29500, train)))
    };
    let mut seed = clock_seed();
    let point = next(&mut seed) % (BATCHES * 2 / 3);
    println!("random-point seed {seed}: node 1 killed after batch {point}");
    let mut node0 = node(0);
    let mut node1 = node(1);
    node0.wait_stdout("log line", |l| {
        batch_of(l, BATCHES_PER_EPOCH).is_some_and(|b| b >= point)
    });
    node1.kill_all();
    println!("  {}", node0.wait_stderr("rank 1 closed its connection"));
    node0.wait_stderr("restarting this node's ranks");
    drop(node1);
    let mut node1 = node(1);
    let (status1, errors1) = node1.finish();
    let (status0, errors0) = node0.finish();
    assert!(
        status0.success() && status1.success(),
        "{errors0:#?}\n{errors1:#?}"
    );
    assert_same_bits(
        straight,
        &out.join("nodes/last.safetensors"),
        "after a node's restart",
    );
}

/// `kiln ARGS`: fails with status 2 and one `error:` line naming `flag`.
fn refused(args: &[&str], flag: &str) {
    let o = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains(flag),
        "{stderr}"
    );
}

#[test]
fn flags_kiln_cannot_honour_are_refused_with_the_reason() {
    for (args, flag) in [
        (&["--nnodes", "1:4"][..], "--nnodes"),
        (&["--nnodes", "0"], "--nnodes"),
        (&["--nnodes", "2", "--node-rank", "2"], "--node-rank"),
        (&["--rdzv-backend", "etcd"], "--rdzv-backend"),
        (&["--rdzv-conf", "join_timeout=5"], "--rdzv-conf"),
        (&["--rdzv-endpoint", "host:port"], "--rdzv-endpoint"),
        (&["--max-restarts", "2"], "--max-restarts"),
        (&["--max-restarts", "1", "--mpirun"], "--max-restarts"),
    ] {
        let argv: Vec<&str> = ["launch"]
            .iter()
            .chain(args)
            .chain(&["--", "train"])
            .copied()
            .collect();
        refused(&argv, flag);
    }
    refused(&["train", "--dist-timeout", "0"], "--dist-timeout");
}
