//! The flags `kiln validate` and `kiln infer` share (timm's validate.py and inference.py spell
//! them alike): the model, its weights, the data, the input pipeline and the precision. They
//! serialize under the dest names of timm's argparse namespace, which tests/cli_script_argparse.rs
//! compares with the namespaces timm's own parsers make of the same command lines.

use super::data_source::DataSource;
use super::input_flags::InputFlags;
use clap::Args;
use kiln_engine::DType;
use kiln_train::amp::{amp_dtype, model_dtype};
use kiln_train::loader::MultiLabelConfig;
use serde::{Serialize, Serializer};
use std::path::PathBuf;

/// Model, weights, data and input flags common to `kiln validate` and `kiln infer`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct EvalArgs {
    /// The dataset root and type (DATA, `--data-dir`, `--dataset`).
    #[command(flatten)]
    #[serde(flatten)]
    pub source: DataSource,
    /// Split to read.
    #[arg(long, default_value = "validation")]
    pub split: String,
    /// Class map file (one class folder name per line; `kiln infer` labels its predictions with
    /// these names).
    #[arg(long)]
    pub class_map: Option<PathBuf>,
    /// Model name (default: the checkpoint's).
    #[arg(short = 'm', long)]
    pub model: Option<String>,
    /// Model keyword arguments as KEY=VALUE (as kiln train's --model-kwargs).
    #[arg(long, num_args = 0.., value_name = "KEY=VALUE")]
    #[serde(serialize_with = "kiln_train::flags::kwargs_as_mapping")]
    pub model_kwargs: Vec<String>,
    /// Use the model's pretrained weights, read from the Hugging Face hub cache (timm's default
    /// when no --checkpoint is given; a checkpoint's weights replace them).
    #[arg(long)]
    pub pretrained: bool,
    /// Classes (default: the checkpoint's or pretrained head's, else the dataset's).
    #[arg(long)]
    pub num_classes: Option<usize>,
    /// Batch size.
    #[arg(short = 'b', long, default_value_t = 256)]
    pub batch_size: usize,
    /// The model-input flags (`--img-size` to `--interpolation`).
    #[command(flatten)]
    #[serde(flatten)]
    pub input: InputFlags,
    /// Use the model's train input size and crop, not its test ones (what training's evaluation
    /// used).
    #[arg(long)]
    pub use_train_size: bool,
    /// How images are fitted to the input: center (shorter side scaled, centre crop), squash (both
    /// sides scaled) or border (longer side scaled, padded with the mean colour); default: the
    /// model's, else center.
    #[arg(long)]
    pub crop_mode: Option<String>,
    /// Run in channels-last memory order.
    #[arg(long)]
    pub channels_last: bool,
    /// Test-time pooling: above the model's pretrained input size, its classifier runs on every
    /// window of its trained pooling size, averaged with the maximum (crop 1).
    #[arg(long)]
    pub test_pool: bool,
    /// Device: auto (the first GPU when one is present, else the CPU), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// GPUs for DataParallel (kiln: one; more is refused with what to use instead).
    #[arg(long, default_value_t = 1)]
    pub num_gpu: usize,
    /// Mixed precision inference in --amp-dtype.
    #[arg(long)]
    pub amp: bool,
    /// The AMP dtype: float16 or bfloat16.
    #[arg(long, default_value = "float16")]
    pub amp_dtype: String,
    /// Model dtype without AMP: float32, float16, bfloat16 (default float32).
    #[arg(long)]
    pub model_dtype: Option<String>,
    /// torch.compile mode (refused).
    #[arg(long)]
    pub torchcompile_mode: Option<String>,
    /// TorchScript (refused).
    #[arg(long)]
    pub torchscript: bool,
    /// torch.compile with this backend (refused).
    #[arg(long, num_args = 0..=1, default_missing_value = "inductor", value_name = "BACKEND")]
    pub torchcompile: Option<String>,
    /// AOT autograd (refused).
    #[arg(long)]
    pub aot_autograd: bool,
    /// TorchScript fuser (refused).
    #[arg(long, default_value = "")]
    pub fuser: String,
    /// Multi-label data and outputs (kiln's flags): validate with mAP and F1 against the split's
    /// label file; `kiln infer` outputs every class above the threshold.
    #[command(flatten)]
    pub multi_label: MultiLabelConfig,
}

impl EvalArgs {
    /// The autocast dtype (with `--amp`, from `--amp-dtype`) and the model dtype (`--model-dtype`).
    pub fn precision(&self) -> kiln_train::Result<(Option<DType>, Option<DType>)> {
        let amp = self.amp.then(|| amp_dtype(&self.amp_dtype)).transpose()?;
        Ok((amp, model_dtype(self.model_dtype.as_deref(), self.amp)?))
    }
}

/// A clap value enum under its command-line name (`macro`), as timm's namespace holds the string.
pub fn value_enum_name<S: Serializer, E: clap::ValueEnum>(
    value: &Option<E>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value.as_ref().and_then(E::to_possible_value) {
        Some(v) => s.serialize_str(v.get_name()),
        None => s.serialize_none(),
    }
}
