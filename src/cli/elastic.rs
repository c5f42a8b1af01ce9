//! `kiln train`'s part in elastic runs: the collectives' timeout (`--dist-timeout`), and where the
//! ranks of a restarted job resume (the newest whole checkpoint of the run folder, agreed by every
//! rank).

use kiln_train::checkpoint::{newest_checkpoint, Checkpoint};
use kiln_train::dist::{Communicator, ReduceOp};
use kiln_train::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The variable torchrun (and `kiln launch`) sets to the number of times the job restarted.
pub const RESTART_COUNT_VAR: &str = "TORCHELASTIC_RESTART_COUNT";

/// `--dist-timeout`: minutes as torch's `timeout` (`30`, `0.5`), or seconds with an `s` (`20s`).
pub fn dist_timeout(value: &str) -> Result<Duration> {
    let v = value.trim();
    let (number, unit) = match v.strip_suffix('s') {
        Some(secs) => (secs, 1.0),
        None => (v.strip_suffix('m').unwrap_or(v), 60.0),
    };
    match number.trim().parse::<f64>() {
        Ok(n) if n > 0.0 && (n * unit) < 1e9 => Ok(Duration::from_secs_f64(n * unit)),
        _ => Err(Error::flag(
            "--dist-timeout",
            format!("'{value}' is not a positive number of minutes (or seconds, as '20s')"),
        )),
    }
}

/// This process's restart count (0 for a first start or without a launcher that restarts).
fn restart_count() -> usize {
    std::env::var(RESTART_COUNT_VAR)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The checkpoint this rank resumes from: on a restart of the job (any rank's restart count
/// above 0), the newest whole checkpoint in `run_dir` if it holds one; otherwise `--resume`'s
/// (a folder's newest). Every rank calls it (it is a collective).
pub fn resume_point(
    resume: Option<&Path>,
    run_dir: &Path,
    comm: &Communicator,
) -> Result<Option<PathBuf>> {
    let mut restarted = [restart_count() as f64];
    comm.all_reduce(&mut restarted, ReduceOp::Max)?;
    if restarted[0] > 0.0 && newest_checkpoint(run_dir).is_ok() {
        return newest_checkpoint(run_dir).map(Some);
    }
    match resume {
        Some(path) if path.is_dir() => newest_checkpoint(path).map(Some),
        Some(path) => Ok(Some(path.to_path_buf())),
        None => Ok(None),
    }
}

/// Fails unless every rank resumes from the same place (a node that cannot see the run folder
/// would start over while the others resume): `at` is this rank's checkpoint, if any.
pub fn check_same_start(at: Option<&Path>, comm: &Communicator) -> Result<()> {
    let position = match at {
        Some(path) => {
            let p = Checkpoint::load(path)?.position();
            [p.epoch as f64, p.batch as f64, p.num_updates as f64]
        }
        None => [0.0; 3],
    };
    let mut highest = position;
    comm.all_reduce(&mut highest, ReduceOp::Max)?;
    let mut apart = [(highest != position) as u8 as f64];
    comm.all_reduce(&mut apart, ReduceOp::Max)?;
    if apart[0] == 0.0 {
        return Ok(());
    }
    Err(Error::Dist(format!(
        "the ranks would resume from different points (rank {} from {}): every node must see \
         the run folder (a shared file system)",
        comm.rank(),
        at.map_or("the start".into(), |p| p.display().to_string())
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_in_minutes_or_seconds() {
        assert_eq!(dist_timeout("30").unwrap(), Duration::from_secs(1800));
        assert_eq!(dist_timeout("0.5").unwrap(), Duration::from_secs(30));
        assert_eq!(dist_timeout("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(dist_timeout("7.5s").unwrap(), Duration::from_millis(7500));
        for bad in ["0", "-1", "x", "", "1e30", "nan"] {
            let e = dist_timeout(bad).unwrap_err().to_string();
            assert!(e.contains("--dist-timeout"), "{e}");
        }
    }
}
