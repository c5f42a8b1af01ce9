//! Reading the files `torch.save` writes (`.pth`, `.pth.tar`, `.bin`): the zip format of PyTorch
//! 1.6 and later and the legacy format before it, little-endian. The pickle inside is read by a
//! machine that builds data only: tensors come from `torch._utils._rebuild_tensor_v2` (and
//! `_rebuild_parameter`) over torch's storage classes, containers from dicts, lists, tuples,
//! sets, `collections.OrderedDict` and `argparse.Namespace` (timm's `args`). Any other global is
//! refused by name and no code from the file ever runs. Every malformed input (a truncated
//! archive, a bad pickle, a view past its storage) is an error naming the file.

mod fault;
mod global_kinds;
mod globals;
mod graph;
mod legacy;
mod storage;
mod unpickler;
mod value;
mod zip_format;

pub use value::Value;

use crate::{Error, Result};
use fault::{bad, Res};
use std::path::Path;

/// Whether `head` (a file's first bytes) looks like a file `torch.save` wrote: a zip archive, or
/// a legacy file's first pickle (PROTO 2 to 5).
pub fn is_torch_file(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04")
        || head.starts_with(b"PK\x05\x06")
        || matches!(head, [0x80, 2..=5, ..])
}

/// Reads the object a file `torch.save` wrote. Tensors are copied out of their storages into
/// contiguous kiln tensors on the CPU, in their saved dtype.
pub fn load(path: &Path) -> Result<Value> {
    let file_err = |msg: String| Error::File {
        path: path.display().to_string(),
        msg,
    };
    let file = std::fs::File::open(path).map_err(|e| file_err(e.to_string()))?;
    // SAFETY: the file is mapped read-only and only read while `map` lives; kiln does not write
    // to checkpoint files it is reading.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| file_err(e.to_string()))?;
    read_bytes(&map, path)
}

/// [`load`] of a file's bytes already in memory; errors name `path`.
pub fn read_bytes(bytes: &[u8], path: &Path) -> Result<Value> {
    read(bytes).map_err(|f| f.at(path))
}

/// The object in `bytes`, by format.
fn read(bytes: &[u8]) -> Res<Value> {
    // Views that repeat their storage may take up to 4 times the file (and 64 MiB) in all.
    let mut budget = bytes.len().saturating_mul(4).saturating_add(64 << 20);
    if bytes.starts_with(b"PK") {
        zip_format::read(bytes, &mut budget)
    } else if bytes.first() == Some(&0x80) {
        legacy::read(bytes, &mut budget)
    } else {
        Err(bad(
            "not a file torch.save wrote (neither a zip archive nor a pickle)",
        ))
    }
}
