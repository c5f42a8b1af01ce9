//! `kiln launch`: a small torchrun. It starts this node's ranks as child processes of the same
//! `kiln`, each with torchrun's variables (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE,
//! MASTER_ADDR, MASTER_PORT), and watches them: when one fails, it names it and stops the
//! others, so no rank is left waiting in a collective. The ranks join one MPI communicator
//! through the rendezvous at MASTER_ADDR:MASTER_PORT; OpenMPI 4 lets such independently started
//! processes connect only through an `ompi-server`, which node 0's launcher runs for the job
//! (`--mpirun` runs this node's ranks under mpirun instead).

use kiln_train::{Error, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// `kiln launch` flags (torchrun's names).
#[derive(Debug, Clone, clap::Args)]
pub struct LaunchArgs {
    /// Ranks to start on this node.
    #[arg(long = "nproc-per-node", alias = "nproc_per_node", default_value_t = 1)]
    pub nproc_per_node: usize,
    /// Nodes in the job.
    #[arg(long, default_value_t = 1)]
    pub nnodes: usize,
    /// This node's index, 0 ≤ node-rank < nnodes (node 0 hosts the rendezvous).
    #[arg(long = "node-rank", alias = "node_rank", default_value_t = 0)]
    pub node_rank: usize,
    /// Address of node 0, where the rendezvous listens.
    #[arg(
        long = "master-addr",
        alias = "master_addr",
        default_value = "127.0.0.1"
    )]
    pub master_addr: String,
    /// Port of the rendezvous on node 0.
    #[arg(long = "master-port", alias = "master_port", default_value_t = 29500)]
    pub master_port: u16,
    /// Run this node's ranks under `mpirun -np N` instead of joining MPI singletons (one node).
    #[arg(long)]
    pub mpirun: bool,
    /// The kiln command each rank runs, after `--` (e.g. `-- train --model resnet18`).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// Starts the ranks, waits for them, and fails naming the first rank that failed.
pub fn launch(a: &LaunchArgs) -> Result<()> {
    check(a)?;
    let exe = std::env::current_exe().map_err(|e| Error::io("the kiln executable", e))?;
    if a.mpirun {
        return run_under_mpirun(a, &exe);
    }
    let world = a.nnodes * a.nproc_per_node;
    // Only MPI ranks need the ompi-server (NCCL ranks meet at the TCP rendezvous alone).
    let server = match (world > 1, a.node_rank) {
        (true, 0) if cfg!(feature = "mpi") => Some(OmpiServer::start()?),
        _ => None,
    };
    let mut ranks = Vec::with_capacity(a.nproc_per_node);
    for local in 0..a.nproc_per_node {
        let rank = a.node_rank * a.nproc_per_node + local;
        let mut cmd = Command::new(&exe);
        cmd.args(&a.command)
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", local.to_string())
            .env("WORLD_SIZE", world.to_string())
            .env("LOCAL_WORLD_SIZE", a.nproc_per_node.to_string())
            .env("GROUP_RANK", a.node_rank.to_string())
            .env("MASTER_ADDR", &a.master_addr)
            .env("MASTER_PORT", a.master_port.to_string());
        if let Some(s) = &server {
            cmd.env(kiln_train::dist::OMPI_SERVER_VAR, &s.uri);
        }
        if std::env::var_os("RAYON_NUM_THREADS").is_none() {
            cmd.env(
                "RAYON_NUM_THREADS",
                threads_per_rank(a.nproc_per_node).to_string(),
            );
        }
        match cmd.spawn() {
            Ok(child) => ranks.push((rank, child)),
            Err(e) => {
                stop_all(&mut ranks);
                return Err(Error::io(&exe, e));
            }
        }
    }
    let outcome = watch(&mut ranks);
    drop(server);
    outcome
}

fn check(a: &LaunchArgs) -> Result<()> {
    let flag = |flag: &str, msg: &str| {
        Err(Error::Flag {
            flag: flag.into(),
            msg: msg.into(),
        })
    };
    if a.nproc_per_node == 0 {
        return flag("--nproc-per-node", "must be at least 1");
    }
    if a.nnodes == 0 || a.node_rank >= a.nnodes {
        return flag(
            "--node-rank",
            "must be below --nnodes (and --nnodes at least 1)",
        );
    }
    if a.mpirun && a.nnodes > 1 {
        return flag(
            "--mpirun",
            "runs one node's ranks; across nodes use mpirun with a hostfile (docs/distributed.md)",
        );
    }
    Ok(())
}

/// torchrun's OMP_NUM_THREADS rule for rayon: the node's cores shared among its ranks.
fn threads_per_rank(nproc: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores / nproc).max(1)
}

/// `mpirun -np N kiln COMMAND`: mpirun joins the ranks and stops them all when one fails.
fn run_under_mpirun(a: &LaunchArgs, exe: &Path) -> Result<()> {
    let status = Command::new("mpirun")
        .arg("-np")
        .arg(a.nproc_per_node.to_string())
        .args(["-x", "RAYON_NUM_THREADS"])
        .arg(exe)
        .args(&a.command)
        .env(
            "RAYON_NUM_THREADS",
            std::env::var("RAYON_NUM_THREADS")
                .unwrap_or_else(|_| threads_per_rank(a.nproc_per_node).to_string()),
        )
        .status()
        .map_err(|e| Error::Dist(format!("cannot run mpirun (Debian: openmpi-bin): {e}")))?;
    match status.success() {
        true => Ok(()),
        false => Err(Error::Dist(format!("mpirun {}", describe(status)))),
    }
}

/// Waits for every rank; on the first failure stops the others and names the failed rank.
fn watch(ranks: &mut Vec<(usize, Child)>) -> Result<()> {
    while !ranks.is_empty() {
        let mut i = 0;
        while i < ranks.len() {
            let others = ranks.len() - 1;
            let (rank, child) = &mut ranks[i];
            let (rank, pid) = (*rank, child.id());
            match child.try_wait() {
                Ok(None) => i += 1,
                Ok(Some(status)) if status.success() => {
                    ranks.remove(i);
                }
                Ok(Some(status)) => {
                    let msg = format!(
                        "rank {rank} (pid {pid}) {}; stopped the other {others} rank(s) of this node",
                        describe(status),
                    );
                    ranks.remove(i);
                    stop_all(ranks);
                    return Err(Error::Dist(msg));
                }
                Err(e) => {
                    let msg = format!("cannot wait for rank {rank}: {e}");
                    stop_all(ranks);
                    return Err(Error::Dist(msg));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Kills the remaining ranks and reaps them.
fn stop_all(ranks: &mut Vec<(usize, Child)>) {
    for (_, child) in ranks.iter_mut() {
        child.kill().ok();
    }
    for (_, child) in ranks.iter_mut() {
        child.wait().ok();
    }
    ranks.clear();
}

/// "exited with status 3" or "was killed by signal 9".
fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        (None, None) => format!("ended with {status}"),
    }
}

/// OpenMPI's `ompi-server`, run for the job's lifetime so MPI singletons can connect.
struct OmpiServer {
    child: Child,
    uri: String,
    file: PathBuf,
}

impl OmpiServer {
    /// Starts `ompi-server` and reads the address it reports.
    fn start() -> Result<OmpiServer> {
        let file = std::env::temp_dir().join(format!("kiln-ompi-server-{}", std::process::id()));
        std::fs::remove_file(&file).ok();
        let child = Command::new("ompi-server")
            .arg("--no-daemonize")
            .arg("-r")
            .arg(&file)
            .spawn()
            .map_err(|e| {
                Error::Dist(format!(
                    "cannot start ompi-server (Debian: openmpi-bin), which MPI ranks started \
                     without mpirun need to connect: {e}"
                ))
            })?;
        let mut server = OmpiServer {
            child,
            uri: String::new(),
            file,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let uri = std::fs::read_to_string(&server.file).unwrap_or_default();
            if !uri.trim().is_empty() {
                server.uri = uri.trim().to_string();
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(Error::Dist(format!("ompi-server {}", describe(status))));
            }
            if Instant::now() > deadline {
                return Err(Error::Dist(
                    "ompi-server wrote no address within 20 s".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for OmpiServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
        std::fs::remove_file(&self.file).ok();
    }
}
