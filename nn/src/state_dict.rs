//! State dicts as safetensors files, keyed by timm's names.

use crate::{Error, Module, Result};
use kiln_engine::{DType, Tensor};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Name -> tensor for every parameter and buffer of `m`.
pub fn state_dict(m: &dyn Module) -> BTreeMap<String, Tensor> {
    m.named_tensors()
        .into_iter()
        .map(|t| (t.name, t.tensor))
        .collect()
}

fn to_st(d: DType) -> Dtype {
    match d {
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
        DType::F16 => Dtype::F16,
        DType::BF16 => Dtype::BF16,
        DType::I64 => Dtype::I64,
        DType::I32 => Dtype::I32,
        DType::U8 => Dtype::U8,
        DType::Bool => Dtype::BOOL,
    }
}

fn from_st(d: Dtype) -> Option<DType> {
    Some(match d {
        Dtype::F32 => DType::F32,
        Dtype::F64 => DType::F64,
        Dtype::F16 => DType::F16,
        Dtype::BF16 => DType::BF16,
        Dtype::I64 => DType::I64,
        Dtype::I32 => DType::I32,
        Dtype::U8 => DType::U8,
        Dtype::BOOL => DType::Bool,
        _ => return None,
    })
}

fn file_err(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::File {
        path: path.display().to_string(),
        msg: msg.to_string(),
    }
}

/// The metadata key of the checksum kiln writes with every safetensors file: CRC-32 over the
/// tensors in name order (each one's name, dtype, shape and bytes), checked on every load.
pub const CHECKSUM_KEY: &str = "kiln_tensors_crc32";

/// The checksum of [`CHECKSUM_KEY`] over `(name, dtype, shape, bytes)` in name order, as hex.
fn tensors_crc32<'a>(
    tensors: impl Iterator<Item = (&'a str, Dtype, &'a [usize], &'a [u8])>,
) -> String {
    let mut h = crc32fast::Hasher::new();
    for (name, dtype, shape, data) in tensors {
        h.update(name.as_bytes());
        h.update(format!("{dtype:?}{shape:?}").as_bytes());
        h.update(data);
    }
    format!("{:08x}", h.finalize())
}

/// Writes `tensors` (and string `metadata`) to a safetensors file atomically: a temporary file
/// renamed into place, so a crash never leaves a half-written file under `path`.
pub fn save_safetensors(
    tensors: &BTreeMap<String, Tensor>,
    metadata: Option<HashMap<String, String>>,
    path: &Path,
) -> Result<()> {
    let mut bytes: Vec<(String, Vec<u8>, Tensor)> = Vec::new();
    for (name, t) in tensors {
        let c = t.to_device(kiln_engine::Device::Cpu)?.contiguous()?;
        let data = c.storage().cpu("save_safetensors")?.as_bytes()
            [c.layout().offset() * c.dtype().size_in_bytes()..]
            [..c.numel() * c.dtype().size_in_bytes()]
            .to_vec();
        bytes.push((name.clone(), data, c));
    }
    let views = bytes
        .iter()
        .map(|(n, d, t)| {
            Ok((
                n.clone(),
                TensorView::new(to_st(t.dtype()), t.shape().to_vec(), d)
                    .map_err(|e| file_err(path, e))?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let checksum = tensors_crc32(
        views
            .iter()
            .map(|(n, v)| (n.as_str(), v.dtype(), v.shape(), v.data())),
    );
    let mut metadata = metadata.unwrap_or_default();
    metadata.insert(CHECKSUM_KEY.into(), checksum);
    let bytes = safetensors::serialize(views, &Some(metadata)).map_err(|e| file_err(path, e))?;
    write_durably(path, &bytes)
}

/// Writes `bytes` to `<path>.tmp`, syncs it, renames it over `path` and syncs the folder: a crash
/// at any point leaves either the old file or the new one, whole; a failed write (a full disk)
/// removes the temporary file and leaves `path` as it was.
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    let tmp = std::path::PathBuf::from(name);
    let written = write_synced(&tmp, bytes).and_then(|()| {
        std::fs::rename(&tmp, path).map_err(|e| file_err(path, format!("cannot replace: {e}")))
    });
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| file_err(dir, format!("cannot sync the folder: {e}")))?;
    }
    Ok(())
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f =
        std::fs::File::create(path).map_err(|e| file_err(path, format!("cannot create: {e}")))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| file_err(path, format!("cannot write: {e}")))
}

/// Reads every tensor of a safetensors file.
pub fn load_safetensors(path: &Path) -> Result<BTreeMap<String, Tensor>> {
    Ok(load_safetensors_with_metadata(path)?.0)
}

/// Reads every tensor of a safetensors file and its string metadata.
pub fn load_safetensors_with_metadata(
    path: &Path,
) -> Result<(BTreeMap<String, Tensor>, HashMap<String, String>)> {
    let file = std::fs::File::open(path).map_err(|e| file_err(path, e))?;
    // SAFETY: the file is mapped read-only and only read while `map` lives; kiln does not write
    // to checkpoint files it is reading.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| file_err(path, e))?;
    let not_st =
        |e: safetensors::SafeTensorError| file_err(path, format!("not a safetensors file: {e}"));
    let (_, header) = SafeTensors::read_metadata(&map).map_err(not_st)?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let st = SafeTensors::deserialize(&map).map_err(not_st)?;
    if let Some(stored) = metadata.get(CHECKSUM_KEY) {
        let mut views = st.tensors();
        views.sort_by(|a, b| a.0.cmp(&b.0));
        let views = views.iter();
        let actual =
            tensors_crc32(views.map(|(n, v)| (n.as_str(), v.dtype(), v.shape(), v.data())));
        if *stored != actual {
            return Err(file_err(
                path,
                format!("the tensors do not match the checksum written with them ({CHECKSUM_KEY} {stored}, read {actual}): the file is corrupt"),
            ));
        }
    }
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let dtype = from_st(view.dtype()).ok_or_else(|| {
            file_err(
                path,
                format!("tensor '{name}' has unsupported dtype {:?}", view.dtype()),
            )
        })?;
        out.insert(name, Tensor::from_bytes(view.data(), dtype, view.shape())?);
    }
    Ok((out, metadata))
}

/// What `load_state_dict` did not match (non-strict loading reports instead of failing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Model tensors absent from the state dict.
    pub missing: Vec<String>,
    /// State-dict tensors the model does not have.
    pub unexpected: Vec<String>,
}

/// Copies `sd` into `m`'s tensors by name (converting dtypes). Strict loading fails on any
/// missing or unexpected key; a missing `num_batches_tracked` is tolerated as in PyTorch.
pub fn load_state_dict(
    m: &dyn Module,
    sd: &BTreeMap<String, Tensor>,
    strict: bool,
) -> Result<LoadReport> {
    let own = m.named_tensors();
    let mut report = LoadReport::default();
    for t in &own {
        match sd.get(&t.name) {
            Some(src) if src.shape() != t.tensor.shape() => {
                return Err(Error::ShapeMismatch {
                    key: t.name.clone(),
                    expected: t.tensor.shape().to_vec(),
                    got: src.shape().to_vec(),
                })
            }
            Some(src) => t.tensor.copy_(src)?,
            None if t.name.ends_with("num_batches_tracked") => {}
            None => report.missing.push(t.name.clone()),
        }
    }
    report.unexpected = sd
        .keys()
        .filter(|k| !own.iter().any(|t| &t.name == *k))
        .cloned()
        .collect();
    if strict && (!report.missing.is_empty() || !report.unexpected.is_empty()) {
        return Err(Error::KeyMismatch {
            missing: report.missing,
            unexpected: report.unexpected,
        });
    }
    Ok(report)
}
