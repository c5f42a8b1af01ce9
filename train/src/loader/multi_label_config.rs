//! `MultiLabelConfig`: multi-label classification (kiln's flags; timm's train.py has none), read
//! from a label file in each split folder (see [`crate::data::MultiLabelFolder`]).

use crate::data::{find_label_file, ClassMap, MultiLabelFolder};
#[cfg(feature = "clap")]
use crate::flags::finite_f64;
use crate::flags::{first_outside, Range};
use crate::setters::setters;
use crate::{Error, Result};
use serde::Serialize;
use std::path::Path;

/// The multi-label flags, declared once here (the `kiln` commands flatten this struct).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct MultiLabelConfig {
    /// Multi-label classification: each split folder's label file gives every image its classes;
    /// trains with binary cross-entropy on multi-hot targets (--bce-* apply) and validates with
    /// mAP and F1.
    #[cfg_attr(feature = "clap", arg(long))]
    pub multi_label: bool,
    /// The label file's name in each split folder (default: labels.csv, else labels.json).
    #[cfg_attr(feature = "clap", arg(long))]
    pub multi_label_file: Option<String>,
    /// Probability (sigmoid of the logit) from which a class counts as predicted: F1 and the
    /// labels `kiln infer` outputs.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0.5, value_parser = finite_f64))]
    pub multi_label_thresh: f64,
}

impl Default for MultiLabelConfig {
    /// Single-label data; a 0.5 threshold.
    fn default() -> Self {
        MultiLabelConfig {
            multi_label: false,
            multi_label_file: None,
            multi_label_thresh: 0.5,
        }
    }
}

setters!(MultiLabelConfig {
    multi_label: bool,
    into multi_label_file?: String,
    multi_label_thresh: f64,
});

impl MultiLabelConfig {
    /// Refuses a threshold outside [0, 1] and a label file without `--multi-label`.
    pub fn check_ranges(&self) -> Result<()> {
        if self.multi_label_file.is_some() && !self.multi_label {
            return Err(Error::flag("--multi-label-file", "needs --multi-label"));
        }
        first_outside([(
            "--multi-label-thresh",
            vec![self.multi_label_thresh],
            Range::Unit,
        )])
    }

    /// The multi-label dataset of split folder `dir`: its label file read with `classes` (a
    /// class map, or the training split's classes), images decoded to `chans` channels.
    pub fn open(
        &self,
        dir: &Path,
        classes: Option<ClassMap>,
        chans: usize,
    ) -> Result<MultiLabelFolder> {
        let file = find_label_file(dir, self.multi_label_file.as_deref())?;
        MultiLabelFolder::open(dir, &file, classes, chans)
    }
}
