//! `--device cuda:0,1,...`: the list parsed, and each rank's generator seeded.

use kiln_engine::{manual_seed, manual_seed_thread};
use kiln_train::dist::Communicator;
use kiln_train::{Error, Result};

/// The CUDA ordinals of a `--device` list (`cuda:0,1` or `cuda:0,cuda:1`); None for one device.
pub fn device_list(flag: &str) -> Result<Option<Vec<usize>>> {
    if !flag.contains(',') {
        return Ok(None);
    }
    let bad = || Error::Flag {
        flag: "--device".into(),
        msg: format!("'{flag}' is not a list of distinct CUDA devices such as cuda:0,1"),
    };
    let list = flag.strip_prefix("cuda:").ok_or_else(bad)?;
    let mut ordinals = Vec::new();
    for item in list.split(',') {
        let n: usize = item
            .trim()
            .trim_start_matches("cuda:")
            .parse()
            .map_err(|_| bad())?;
        if ordinals.contains(&n) {
            return Err(bad());
        }
        ordinals.push(n);
    }
    Ok(Some(ordinals))
}

/// Seeds the calling rank's generator with `seed + rank` (timm's `random_seed(seed, rank)`):
/// the process-wide generator, or the thread's own when the ranks are threads of one process.
pub fn seed_rank(comm: &Communicator, seed: u64) {
    let seed = seed + comm.rank() as u64;
    match comm {
        Communicator::Threads(_) => manual_seed_thread(seed),
        _ => manual_seed(seed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_lists_parse_or_name_the_flag() {
        assert_eq!(device_list("cuda:1").unwrap(), None);
        assert_eq!(device_list("cuda:0,1,3").unwrap(), Some(vec![0, 1, 3]));
        assert_eq!(device_list("cuda:2,cuda:0").unwrap(), Some(vec![2, 0]));
        for bad in ["cuda:0,0", "cpu,cuda:0", "cuda:0,x", "cuda:0,"] {
            let e = device_list(bad).unwrap_err().to_string();
            assert!(e.starts_with("--device: ") && e.contains(bad), "{e}");
        }
    }
}
