//! `kiln infer`'s flags: timm's `inference.py`, with its names and defaults.

use super::args::ValidateArgs;
use clap::Args;
use std::path::PathBuf;

/// `kiln infer`: timm's `inference.py`.
#[derive(Debug, Clone, Args)]
pub struct InferArgs {
    /// Dataset root (an ImageFolder tree or IDX folder); without it, the Fashion-MNIST subset.
    pub data: Option<PathBuf>,
    /// Same as the positional DATA (timm's preferred spelling).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Dataset type: a folder (default); framework and hub datasets are refused.
    #[arg(long, default_value = "")]
    pub dataset: String,
    /// Split to read.
    #[arg(long, default_value = "validation")]
    pub split: String,
    /// Model name (default: the checkpoint's, else timm's resnet50).
    #[arg(short = 'm', long)]
    pub model: Option<String>,
    /// Loader worker threads.
    #[arg(short = 'j', long, default_value_t = 2)]
    pub workers: usize,
    /// Batch size.
    #[arg(short = 'b', long, default_value_t = 256)]
    pub batch_size: usize,
    /// Input image size (default: the model's test size, see --use-train-size).
    #[arg(long)]
    pub img_size: Option<usize>,
    /// Input channels (default: 1 for IDX data, 3 otherwise).
    #[arg(long)]
    pub in_chans: Option<usize>,
    /// All input dimensions, C H W (overrides --in-chans and --img-size; H must equal W).
    #[arg(long, num_args = 3, value_names = ["C", "H", "W"])]
    pub input_size: Option<Vec<usize>>,
    /// Use the model's train input size and crop, not its test ones.
    #[arg(long)]
    pub use_train_size: bool,
    /// Center-crop fraction (default: the model's).
    #[arg(long)]
    pub crop_pct: Option<f64>,
    /// Crop mode: center, squash or border (default: the model's).
    #[arg(long)]
    pub crop_mode: Option<String>,
    /// Per-channel normalization mean (default: the model's).
    #[arg(long, num_args = 1..)]
    pub mean: Option<Vec<f32>>,
    /// Per-channel normalization std (default: the model's).
    #[arg(long, num_args = 1..)]
    pub std: Option<Vec<f32>>,
    /// Resize interpolation (default: the model's).
    #[arg(long, default_value = "")]
    pub interpolation: String,
    /// Classes (default: the checkpoint's or pretrained head's, else the dataset's).
    #[arg(long)]
    pub num_classes: Option<usize>,
    /// Class map file (one class name per line); its names label the predictions.
    #[arg(long)]
    pub class_map: Option<PathBuf>,
    /// Batches between log lines.
    #[arg(long, default_value_t = 10)]
    pub log_freq: usize,
    /// Checkpoint or state dict to load (without one, the pretrained weights).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Use the model's pretrained weights (the default without --checkpoint).
    #[arg(long)]
    pub pretrained: bool,
    /// GPUs for DataParallel (kiln: one; more is refused).
    #[arg(long, default_value_t = 1)]
    pub num_gpu: usize,
    /// Test-time pooling above the model's pretrained input size.
    #[arg(long)]
    pub test_pool: bool,
    /// Run in channels-last memory order.
    #[arg(long)]
    pub channels_last: bool,
    /// Device: auto (the first GPU when one is present, else the CPU), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Mixed precision inference in --amp-dtype.
    #[arg(long)]
    pub amp: bool,
    /// The AMP dtype: float16 or bfloat16.
    #[arg(long, default_value = "float16")]
    pub amp_dtype: String,
    /// Model dtype without AMP: float32, float16, bfloat16 (default float32).
    #[arg(long)]
    pub model_dtype: Option<String>,
    /// TorchScript fuser (refused).
    #[arg(long, default_value = "")]
    pub fuser: String,
    /// Model keyword arguments as KEY=VALUE.
    #[arg(long, num_args = 0.., value_name = "KEY=VALUE")]
    pub model_kwargs: Vec<String>,
    /// TorchScript (refused).
    #[arg(long)]
    pub torchscript: bool,
    /// torch.compile with this backend (refused).
    #[arg(long, num_args = 0..=1, default_missing_value = "inductor", value_name = "BACKEND")]
    pub torchcompile: Option<String>,
    /// AOT autograd (refused).
    #[arg(long)]
    pub aot_autograd: bool,
    /// Folder for the results files (created if missing).
    #[arg(long)]
    pub results_dir: Option<PathBuf>,
    /// Results file name, its extension added per format (default: `<model>-<img_size>`).
    #[arg(long)]
    pub results_file: Option<String>,
    /// Results formats: csv, json (keyed by file), json-split; parquet is refused.
    #[arg(long, num_args = 1.., default_value = "csv")]
    pub results_format: Vec<String>,
    /// One column per top-k rank (`index_0`, `prob_0`, ...) instead of list cells.
    #[arg(long)]
    pub results_separate_col: bool,
    /// Classes per image to output (0: every class's output, no indices).
    #[arg(long, default_value_t = 1)]
    pub topk: usize,
    /// Output the file's full path, not its base name.
    #[arg(long)]
    pub fullname: bool,
    /// Name of the file column.
    #[arg(long, default_value = "filename")]
    pub filename_col: String,
    /// Name of the class-index column(s).
    #[arg(long, default_value = "index")]
    pub index_col: String,
    /// Name of the label column(s).
    #[arg(long, default_value = "label")]
    pub label_col: String,
    /// Name of the output column(s) (default: prob, or logit with --output-type logit).
    #[arg(long)]
    pub output_col: Option<String>,
    /// Output type: prob (softmax) or logit.
    #[arg(long, default_value = "prob")]
    pub output_type: String,
    /// Labels: none, name, description, detail or detailed (kiln's names are the class map's).
    #[arg(long, default_value = "description")]
    pub label_type: String,
    /// Include the top-k class indices in the results.
    #[arg(long)]
    pub include_index: bool,
    /// Leave the probabilities or logits out of the results (needs --topk above 0).
    #[arg(long)]
    pub exclude_output: bool,
    /// Do not print the results to the console.
    #[arg(long)]
    pub no_console_results: bool,
}

impl InferArgs {
    /// The `kiln validate` flags that set up the same model, data and loader.
    pub fn eval_args(&self) -> ValidateArgs {
        ValidateArgs {
            data: self.data.clone(),
            data_dir: self.data_dir.clone(),
            dataset: self.dataset.clone(),
            split: self.split.clone(),
            model: self.model.clone(),
            workers: self.workers,
            batch_size: self.batch_size,
            img_size: self.img_size,
            in_chans: self.in_chans,
            input_size: self.input_size.clone(),
            use_train_size: self.use_train_size,
            crop_pct: self.crop_pct,
            crop_mode: self.crop_mode.clone(),
            mean: self.mean.clone(),
            std: self.std.clone(),
            interpolation: self.interpolation.clone(),
            num_classes: self.num_classes,
            class_map: self.class_map.clone(),
            log_interval: self.log_freq,
            checkpoint: self.checkpoint.iter().cloned().collect(),
            pretrained: self.pretrained,
            num_gpu: self.num_gpu,
            test_pool: self.test_pool,
            channels_last: self.channels_last,
            device: self.device.clone(),
            amp: self.amp,
            amp_dtype: self.amp_dtype.clone(),
            model_dtype: self.model_dtype.clone(),
            fuser: self.fuser.clone(),
            model_kwargs: self.model_kwargs.clone(),
            torchscript: self.torchscript,
            torchcompile: self.torchcompile.clone(),
            aot_autograd: self.aot_autograd,
            ..ValidateArgs::default()
        }
    }
}
