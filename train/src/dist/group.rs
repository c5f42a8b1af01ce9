//! Who this process is in the job, from the variables the usual launchers set.

use crate::{Error, Result};
use std::time::Duration;

/// How long a collective or the rendezvous waits for the other ranks unless told otherwise:
/// torch.distributed's default `timeout`, 30 minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The variable through which OpenMPI singletons find the job's ompi-server (set by `kiln launch`).
pub const OMPI_SERVER_VAR: &str = "OMPI_MCA_pmix_server_uri";

/// The launcher that started this process, as recognized from its variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Launcher {
    /// No launcher: one process.
    Single,
    /// `mpirun` / `mpiexec` (OpenMPI's `OMPI_COMM_WORLD_*`): MPI already joins the ranks.
    Mpirun,
    /// SLURM's `srun` (`SLURM_PROCID`, `SLURM_NTASKS`, `SLURM_LOCALID`): MPI joins the ranks
    /// through SLURM's PMI.
    Slurm,
    /// torchrun or `kiln launch` (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR`,
    /// `MASTER_PORT`): the ranks join over a rendezvous at the master's address.
    Torchrun,
}

/// This process's place in the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessGroup {
    /// Global rank, 0 ≤ rank < world_size.
    pub rank: usize,
    /// Number of processes in the job.
    pub world_size: usize,
    /// Rank among the processes on this node (picks the GPU: `cuda:LOCAL_RANK`).
    pub local_rank: usize,
    /// The rendezvous address and port (torchrun's MASTER_ADDR, MASTER_PORT), if set.
    pub master: Option<(String, u16)>,
    /// Which launcher's variables these came from.
    pub launcher: Launcher,
    /// How long a collective or the rendezvous waits for another rank before failing with its
    /// name (`kiln train --dist-timeout`; [`DEFAULT_TIMEOUT`] otherwise).
    pub timeout: Duration,
}

impl ProcessGroup {
    /// One process: rank 0 of 1.
    pub fn single() -> ProcessGroup {
        ProcessGroup {
            rank: 0,
            world_size: 1,
            local_rank: 0,
            master: None,
            launcher: Launcher::Single,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Reads the process environment (see [`ProcessGroup::from_vars`]).
    pub fn from_env() -> Result<ProcessGroup> {
        ProcessGroup::from_vars(|k| std::env::var(k).ok())
    }

    /// The group from variables looked up by `var`: OpenMPI's first (MPI has already joined the
    /// ranks), then torchrun's, then SLURM's; none of them means a single process.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<ProcessGroup> {
        let sets = [
            (
                Launcher::Mpirun,
                [
                    "OMPI_COMM_WORLD_RANK",
                    "OMPI_COMM_WORLD_SIZE",
                    "OMPI_COMM_WORLD_LOCAL_RANK",
                ],
            ),
            (Launcher::Torchrun, ["RANK", "WORLD_SIZE", "LOCAL_RANK"]),
            (
                Launcher::Slurm,
                ["SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"],
            ),
        ];
        for (launcher, [rank, size, local]) in sets {
            if var(size).is_none() {
                continue;
            }
            let group = ProcessGroup {
                rank: number(&var, rank, Some(0))?,
                world_size: number(&var, size, None)?,
                local_rank: number(&var, local, Some(0))?,
                master: master(&var)?,
                launcher,
                timeout: DEFAULT_TIMEOUT,
            };
            return group.checked(rank, size);
        }
        Ok(ProcessGroup::single())
    }

    fn checked(self, rank: &str, size: &str) -> Result<ProcessGroup> {
        if self.world_size == 0 || self.rank >= self.world_size {
            return Err(Error::Dist(format!(
                "{rank}={} is not below {size}={}",
                self.rank, self.world_size
            )));
        }
        Ok(self)
    }

    /// Whether this process is rank 0 (the one that logs and saves).
    pub fn is_main(&self) -> bool {
        self.rank == 0
    }
}

/// The variable `name` as a number; `default` when unset (an error if there is none).
fn number(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: Option<usize>,
) -> Result<usize> {
    match (var(name), default) {
        (Some(v), _) => v
            .trim()
            .parse()
            .map_err(|_| Error::Dist(format!("{name}={v:?} is not a non-negative integer"))),
        (None, Some(d)) => Ok(d),
        (None, None) => Err(Error::Dist(format!("{name} is not set"))),
    }
}

/// MASTER_ADDR and MASTER_PORT, when both are set.
fn master(var: &impl Fn(&str) -> Option<String>) -> Result<Option<(String, u16)>> {
    let (Some(addr), Some(port)) = (var("MASTER_ADDR"), var("MASTER_PORT")) else {
        return Ok(None);
    };
    let port = port
        .trim()
        .parse()
        .map_err(|_| Error::Dist(format!("MASTER_PORT={port:?} is not a port number")))?;
    Ok(Some((addr, port)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn group(vars: &[(&str, &str)]) -> Result<ProcessGroup> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProcessGroup::from_vars(|k| map.get(k).cloned())
    }

    #[test]
    fn reads_each_launchers_variables() {
        assert_eq!(group(&[]).unwrap(), ProcessGroup::single());
        let t = group(&[
            ("RANK", "3"),
            ("WORLD_SIZE", "8"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "node0"),
            ("MASTER_PORT", "29500"),
        ])
        .unwrap();
        assert_eq!(
            (t.rank, t.world_size, t.local_rank, t.launcher),
            (3, 8, 1, Launcher::Torchrun)
        );
        assert_eq!(t.master, Some(("node0".into(), 29500)));
        let m = group(&[
            ("OMPI_COMM_WORLD_RANK", "1"),
            ("OMPI_COMM_WORLD_SIZE", "2"),
            ("OMPI_COMM_WORLD_LOCAL_RANK", "1"),
            ("SLURM_NTASKS", "4"),
        ])
        .unwrap();
        assert_eq!((m.rank, m.world_size, m.launcher), (1, 2, Launcher::Mpirun));
        let s = group(&[
            ("SLURM_PROCID", "5"),
            ("SLURM_NTASKS", "6"),
            ("SLURM_LOCALID", "2"),
        ])
        .unwrap();
        assert_eq!(
            (s.rank, s.world_size, s.local_rank, s.launcher),
            (5, 6, 2, Launcher::Slurm)
        );
    }

    #[test]
    fn names_the_variable_at_fault() {
        let e = group(&[("RANK", "2"), ("WORLD_SIZE", "2")]).unwrap_err();
        assert!(
            e.to_string().contains("RANK=2 is not below WORLD_SIZE=2"),
            "{e}"
        );
        let e = group(&[("WORLD_SIZE", "two")]).unwrap_err();
        assert!(e.to_string().contains("WORLD_SIZE=\"two\""), "{e}");
        let e = group(&[
            ("WORLD_SIZE", "2"),
            ("MASTER_ADDR", "a"),
            ("MASTER_PORT", "x"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("MASTER_PORT"), "{e}");
    }
}
