//! The model-input flags every command shares, declared once: timm's train.py, validate.py,
//! inference.py and onnx_export.py spell `--img-size`, `--in-chans`, `--input-size`,
//! `--crop-pct`, `--mean`, `--std` and `--interpolation` alike, and kiln's train, validate, infer,
//! export and prune flatten this group.

use super::model_record::ModelRecord;
use clap::Args;
use kiln_train::flags::{finite_f32, finite_f64};
use kiln_train::loader::DataFlags;
use kiln_train::{Error, Result};
use serde::Serialize;

/// Input size, channels, crop, normalization and interpolation of the model's inputs. A value not
/// given comes from the checkpoint's record, else the data (IDX folders: their size and one
/// channel), else the model's pretrained config.
#[derive(Debug, Clone, Default, PartialEq, Args, Serialize)]
pub struct InputFlags {
    /// Input image size (default: the checkpoint's, else the data's for IDX, else the model's;
    /// kiln validate: the model's test size unless --use-train-size).
    #[arg(long)]
    pub img_size: Option<usize>,
    /// Input channels (default: the checkpoint's, else 1 for IDX data, 3 otherwise).
    #[arg(long)]
    pub in_chans: Option<usize>,
    /// All input dimensions, C H W (overrides --in-chans and --img-size; H must equal W).
    #[arg(long, num_args = 3, value_names = ["C", "H", "W"])]
    pub input_size: Option<Vec<usize>>,
    /// Eval center-crop fraction (default: 1 for IDX data, else the model's).
    #[arg(long, value_parser = finite_f64)]
    pub crop_pct: Option<f64>,
    /// Per-channel normalization mean (default: the checkpoint's, else the model's; for one
    /// channel, their average).
    #[arg(long, num_args = 1.., value_parser = finite_f32)]
    pub mean: Option<Vec<f32>>,
    /// Per-channel normalization std (default: as --mean).
    #[arg(long, num_args = 1.., value_parser = finite_f32)]
    pub std: Option<Vec<f32>>,
    /// Eval resize interpolation (default: the checkpoint's, else the model's).
    #[arg(long, default_value = "")]
    pub interpolation: String,
}

impl InputFlags {
    /// `--in-chans` and `--img-size`, with `--input-size C H W` taking their place (as timm's
    /// data config does); kiln's inputs are square, so H must equal W, and a `--in-chans` or
    /// `--img-size` given beside it must agree.
    pub fn dims(&self) -> Result<(Option<usize>, Option<usize>)> {
        let Some(size) = &self.input_size else {
            return Ok((self.in_chans, self.img_size));
        };
        let (c, h, w) = (size[0], size[1], size[2]);
        if h != w {
            return Err(Error::flag(
                "--input-size",
                format!("kiln's inputs are square: got H {h} and W {w}; give equal sizes"),
            ));
        }
        for (name, given, want) in [
            ("--in-chans", self.in_chans, c),
            ("--img-size", self.img_size, h),
        ] {
            if given.is_some_and(|g| g != want) {
                return Err(Error::flag(
                    "--input-size",
                    format!("{c} {h} disagrees with {name} {}", given.unwrap_or(0)),
                ));
            }
        }
        Ok((Some(c), Some(h)))
    }

    /// The `ModelRecord` these flags give, with the command's `--model`, `--model-kwargs` and
    /// `--num-classes` beside them.
    pub fn record(
        &self,
        model: Option<String>,
        model_kwargs: &[String],
        num_classes: Option<usize>,
    ) -> Result<ModelRecord> {
        let (in_chans, img_size) = self.dims()?;
        Ok(ModelRecord {
            model,
            model_kwargs: model_kwargs.to_vec(),
            in_chans,
            num_classes,
            img_size,
            mean: self.mean.clone(),
            std: self.std.clone(),
            crop_pct: self.crop_pct,
            interpolation: Some(self.interpolation.clone()).filter(|i| !i.is_empty()),
        })
    }

    /// Takes the resolved record's channels, size, normalization and interpolation, less its
    /// crop: evaluation keeps timm's crop (the model's test crop, or its train crop with
    /// `--use-train-size`), which a recorded training crop would override.
    pub fn apply(&mut self, r: &ModelRecord) {
        self.in_chans = r.in_chans;
        self.img_size = r.img_size;
        self.mean = r.mean.clone();
        self.std = r.std.clone();
        self.interpolation = r.interpolation.clone().unwrap_or_default();
    }

    /// The flags timm's `resolve_data_config` reads, with `in_chans` the run's channels (the
    /// flags', else the data's) and no `--crop-mode` (validate sets its own).
    pub fn data_flags(&self, in_chans: usize) -> DataFlags {
        DataFlags {
            input_size: self.input_size.as_deref().map(|s| [s[0], s[1], s[2]]),
            img_size: self.img_size,
            in_chans: Some(in_chans),
            interpolation: self.interpolation.clone(),
            mean: self.mean.clone(),
            std: self.std.clone(),
            crop_pct: self.crop_pct,
            crop_mode: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_size_stands_for_channels_and_size_and_must_agree() {
        let mut a = InputFlags::default();
        assert_eq!(a.dims().unwrap(), (None, None));
        a.input_size = Some(vec![1, 32, 32]);
        assert_eq!(a.dims().unwrap(), (Some(1), Some(32)));
        a.img_size = Some(28);
        assert!(a.dims().unwrap_err().to_string().contains("--img-size 28"));
        a.img_size = None;
        a.input_size = Some(vec![3, 32, 48]);
        assert!(a.dims().unwrap_err().to_string().contains("square"));
    }

    #[test]
    fn a_record_round_trips_through_the_flags() {
        let a = InputFlags {
            input_size: Some(vec![1, 32, 32]),
            mean: Some(vec![0.5]),
            interpolation: "bicubic".into(),
            ..InputFlags::default()
        };
        let r = a.record(Some("resnet18".into()), &[], Some(10)).unwrap();
        assert_eq!(
            (r.in_chans, r.img_size, r.num_classes),
            (Some(1), Some(32), Some(10))
        );
        let mut b = InputFlags::default();
        b.apply(&r);
        assert_eq!(b.record(r.model.clone(), &[], Some(10)).unwrap(), r);
        assert_eq!(b.data_flags(1).interpolation, "bicubic");
    }
}
