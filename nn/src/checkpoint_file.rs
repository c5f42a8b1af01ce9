//! Any checkpoint file, told apart by its content: safetensors (kiln's checkpoints and state
//! dicts, timm's `.safetensors` weights) or a file `torch.save` wrote (timm's `.pth.tar`
//! checkpoints, `.pth` / `.bin` state dicts). [`load_weights`] is timm's `load_state_dict`: the
//! model weights a checkpoint holds, its EMA weights first when asked, wrapper prefixes dropped.

use crate::torch_file::{self, Value};
use crate::{load_safetensors_with_metadata, Error, Result};
use kiln_engine::Tensor;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

/// A checkpoint file's contents, by format.
#[derive(Debug)]
pub enum CheckpointFile {
    /// A safetensors file: its tensors by name and its string metadata.
    Safetensors {
        /// The tensors by name.
        tensors: BTreeMap<String, Tensor>,
        /// The header's `__metadata__`.
        metadata: HashMap<String, String>,
    },
    /// A file `torch.save` wrote: the object it holds.
    Torch(Value),
}

/// Reads a checkpoint file, safetensors or torch's, by its first bytes (not its name).
pub fn read_checkpoint_file(path: &Path) -> Result<CheckpointFile> {
    let mut head = [0u8; 16];
    let n = std::fs::File::open(path)
        .and_then(|mut f| read_head(&mut f, &mut head))
        .map_err(|e| file_err(path, e))?;
    let head = &head[..n];
    // safetensors: an 8-byte header length, then the JSON header.
    if head.get(8) == Some(&b'{') {
        let (tensors, metadata) = load_safetensors_with_metadata(path)?;
        Ok(CheckpointFile::Safetensors { tensors, metadata })
    } else if torch_file::is_torch_file(head) {
        Ok(CheckpointFile::Torch(torch_file::load(path)?))
    } else {
        Err(file_err(
            path,
            "not a checkpoint: neither a safetensors file nor one torch.save wrote",
        ))
    }
}

/// Up to `buf.len()` bytes from the start of `f`.
fn read_head(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn file_err(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::File {
        path: path.display().to_string(),
        msg: msg.to_string(),
    }
}

/// The model weights of a checkpoint and the entry they came from.
#[derive(Debug, Clone)]
pub struct Weights {
    /// The state dict, cleaned as timm's `clean_state_dict` does.
    pub tensors: BTreeMap<String, Tensor>,
    /// The checkpoint entry they are (`state_dict_ema`, `model_ema`, `state_dict`, `model`), or
    /// `""` for a plain state dict.
    pub source: &'static str,
}

/// timm's `load_state_dict(path, use_ema)`: from a checkpoint dict the EMA weights when
/// `use_ema` and it has them (`state_dict_ema`, then `model_ema`), else `state_dict`, else
/// `model`; a plain state dict as it is. Either format; kiln's own checkpoints keep the entries
/// as name prefixes (`state_dict.*`, `state_dict_ema.*`). Keys lose `module.` and `_orig_mod.`.
pub fn load_weights(path: &Path, use_ema: bool) -> Result<Weights> {
    let entries: &[&'static str] = if use_ema {
        &["state_dict_ema", "model_ema", "state_dict", "model"]
    } else {
        &["state_dict", "model"]
    };
    let (tensors, source) = match read_checkpoint_file(path)? {
        CheckpointFile::Safetensors { tensors, .. } => {
            // kiln's checkpoints have `state_dict.*` and `state_dict_ema.*`; `model.` may be
            // a plain state dict's module.
            let has = |e: &str| tensors.keys().any(|k| k.starts_with(&format!("{e}.")));
            match entries
                .iter()
                .copied()
                .find(|e| e.starts_with("state_dict") && has(e))
            {
                Some(e) => {
                    let prefix = format!("{e}.");
                    let part = tensors
                        .into_iter()
                        .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_string(), v)))
                        .collect();
                    (part, e)
                }
                _ => (tensors, ""),
            }
        }
        CheckpointFile::Torch(root) => {
            let present = |e: &str| root.get(e).is_some_and(|v| !matches!(v, Value::None));
            let source = entries.iter().copied().find(|e| present(e)).unwrap_or("");
            let part = if source.is_empty() {
                &root
            } else {
                root.get(source).unwrap_or(&root)
            };
            let sd = part.to_state_dict().map_err(|msg| match source {
                "" => file_err(path, msg),
                e => file_err(path, format!("'{e}': {msg}")),
            })?;
            (sd, source)
        }
    };
    Ok(Weights {
        tensors: clean_state_dict(tensors),
        source,
    })
}

/// timm's `clean_state_dict`: the prefixes of a DDP-wrapped (`module.`) and a torch.compile'd
/// (`_orig_mod.`) model's saves removed, in that order.
pub fn clean_state_dict(sd: BTreeMap<String, Tensor>) -> BTreeMap<String, Tensor> {
    sd.into_iter()
        .map(|(k, v)| {
            let k = k.strip_prefix("module.").unwrap_or(&k);
            let k = k.strip_prefix("_orig_mod.").unwrap_or(k);
            (k.to_string(), v)
        })
        .collect()
}
