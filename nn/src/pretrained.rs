//! Starting from timm weights: timm's `load_pretrained` for a local checkpoint file (safetensors
//! or one `torch.save` wrote), with the first convolution adapted to the model's input channels
//! and the classifier reset.

use crate::{load_state_dict, load_weights, Error, Model, Result};
use kiln_engine::Tensor;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Weights to start from (timm's `pretrained_cfg_overlay=dict(file=...)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PretrainedSource {
    /// A state dict or checkpoint with timm's parameter names: safetensors, or a file
    /// `torch.save` wrote (a checkpoint's EMA weights are taken when it has them, as timm does).
    pub file: PathBuf,
    /// Re-initialize the classifier even when its classes match the file's (timm's train.py
    /// forces this for `--pretrained-path`); otherwise it is reset only when the classes differ.
    pub reset_classifier: bool,
}

/// What [`load_pretrained`] adapted on the way in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PretrainedReport {
    /// The first conv's input channels, (file, model), when they were converted.
    pub converted_input_conv: Option<(usize, usize)>,
    /// The first conv kept its fresh init: timm's conversion does not cover the file's channels.
    pub input_conv_left_random: bool,
    /// The classifier kept its fresh init.
    pub classifier_reset: bool,
}

/// timm's `adapt_input_conv`: a first-conv weight (O, I, kh, kw) for `in_chans` input channels.
/// One channel sums the RGB filters (or each RGB triple of a space-to-depth stem); other counts
/// repeat the RGB filters cyclically, scaled by 3 / `in_chans`; the result has the weight's dtype.
/// `None` where timm raises `NotImplementedError` (a file with neither 3 channels nor a multiple
/// of 3 for `in_chans` 1).
pub fn adapt_input_conv(in_chans: usize, weight: &Tensor) -> Result<Option<Tensor>> {
    let &[o, i, kh, kw] = weight.shape() else {
        return Ok(None);
    };
    let w = weight.to_vec_f32()?;
    let plane = kh * kw;
    let at = |oc: usize, ic: usize| &w[(oc * i + ic) * plane..(oc * i + ic + 1) * plane];
    let (out_chans, data): (usize, Vec<f32>) = match (in_chans, i) {
        (3, 3) => return Ok(Some(weight.clone())),
        (1, i) if i > 3 && i % 3 == 0 => (i / 3, sum_groups(o, i / 3, 3, &at)),
        (1, i) if i <= 3 => (1, sum_groups(o, 1, i, &at)),
        (n, 3) if n != 1 => (n, repeat_scaled(o, n, &at)),
        _ => return Ok(None),
    };
    // timm computes in float32 and returns the weight's own dtype (`.to(conv_type)`).
    let adapted = Tensor::from_vec(data, &[o, out_chans, kh, kw])?;
    Ok(Some(adapted.to_dtype(weight.dtype())?))
}

/// out[oc, g] = Σ_t filter(oc, g·size + t) for t < `size`: each group of `size` channels summed.
fn sum_groups<'a>(
    o: usize,
    groups: usize,
    size: usize,
    at: &impl Fn(usize, usize) -> &'a [f32],
) -> Vec<f32> {
    let mut out = Vec::new();
    for oc in 0..o {
        for g in 0..groups {
            let mut acc = at(oc, g * size).to_vec();
            for t in 1..size {
                acc.iter_mut()
                    .zip(at(oc, g * size + t))
                    .for_each(|(s, v)| *s += v);
            }
            out.extend(acc);
        }
    }
    out
}

/// out[oc, c] = filter(oc, c mod 3) · 3 / n (timm's `repeat(1, ceil(n/3), 1, 1)[:, :n] * 3/n`).
fn repeat_scaled<'a>(o: usize, n: usize, at: &impl Fn(usize, usize) -> &'a [f32]) -> Vec<f32> {
    let scale = 3.0 / n as f32;
    let mut out = Vec::new();
    for oc in 0..o {
        for c in 0..n {
            out.extend(at(oc, c % 3).iter().map(|v| v * scale));
        }
    }
    out
}

/// timm's `load_pretrained` from a local file: reads `source.file` as timm's `load_state_dict`
/// does ([`load_weights`]: EMA weights first, `module.` prefixes dropped), adapts the first conv to the model's input channels, drops the
/// classifier when asked or when its shape differs, and loads the rest. Every other mismatch is
/// an error naming the file and the keys.
pub fn load_pretrained(model: &dyn Model, source: &PretrainedSource) -> Result<PretrainedReport> {
    let path = source.file.as_path();
    let mut sd = load_weights(path, true)?.tensors;
    let own: BTreeMap<String, Tensor> = model
        .named_tensors()
        .into_iter()
        .map(|t| (t.name, t.tensor))
        .collect();
    let cfg = model.pretrained_cfg();
    let mut report = PretrainedReport::default();
    let mut left_random = Vec::new();

    for first in cfg.first_convs() {
        let conv_key = format!("{first}.weight");
        if let (Some(file_w), Some(model_w)) = (sd.get(&conv_key), own.get(&conv_key)) {
            if file_w.shape() != model_w.shape() {
                let (file_chans, in_chans) = (file_w.shape()[1], model_w.shape()[1]);
                match adapt_input_conv(in_chans, file_w)? {
                    Some(w) => {
                        sd.insert(conv_key.clone(), w);
                        report.converted_input_conv = Some((file_chans, in_chans));
                    }
                    None => {
                        sd.remove(&conv_key);
                        left_random.push(conv_key.clone());
                        report.input_conv_left_random = true;
                    }
                }
            }
        }
    }

    let head: Vec<String> = cfg
        .classifiers()
        .flat_map(|c| [format!("{c}.weight"), format!("{c}.bias")])
        .collect();
    let head_differs = head
        .iter()
        .any(|k| sd.get(k).map(|t| t.shape().to_vec()) != own.get(k).map(|t| t.shape().to_vec()));
    if source.reset_classifier || head_differs {
        for k in &head {
            sd.remove(k);
            if own.contains_key(k) {
                left_random.push(k.clone());
            }
        }
        report.classifier_reset = true;
    }

    let in_file = |e: Error| Error::File {
        path: path.display().to_string(),
        msg: format!("as pretrained weights for {}: {e}", cfg.name),
    };
    let loaded = load_state_dict(model, &sd, false).map_err(in_file)?;
    let missing: Vec<String> = loaded
        .missing
        .into_iter()
        .filter(|k| !left_random.contains(k))
        .collect();
    if !missing.is_empty() || !loaded.unexpected.is_empty() {
        return Err(in_file(Error::KeyMismatch {
            missing,
            unexpected: loaded.unexpected,
        }));
    }
    Ok(report)
}
