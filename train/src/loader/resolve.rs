//! timm's `resolve_data_config`: the input size, interpolation, mean, std and crop fraction of a
//! run, each from its flag when given, else from the model's pretrained config, else timm's
//! default. `kiln train` (for evaluation during training and the train pipeline) and
//! `kiln validate` both resolve through [`resolve_data_config`], so a run's best metric and a
//! validation of its best checkpoint see the same images.
//!
//! ```
//! use kiln_train::loader::{resolve_data_config, DataFlags};
//!
//! let model = kiln_nn::create_model("resnet18", &kiln_nn::ModelArgs::default())?;
//! let flags = DataFlags { img_size: Some(160), ..DataFlags::default() };
//! let r = resolve_data_config(&flags, model.pretrained_cfg(), false)?;
//! assert_eq!((r.img_size, r.crop_pct, r.interpolation.as_str()), (160, 0.95, "bicubic"));
//! let cfg = kiln_train::loader::DataConfig { batch_size: 64, ..r.data_config() };
//! # Ok::<(), kiln_train::Error>(())
//! ```

use super::DataConfig;
use crate::augment::{DEFAULT_CROP_MODE, DEFAULT_CROP_PCT};
use crate::{Error, Result};
use kiln_nn::PretrainedCfg;

/// The flags timm's `resolve_data_config` reads, as given (`None` or `""`: not given).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataFlags {
    /// `--input-size C H W`: overrides `in_chans` and `img_size`.
    pub input_size: Option<[usize; 3]>,
    /// `--img-size`: square input size.
    pub img_size: Option<usize>,
    /// `--in-chans` (timm's default 3).
    pub in_chans: Option<usize>,
    /// `--interpolation`: eval resize filter.
    pub interpolation: String,
    /// `--mean`: one value (repeated per channel) or one per channel.
    pub mean: Option<Vec<f32>>,
    /// `--std`: as `mean`.
    pub std: Option<Vec<f32>>,
    /// `--crop-pct`: eval crop fraction (0, like timm's falsy value, counts as not given).
    pub crop_pct: Option<f64>,
    /// `--crop-mode`: eval crop mode (empty counts as not given, as timm's falsy value).
    pub crop_mode: Option<String>,
}

/// The data settings `resolve_data_config` settles on.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedData {
    /// Input channels.
    pub in_chans: usize,
    /// Square input size (height = width).
    pub img_size: usize,
    /// Eval resize filter (`bicubic`, `bilinear`, ...).
    pub interpolation: String,
    /// Normalization mean, one per channel.
    pub mean: Vec<f32>,
    /// Normalization std, one per channel.
    pub std: Vec<f32>,
    /// Eval crop fraction.
    pub crop_pct: f64,
    /// Eval crop mode: `center`, `squash` or `border`.
    pub crop_mode: String,
}

impl ResolvedData {
    /// A [`DataConfig`] with these settings and the other fields at their defaults.
    pub fn data_config(&self) -> DataConfig {
        DataConfig {
            img_size: self.img_size,
            in_chans: self.in_chans,
            interpolation: self.interpolation.clone(),
            mean: Some(self.mean.clone()),
            std: Some(self.std.clone()),
            crop_pct: Some(self.crop_pct),
            crop_mode: self.crop_mode.clone(),
            ..DataConfig::default()
        }
    }
}

/// timm's `resolve_data_config(args, model=model, use_test_size=use_test_size)` over `flags` and
/// the model's pretrained config `cfg`, in timm's precedence:
/// - size: `--input-size`, else `--img-size`, else the cfg's test input size (with
///   `use_test_size`, as validate.py asks unless `--use-train-size`), else its input size;
/// - interpolation: the flag when not empty, else the cfg's, else bicubic;
/// - mean and std: the flags (one value repeated per channel), else the cfg's;
/// - crop fraction: the flag when not 0, else the cfg's test crop (with `use_test_size`), else its
///   crop, else 0.875;
/// - crop mode: the flag when not empty, else the cfg's when not empty, else `center`.
///
/// The channels come from `--input-size`, else `--in-chans`, else 3, never from the cfg's input
/// size: timm would take the cfg's 3 there and read a 1-channel model's data as RGB. For one
/// channel the cfg's three means (and stds) become their average. kiln trains square images, so
/// an input size with H ≠ W is refused, as is a `--mean`/`--std` that is neither one value nor one
/// per channel.
pub fn resolve_data_config(
    flags: &DataFlags,
    cfg: &PretrainedCfg,
    use_test_size: bool,
) -> Result<ResolvedData> {
    let in_chans = flags
        .input_size
        .map(|s| s[0])
        .or(flags.in_chans)
        .unwrap_or(3);
    let [_, h, w] = match (flags.input_size, flags.img_size) {
        (Some(size), _) => size,
        (None, Some(s)) => [in_chans, s, s],
        (None, None) => match cfg.test_input_size.filter(|_| use_test_size) {
            Some(test) => test,
            None => cfg.input_size,
        },
    };
    if h != w {
        return Err(flag(
            "--input-size",
            format!("kiln uses square images: got H {h} and W {w}; give equal sizes"),
        ));
    }
    let interpolation = [flags.interpolation.as_str(), cfg.interpolation.as_str()]
        .into_iter()
        .find(|i| !i.is_empty())
        .unwrap_or("bicubic")
        .to_string();
    let test_crop = cfg.test_crop_pct.filter(|c| use_test_size && *c != 0.0);
    let crop_pct = flags
        .crop_pct
        .filter(|c| *c != 0.0)
        .or(test_crop)
        .or((cfg.crop_pct != 0.0).then_some(cfg.crop_pct))
        .unwrap_or(DEFAULT_CROP_PCT);
    let crop_mode = [flags.crop_mode.as_deref(), Some(cfg.crop_mode.as_str())]
        .into_iter()
        .flatten()
        .find(|m| !m.is_empty())
        .unwrap_or(DEFAULT_CROP_MODE)
        .to_string();
    Ok(ResolvedData {
        in_chans,
        img_size: h,
        interpolation,
        mean: per_channel("--mean", flags.mean.as_deref(), cfg.mean, in_chans)?,
        std: per_channel("--std", flags.std.as_deref(), cfg.std, in_chans)?,
        crop_pct,
        crop_mode,
    })
}

/// A flag's values for `chans` channels (one value repeated), else the cfg's three (their f32
/// average for one channel, as `default_mean_std` computes it).
fn per_channel(name: &str, given: Option<&[f32]>, cfg: [f64; 3], chans: usize) -> Result<Vec<f32>> {
    match given {
        Some([one]) => Ok(vec![*one; chans]),
        Some(values) if values.len() == chans => Ok(values.to_vec()),
        Some(values) => Err(flag(
            name,
            format!(
                "{} values for {chans} input channel(s): give one, or one per channel",
                values.len()
            ),
        )),
        None => {
            let cfg = cfg.map(|v| v as f32);
            if chans == 3 {
                Ok(cfg.to_vec())
            } else {
                Ok(vec![cfg.iter().sum::<f32>() / 3.0; chans])
            }
        }
    }
}

fn flag(flag: &str, msg: String) -> Error {
    Error::Flag {
        flag: flag.into(),
        msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::default_mean_std;

    fn resnet18() -> PretrainedCfg {
        kiln_nn::create_model("resnet18", &kiln_nn::ModelArgs::default())
            .unwrap()
            .pretrained_cfg()
            .clone()
    }

    #[test]
    fn one_channel_averages_the_cfg_as_the_default_normalization_does() {
        let flags = DataFlags {
            in_chans: Some(1),
            ..DataFlags::default()
        };
        let r = resolve_data_config(&flags, &resnet18(), false).unwrap();
        assert_eq!((r.mean, r.std), default_mean_std(1));
    }

    #[test]
    fn bad_sizes_and_lengths_name_their_flag() {
        let cfg = resnet18();
        let flags = DataFlags {
            input_size: Some([3, 32, 48]),
            ..DataFlags::default()
        };
        let e = resolve_data_config(&flags, &cfg, false).unwrap_err();
        assert!(e.to_string().starts_with("--input-size: "), "{e}");
        let flags = DataFlags {
            std: Some(vec![0.2, 0.3]),
            ..DataFlags::default()
        };
        let e = resolve_data_config(&flags, &cfg, false).unwrap_err();
        assert!(e.to_string().starts_with("--std: 2 values"), "{e}");
    }
}
