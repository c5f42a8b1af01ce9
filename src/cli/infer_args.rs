//! `kiln infer`'s flags: timm's `inference.py`, with its names and defaults.

use super::args::ValidateArgs;
use super::eval_args::EvalArgs;
use clap::Args;
use kiln_train::loader::MultiLabelConfig;
use serde::Serialize;
use std::path::PathBuf;

/// `kiln infer`: timm's `inference.py` (serialized under its namespace's dest names).
#[derive(Debug, Clone, Args, Serialize)]
pub struct InferArgs {
    /// The model, weights, data and input flags (shared with `kiln validate`).
    #[command(flatten)]
    #[serde(flatten)]
    pub eval: EvalArgs,
    /// Loader worker threads.
    #[arg(short = 'j', long, default_value_t = 2)]
    pub workers: usize,
    /// Batches between log lines.
    #[arg(long, default_value_t = 10)]
    pub log_freq: usize,
    /// Checkpoint or state dict to load (without one, the pretrained weights).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
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
    /// The `kiln validate` flags that set up the same model, data and loader (a folder of
    /// unlabelled images: the multi-label flags choose infer's outputs, not the data read).
    pub fn eval_args(&self) -> ValidateArgs {
        ValidateArgs {
            eval: EvalArgs {
                multi_label: MultiLabelConfig::default(),
                ..self.eval.clone()
            },
            workers: self.workers,
            log_interval: self.log_freq,
            checkpoint: self.checkpoint.iter().cloned().collect(),
            ..ValidateArgs::default()
        }
    }
}
