//! `kiln launch`: a small torchrun. It starts this node's ranks as child processes of the same
//! `kiln`, each with torchrun's variables (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE,
//! MASTER_ADDR, MASTER_PORT, TORCHELASTIC_RESTART_COUNT), and watches them: when one fails, it
//! names it and stops the others, so no rank is left waiting in a collective, then starts them
//! all again up to `--max-restarts` times (`kiln train` resumes them from its run folder). The
//! ranks join through the rendezvous at MASTER_ADDR:MASTER_PORT: over TCP, or into one MPI
//! communicator in an MPI build. OpenMPI 4 lets such independently started processes connect
//! only through an `ompi-server`, which node 0's launcher runs for the job (`--mpirun` runs this
//! node's ranks under mpirun instead).

use super::elastic::RESTART_COUNT_VAR;
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
    /// Nodes in the job: N, or torchrun's MIN:MAX with MIN = MAX (kiln's node set is fixed).
    #[arg(long, default_value = "1")]
    pub nnodes: String,
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
    /// Times to restart every rank of this node after one fails (torchrun's flag); the restarted
    /// ranks of `kiln train` resume from the newest whole checkpoint of the run folder.
    #[arg(long = "max-restarts", alias = "max_restarts", default_value_t = 0)]
    pub max_restarts: usize,
    /// torchrun's rendezvous backend: `static` or `c10d` (both: kiln's TCP store on node 0).
    #[arg(long = "rdzv-backend", alias = "rdzv_backend")]
    pub rdzv_backend: Option<String>,
    /// torchrun's rendezvous endpoint, `HOST` or `HOST:PORT`: replaces --master-addr (and
    /// --master-port).
    #[arg(long = "rdzv-endpoint", alias = "rdzv_endpoint")]
    pub rdzv_endpoint: Option<String>,
    /// torchrun's job id: ranks that join the rendezvous with another id are refused.
    #[arg(long = "rdzv-id", alias = "rdzv_id")]
    pub rdzv_id: Option<String>,
    /// torchrun's rendezvous options (refused: kiln's rendezvous has none).
    #[arg(long = "rdzv-conf", alias = "rdzv_conf")]
    pub rdzv_conf: Option<String>,
    /// Run this node's ranks under `mpirun -np N` instead of joining MPI singletons (one node).
    #[arg(long)]
    pub mpirun: bool,
    /// The kiln command each rank runs, after `--` (e.g. `-- train --model resnet18`).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

/// Where the ranks meet, from `--nnodes`, `--master-*` and torchrun's `--rdzv-*` flags.
struct Rendezvous {
    nnodes: usize,
    addr: String,
    port: u16,
}

/// Starts the ranks and waits for them; when one fails, stops the others and starts them all
/// again, up to `--max-restarts` times, then fails naming the last rank that failed.
pub fn launch(a: &LaunchArgs) -> Result<()> {
    let rdzv = check(a)?;
    let exe = std::env::current_exe().map_err(|e| Error::io("the kiln executable", e))?;
    if a.mpirun {
        return run_under_mpirun(a, &exe);
    }
    let world = rdzv.nnodes * a.nproc_per_node;
    // Only MPI ranks need the ompi-server (TCP and NCCL ranks meet at the rendezvous alone).
    let server = match (world > 1, a.node_rank) {
        (true, 0) if cfg!(feature = "mpi") => Some(OmpiServer::start()?),
        _ => None,
    };
    let mut restart = 0;
    loop {
        let mut ranks = start_ranks(a, &rdzv, &exe, server.as_ref(), restart)?;
        match watch(&mut ranks) {
            Ok(()) => return Ok(()),
            Err(e) if restart < a.max_restarts => {
                restart += 1;
                eprintln!(
                    "kiln launch: {e}; restarting this node's ranks (restart {restart} of {})",
                    a.max_restarts
                );
            }
            Err(e) if a.max_restarts > 0 => {
                return Err(Error::Dist(format!(
                    "{e} (after {} restarts, --max-restarts)",
                    a.max_restarts
                )))
            }
            Err(e) => return Err(e),
        }
    }
}

/// Starts this node's ranks for the `restart`-th time.
fn start_ranks(
    a: &LaunchArgs,
    rdzv: &Rendezvous,
    exe: &Path,
    server: Option<&OmpiServer>,
    restart: usize,
) -> Result<Vec<(usize, Child)>> {
    let world = rdzv.nnodes * a.nproc_per_node;
    let mut ranks = Vec::with_capacity(a.nproc_per_node);
    for local in 0..a.nproc_per_node {
        let rank = a.node_rank * a.nproc_per_node + local;
        let mut cmd = Command::new(exe);
        cmd.args(&a.command)
            .env("RANK", rank.to_string())
            .env("LOCAL_RANK", local.to_string())
            .env("WORLD_SIZE", world.to_string())
            .env("LOCAL_WORLD_SIZE", a.nproc_per_node.to_string())
            .env("GROUP_RANK", a.node_rank.to_string())
            .env("MASTER_ADDR", &rdzv.addr)
            .env("MASTER_PORT", rdzv.port.to_string())
            .env(RESTART_COUNT_VAR, restart.to_string())
            .env("TORCHELASTIC_MAX_RESTARTS", a.max_restarts.to_string());
        if let Some(id) = &a.rdzv_id {
            cmd.env(kiln_train::dist::rendezvous::RUN_ID_VAR, id);
        }
        if let Some(s) = server {
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
                return Err(Error::io(exe, e));
            }
        }
    }
    Ok(ranks)
}

/// Refuses what kiln cannot honour, each with its flag (exit status 2), and resolves where the
/// ranks meet.
fn check(a: &LaunchArgs) -> Result<Rendezvous> {
    if a.nproc_per_node == 0 {
        return Err(Error::flag("--nproc-per-node", "must be at least 1"));
    }
    let nnodes = node_count(&a.nnodes)?;
    if a.node_rank >= nnodes {
        return Err(Error::flag("--node-rank", "must be below --nnodes"));
    }
    if a.mpirun && nnodes > 1 {
        return Err(Error::flag(
            "--mpirun",
            "runs one node's ranks; across nodes use mpirun with a hostfile (docs/distributed.md)",
        ));
    }
    if a.mpirun && a.max_restarts > 0 {
        return Err(Error::flag(
            "--max-restarts",
            "cannot restart ranks that mpirun owns; leave out --mpirun",
        ));
    }
    if let Some(backend) = a.rdzv_backend.as_deref() {
        if !matches!(backend, "static" | "c10d") {
            return Err(Error::flag(
                "--rdzv-backend",
                format!("'{backend}': kiln's rendezvous is its own TCP store on node 0 (static or c10d)"),
            ));
        }
    }
    if a.rdzv_conf.is_some() {
        return Err(Error::flag(
            "--rdzv-conf",
            "kiln's rendezvous takes no options (its timeout is `kiln train --dist-timeout`)",
        ));
    }
    if a.max_restarts > 0 {
        check_restartable(&a.command)?;
    }
    let (addr, port) = match a.rdzv_endpoint.as_deref() {
        None => (a.master_addr.clone(), a.master_port),
        Some(endpoint) => endpoint_of(endpoint, a.master_port)?,
    };
    Ok(Rendezvous { nnodes, addr, port })
}

/// `--nnodes`: N, or MIN:MAX with MIN = MAX.
fn node_count(value: &str) -> Result<usize> {
    let count = |s: &str| s.trim().parse::<usize>().ok().filter(|&n| n > 0);
    let (min, max) = match value.split_once(':') {
        Some((lo, hi)) => (count(lo), count(hi)),
        None => (count(value), count(value)),
    };
    match (min, max) {
        (Some(lo), Some(hi)) if lo == hi => Ok(lo),
        (Some(lo), Some(hi)) if lo < hi => Err(Error::flag(
            "--nnodes",
            format!(
                "{value}: kiln cannot admit nodes into a running job or go on without one; it \
                 restarts a fixed set of nodes (give one count)"
            ),
        )),
        _ => Err(Error::flag(
            "--nnodes",
            format!("'{value}' is not a count of nodes, or MIN:MAX with 1 ≤ MIN ≤ MAX"),
        )),
    }
}

/// `--rdzv-endpoint HOST[:PORT]` (the port defaults to `--master-port`).
fn endpoint_of(endpoint: &str, default_port: u16) -> Result<(String, u16)> {
    match endpoint.rsplit_once(':') {
        None => Ok((endpoint.to_string(), default_port)),
        Some((host, port)) => match port.parse() {
            Ok(port) if !host.is_empty() => Ok((host.to_string(), port)),
            _ => Err(Error::flag(
                "--rdzv-endpoint",
                format!("'{endpoint}' is not HOST or HOST:PORT"),
            )),
        },
    }
}

/// A restarted `kiln train` resumes from its run folder, which must have the same name on every
/// start: refuses `--max-restarts` for a `train` without `--experiment`.
fn check_restartable(command: &[String]) -> Result<()> {
    let argv: Vec<String> = std::iter::once("kiln".to_string())
        .chain(command.iter().cloned())
        .collect();
    // A command that does not parse fails in every rank, with clap's message.
    if let Ok(super::Cli {
        command: super::Command::Train(t),
    }) = super::parse(&argv)
    {
        if t.experiment.is_none() {
            return Err(Error::flag(
                "--max-restarts",
                "restarted ranks resume from the run folder, so `train` needs --experiment \
                 (otherwise each start names a new folder after the time)",
            ));
        }
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

/// How long the launcher waits, after a rank fails, for others to fail too, before it stops
/// them: a rank killed makes the others fail within moments, and the one killed, which
/// caused it, is named first.
const SETTLE: Duration = Duration::from_millis(500);

/// Waits for every rank; once one fails, stops the others and names the ranks that failed,
/// those killed by a signal first.
fn watch(ranks: &mut Vec<(usize, Child)>) -> Result<()> {
    let mut failed: Vec<(usize, u32, ExitStatus)> = Vec::new();
    let mut settled: Option<Instant> = None;
    while !ranks.is_empty() && settled.is_none_or(|t| Instant::now() < t) {
        let mut i = 0;
        while i < ranks.len() {
            let (rank, child) = &mut ranks[i];
            let (rank, pid) = (*rank, child.id());
            match child.try_wait() {
                Ok(None) => i += 1,
                Ok(Some(status)) => {
                    ranks.remove(i);
                    if !status.success() {
                        failed.push((rank, pid, status));
                        settled.get_or_insert_with(|| Instant::now() + SETTLE);
                    }
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
    if failed.is_empty() {
        return Ok(());
    }
    let others = ranks.len();
    stop_all(ranks);
    use std::os::unix::process::ExitStatusExt;
    failed.sort_by_key(|(rank, _, status)| (status.signal().is_none(), *rank));
    let named: Vec<String> = (failed.iter())
        .map(|(rank, pid, status)| format!("rank {rank} (pid {pid}) {}", describe(*status)))
        .collect();
    Err(Error::Dist(format!(
        "{}; stopped the other {others} rank(s) of this node",
        named.join(", ")
    )))
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
