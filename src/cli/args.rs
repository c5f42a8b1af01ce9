//! The flags of `kiln train` and `kiln validate`, with timm's `train.py` / `validate.py` names and
//! defaults, grouped as timm groups them.

use super::data_source::DataSource;
use super::eval_args::EvalArgs;
use super::input_flags::InputFlags;
use clap::Args;
use kiln_train::dist::DistBn;
use kiln_train::distill::DistillConfig;
use kiln_train::flags::finite_f64;
use kiln_train::loader::{AugConfig, MixConfig, MultiLabelConfig, SizeScheduleConfig};
use kiln_train::loss::LossConfig;
use kiln_train::metrics::MetricsAvg;
use kiln_train::optim::OptimizerConfig;
use kiln_train::sched::SchedulerConfig;
use kiln_train::trainer::{CudaGraphMode, NanPolicy};
use serde::Serialize;
use std::path::PathBuf;

/// `kiln train`: timm's `train.py`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct TrainArgs {
    // ---- Dataset ----
    /// The dataset root and type (DATA, `--data-dir`, `--dataset`).
    #[command(flatten)]
    #[serde(flatten)]
    pub source: DataSource,
    /// Train split folder name.
    #[arg(long, default_value = "train")]
    pub train_split: String,
    /// Validation split folder name (validation, val, valid, eval, evaluation and test are
    /// all tried).
    #[arg(long, default_value = "validation")]
    pub val_split: String,
    /// Samples in the train split, for iterable (streamed) datasets.
    #[arg(long)]
    pub train_num_samples: Option<usize>,
    /// Samples in the validation split, for iterable (streamed) datasets.
    #[arg(long)]
    pub val_num_samples: Option<usize>,
    /// Allow downloading torch/ and tfds/ datasets.
    #[arg(long)]
    pub dataset_download: bool,
    /// Class map file (one class folder name per line).
    #[arg(long)]
    #[serde(serialize_with = "kiln_train::flags::empty_if_none")]
    pub class_map: Option<PathBuf>,
    /// Image conversion mode of the inputs (RGB, L; default: from the input channels).
    #[arg(long)]
    pub input_img_mode: Option<String>,
    /// Dataset key of the input images (hub and webdataset datasets).
    #[arg(long)]
    pub input_key: Option<String>,
    /// Dataset key of the target labels (hub and webdataset datasets).
    #[arg(long)]
    pub target_key: Option<String>,
    /// Allow a Hugging Face dataset to run code from its repository.
    #[arg(long)]
    pub dataset_trust_remote_code: bool,
    /// YAML config whose keys (timm's flag names) override the defaults; flags override it.
    #[arg(short = 'c', long)]
    pub config: Option<PathBuf>,

    // ---- Model ----
    /// Model name (`kiln models` lists them): `arch`, `arch.tag` (`kiln models --pretrained`),
    /// `hf-hub:org/name` or `local-dir:/path`, as timm names them.
    #[arg(long, default_value = "resnet50")]
    pub model: String,
    /// Start from the model's pretrained weights, read offline from the Hugging Face hub cache
    /// (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub).
    #[arg(long)]
    pub pretrained: bool,
    /// Load this checkpoint as the pretrained weights (classifier and first conv adapted).
    #[arg(long)]
    pub pretrained_path: Option<PathBuf>,
    /// Initialize the model from this state dict or checkpoint (safetensors or torch.save's;
    /// a checkpoint's EMA weights when it has them).
    #[arg(long)]
    #[serde(serialize_with = "kiln_train::flags::empty_if_none")]
    pub initial_checkpoint: Option<PathBuf>,
    /// Resume from this checkpoint, or from the newest valid checkpoint in this run folder.
    #[arg(long)]
    #[serde(serialize_with = "kiln_train::flags::empty_if_none")]
    pub resume: Option<PathBuf>,
    /// Do not restore the optimizer state when resuming.
    #[arg(long)]
    pub no_resume_opt: bool,
    /// Classes (default: the dataset's).
    #[arg(long)]
    pub num_classes: Option<usize>,
    /// Global pool: avg, max, avgmax, catavgmax, token (default: the model's).
    #[arg(long = "gp")]
    #[serde(rename = "gp")]
    pub global_pool: Option<String>,
    /// The model-input flags (`--img-size` to `--interpolation`).
    #[command(flatten)]
    #[serde(flatten)]
    pub input: InputFlags,
    /// Training batch size.
    #[arg(short = 'b', long, default_value_t = 128)]
    pub batch_size: usize,
    /// Validation batch size (default: the training one).
    #[arg(long = "validation-batch-size", short = 'v')]
    pub validation_batch_size: Option<usize>,
    /// Run model and inputs in channels-last (NHWC) memory order.
    #[arg(long)]
    pub channels_last: bool,
    /// TorchScript JIT fuser: '', te, old, nvfuser.
    #[arg(long, default_value = "")]
    pub fuser: String,
    /// Batches whose gradients add up to one optimizer update.
    #[arg(long, default_value_t = 1)]
    pub grad_accum_steps: usize,
    /// Recompute activations of model blocks in the backward pass to save memory.
    #[arg(long)]
    pub grad_checkpointing: bool,
    /// timm's experimental fast-norm kernels.
    #[arg(long)]
    pub fast_norm: bool,
    /// Model constructor arguments, as key=value (kiln: num_classes, in_chans, global_pool,
    /// img_size, drop_rate, drop_path_rate, zero_init_last).
    #[arg(long, num_args = 0.., value_name = "KEY=VALUE")]
    #[serde(serialize_with = "kiln_train::flags::kwargs_as_mapping")]
    pub model_kwargs: Vec<String>,
    /// Multiply the classifier's weight and bias by this after creation.
    #[arg(long, allow_negative_numbers = true, value_parser = finite_f64)]
    pub head_init_scale: Option<f64>,
    /// Set the classifier's bias to this after creation.
    #[arg(long, allow_negative_numbers = true, value_parser = finite_f64)]
    pub head_init_bias: Option<f64>,
    /// torch.compile mode.
    #[arg(long)]
    pub torchcompile_mode: Option<String>,
    /// torch.jit.script the full model.
    #[arg(long)]
    pub torchscript: bool,
    /// torch.compile with this backend (inductor when given without a value).
    #[arg(long, num_args = 0..=1, default_missing_value = "inductor", value_name = "BACKEND")]
    pub torchcompile: Option<String>,

    // ---- Device ----
    /// Device: auto (the first GPU when one is present, else the CPU), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Mixed precision: convolutions and matmuls in --amp-dtype (f16 with loss scaling).
    #[arg(long)]
    pub amp: bool,
    /// The AMP dtype: float16 (dynamic loss scaling) or bfloat16 (none needed).
    #[arg(long, default_value = "float16")]
    pub amp_dtype: String,
    /// Model dtype without AMP: float32, float16, bfloat16 (default float32).
    #[arg(long)]
    pub model_dtype: Option<String>,
    /// Turn off DDP's buffer broadcast.
    #[arg(long)]
    pub no_ddp_bb: bool,
    /// Wait for the device at the end of every step (kiln: no effect; reading each batch's loss
    /// back already waits for the device once per batch).
    #[arg(long)]
    pub synchronize_step: bool,
    /// This process's rank on its node (distributed training).
    #[arg(long = "local_rank", alias = "local-rank", default_value_t = 0)]
    pub local_rank: usize,
    /// Python modules to import for a device backend.
    #[arg(long, num_args = 1..)]
    pub device_modules: Option<Vec<String>>,

    // ---- Optimizer ----
    /// The optimizer flags (`--opt` to `--opt-kwargs`).
    #[command(flatten)]
    #[serde(flatten)]
    pub optim: OptimizerConfig,

    // ---- Learning rate schedule ----
    /// The schedule flags (`--sched` to `--decay-rate`, the lr rule among them).
    #[command(flatten)]
    #[serde(flatten)]
    pub sched: SchedulerConfig,

    // ---- Augmentation and regularization ----
    /// The training transform's flags (`--no-aug` to `--aug-repeats`).
    #[command(flatten)]
    #[serde(flatten)]
    pub aug: AugConfig,
    /// The loss flags (`--aug-splits` to `--bce-pos-weight`).
    #[command(flatten)]
    #[serde(flatten)]
    pub loss: LossConfig,
    /// Random erasing, mixup/cutmix, label smoothing, training interpolation (`--reprob` to
    /// `--train-interpolation`).
    #[command(flatten)]
    #[serde(flatten)]
    pub mix: MixConfig,
    /// Dropout before the classifier.
    #[arg(long = "drop", default_value_t = 0.0, value_parser = finite_f64)]
    #[serde(rename = "drop")]
    pub drop_rate: f64,
    /// Drop connect rate (deprecated by timm: use --drop-path).
    #[arg(long, value_parser = finite_f64)]
    pub drop_connect: Option<f64>,
    /// Stochastic depth rate.
    #[arg(long, value_parser = finite_f64)]
    pub drop_path: Option<f64>,
    /// DropBlock rate.
    #[arg(long, value_parser = finite_f64)]
    pub drop_block: Option<f64>,

    // ---- Batch norm ----
    /// BatchNorm momentum of every BN layer (PyTorch's convention; default 0.1).
    #[arg(long, value_parser = finite_f64)]
    pub bn_momentum: Option<f64>,
    /// BatchNorm epsilon of every BN layer (default 1e-5).
    #[arg(long, value_parser = finite_f64)]
    pub bn_eps: Option<f64>,
    /// Synchronized BatchNorm across processes.
    #[arg(long)]
    pub sync_bn: bool,
    /// Share BN statistics between processes after each epoch: broadcast, reduce or ''.
    #[arg(long, value_enum, default_value_t = DistBn::Reduce)]
    pub dist_bn: DistBn,
    /// Separate BN layers per augmentation split.
    #[arg(long)]
    pub split_bn: bool,

    // ---- Model exponential moving average ----
    /// Keep an exponential moving average of the model's weights (timm's ModelEmaV3), validated
    /// after the model each epoch.
    #[arg(long)]
    pub model_ema: bool,
    /// Keep the EMA on the CPU (it is then not validated, as in timm).
    #[arg(long)]
    pub model_ema_force_cpu: bool,
    /// EMA decay.
    #[arg(long, default_value_t = 0.9998, value_parser = finite_f64)]
    pub model_ema_decay: f64,
    /// Ramp the EMA decay up over the first updates.
    #[arg(long)]
    pub model_ema_warmup: bool,

    // ---- Misc ----
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Loader worker seeding: all or part.
    #[arg(long, default_value = "all")]
    pub worker_seeding: String,
    /// Steps between log lines.
    #[arg(long, default_value_t = 50)]
    pub log_interval: usize,
    /// Epochs between validation and checkpointing.
    #[arg(long, default_value_t = 1)]
    pub val_interval: usize,
    /// Optimizer updates between recovery checkpoints (0: none).
    #[arg(long, default_value_t = 0)]
    pub recovery_interval: usize,
    /// Numbered checkpoints to keep (best by eval metric).
    #[arg(long, default_value_t = 10)]
    pub checkpoint_hist: usize,
    /// Loader worker threads.
    #[arg(short = 'j', long, default_value_t = 4)]
    pub workers: usize,
    /// Write a PNG grid of the input batch at each log interval (and to TensorBoard).
    #[arg(long)]
    pub save_images: bool,
    /// Pin host memory in the loader (kiln: no effect; CUDA batches always travel through a
    /// page-locked buffer).
    #[arg(long)]
    pub pin_mem: bool,
    /// Disable the prefetcher (kiln: no effect; the loader keeps its one path, with the same
    /// numbers).
    #[arg(long)]
    pub no_prefetcher: bool,
    /// Write TensorBoard event files (scalars, batch images) into the run folder (kiln's flag;
    /// timm's --log-wandb needs the network).
    #[arg(long)]
    pub log_tensorboard: bool,
    /// Output root (default ./output/train).
    #[arg(long)]
    #[serde(serialize_with = "kiln_train::flags::empty_if_none")]
    pub output: Option<PathBuf>,
    /// Run folder name (default: date-time-model-size).
    #[arg(long)]
    #[serde(serialize_with = "kiln_train::flags::empty_if_none")]
    pub experiment: Option<String>,
    /// Metric that picks the best checkpoint: top1, top5 or loss.
    #[arg(long, default_value = "top1")]
    pub eval_metric: String,
    /// Validation during training averages the logits of each N consecutive images, scored
    /// against the first one's label (timm's train.py reduction; 0: none).
    #[arg(long, default_value_t = 0)]
    pub tta: usize,
    /// Keep loader workers across epochs (kiln: no effect; its workers always persist).
    #[arg(long)]
    pub use_multi_epochs_loader: bool,
    /// Log metrics to Weights & Biases.
    #[arg(long)]
    pub log_wandb: bool,
    /// Weights & Biases project.
    #[arg(long)]
    pub wandb_project: Option<String>,
    /// Weights & Biases tags.
    #[arg(long, num_args = 1..)]
    pub wandb_tags: Vec<String>,
    /// Weights & Biases run id to resume.
    #[arg(long, default_value = "")]
    pub wandb_resume_id: String,
    /// Stop after this many epochs without a better eval metric (kiln's flag).
    #[arg(long)]
    pub early_stop: Option<usize>,
    /// What a NaN or infinite loss does without loss scaling: stop (saving the last good
    /// state as a recovery checkpoint) or skip (leave that update out and count it); kiln's flag.
    #[arg(long, value_enum, default_value_t = NanPolicy::Stop)]
    pub nan_policy: NanPolicy,
    /// Capture each update as a CUDA graph and replay it (kiln's flag): auto (on a CUDA device,
    /// after a few eager updates, when the update allows it; otherwise say why once and run
    /// eagerly), on (as auto, and say why on the CPU too) or off.
    #[arg(long, value_enum, default_value_t = CudaGraphMode::Auto)]
    pub cuda_graph: CudaGraphMode,
    /// Network slimming's sparsity (kiln's flag): λ·sign(γ) is added to every BatchNorm
    /// weight's gradient before each step, so `kiln prune --criterion bn-scale` finds channels
    /// to remove.
    #[arg(long, value_parser = finite_f64)]
    pub slim_lambda: Option<f64>,
    /// Prune this fraction of the model's MACs (or parameters: --prune-target) while training
    /// (kiln's flag): channels are removed at the start of --prune-steps epochs,
    /// --prune-interval apart, each step to a larger share of the ratio, fine-tuning between.
    #[arg(long, value_parser = finite_f64)]
    pub prune_ratio: Option<f64>,
    /// How --prune-ratio ranks channels: l1, l2, fpgm or bn-scale.
    #[arg(long, default_value = "l1")]
    pub prune_criterion: String,
    /// What --prune-ratio is a fraction of: macs or params.
    #[arg(long, default_value = "macs")]
    pub prune_target: String,
    /// Steps --prune-ratio is reached in (Torch-Pruning's iterative steps).
    #[arg(long, default_value_t = 1)]
    pub prune_steps: usize,
    /// Epochs between prune steps.
    #[arg(long, default_value_t = 1)]
    pub prune_interval: usize,
    /// One importance threshold across layers instead of the same fraction of each.
    #[arg(long)]
    pub prune_global: bool,
    /// The most of any layer's channels a prune removes.
    #[arg(long, default_value_t = 1.0)]
    pub prune_max_ratio: f64,
    /// Layers left alone by pruning: a glob over parameter names (`layer4.*`); repeatable.
    #[arg(long)]
    pub prune_ignore: Vec<String>,
    /// Kept channel counts rounded up to a multiple of this (8 for tensor cores).
    #[arg(long, default_value_t = 1)]
    pub prune_round_to: usize,

    // ---- Scheduled resolution and NaFlex ----
    /// The scheduled-resolution flags (`--train-img-sizes` to `--variable-batch-loss-scale`).
    #[command(flatten)]
    #[serde(flatten)]
    pub sizes: SizeScheduleConfig,
    /// Use the NaFlex loader (variable-resolution patch sequences).
    #[arg(long)]
    pub naflex_loader: bool,
    /// NaFlex training sequence lengths.
    #[arg(long, num_args = 1.., default_values_t = [128, 256, 576, 784, 1024])]
    pub naflex_train_seq_lens: Vec<usize>,
    /// NaFlex validation sequence length.
    #[arg(long, default_value_t = 576)]
    pub naflex_max_seq_len: usize,
    /// NaFlex patch sizes for variable patch size training.
    #[arg(long, num_args = 1..)]
    pub naflex_patch_sizes: Option<Vec<usize>>,
    /// Probabilities of the NaFlex patch sizes.
    #[arg(long, num_args = 1.., value_parser = finite_f64)]
    pub naflex_patch_size_probs: Option<Vec<f64>>,
    /// NaFlex loss scaling by batch size: none, sqrt, linear.
    #[arg(long, default_value = "linear")]
    pub naflex_loss_scale: String,
    /// Emit NaFlex patches channels-first.
    #[arg(long)]
    pub naflex_patchify_channels_first: bool,

    // ---- Knowledge distillation ----
    /// Teacher model for knowledge distillation.
    #[arg(long)]
    pub kd_model_name: Option<String>,
    /// The distillation flags (`--kd-distill-type` to `--kd-token-distill-type`).
    #[command(flatten)]
    #[serde(flatten)]
    pub distill: DistillConfig,

    // ---- kiln's own, last so argparse's ambiguity lists of timm's flags read as timm's ----
    /// Multi-label classification (`--multi-label` to `--multi-label-thresh`).
    #[command(flatten)]
    #[serde(flatten)]
    pub multi_label: MultiLabelConfig,
    /// Minutes a collective waits for another rank before failing with its name (torch's
    /// `timeout`; `20s` gives seconds; kiln's flag).
    #[arg(long = "dist-timeout", default_value = "30")]
    pub dist_timeout: String,
    /// Whether `--model` was given (on the command line or in a `--config` file) rather than
    /// defaulted; when not, the checkpoint the run starts from names the model (set by `parse`).
    #[arg(skip)]
    #[serde(skip)]
    pub model_given: bool,
}

/// `kiln validate`: timm's `validate.py` (serialized under its namespace's dest names).
#[derive(Debug, Clone, Args, Serialize)]
pub struct ValidateArgs {
    /// The model, weights, data and input flags (shared with `kiln infer`).
    #[command(flatten)]
    #[serde(flatten)]
    pub eval: EvalArgs,
    /// Image mode the images are decoded to: L or RGB (default: the model's channels').
    #[arg(long)]
    pub input_img_mode: Option<String>,
    /// Global pool: avg, max, avgmax, catavgmax, token (default: the model's).
    #[arg(long = "gp")]
    #[serde(rename = "gp")]
    pub global_pool: Option<String>,
    /// Seed of the global generator (a model without weights is initialized from it).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// timm's prefetcher switch: kiln's loader has one path, so no effect.
    #[arg(long)]
    pub no_prefetcher: bool,
    /// timm's pinned host memory: kiln pins its upload buffer always, so no effect.
    #[arg(long)]
    pub pin_mem: bool,
    /// Samples of an iterable dataset (refused: kiln's datasets count their files).
    #[arg(long)]
    pub num_samples: Option<usize>,
    /// Download a framework dataset (refused: kiln downloads nothing).
    #[arg(long)]
    pub dataset_download: bool,
    /// Hub dataset image column (refused).
    #[arg(long)]
    pub input_key: Option<String>,
    /// Hub dataset label column (refused).
    #[arg(long)]
    pub target_key: Option<String>,
    /// Trust a hub dataset's code (refused).
    #[arg(long)]
    pub dataset_trust_remote_code: bool,
    /// TensorFlow preprocessing (refused).
    #[arg(long)]
    pub tf_preprocessing: bool,
    /// timm's experimental fast-norm kernels (kiln: no effect, noted; its norms are always fused).
    #[arg(long)]
    pub fast_norm: bool,
    /// Reparameterize the model's branches (kiln: no effect, noted; its models have none).
    #[arg(long)]
    pub reparam: bool,
    /// On a device out-of-memory error, retry with the batch size stepped down as timm's
    /// decay_batch_step (256, 192, 128, 96, ...); other errors stop at once.
    #[arg(long)]
    pub retry: bool,
    /// NaFlex loader (refused: kiln has no NaFlexVit models).
    #[arg(long)]
    pub naflex_loader: bool,
    /// NaFlex sequence length (no effect without --naflex-loader, as in timm).
    #[arg(long, default_value_t = 576)]
    pub naflex_max_seq_len: usize,
    /// Checkpoints or state dicts to evaluate (repeat the flag, or name a run folder for all its
    /// checkpoints); without one, the model's pretrained weights (as --pretrained).
    #[arg(long, num_args = 1..)]
    pub checkpoint: Vec<PathBuf>,
    /// Evaluate the checkpoint's EMA weights (`state_dict_ema`) when it has them.
    #[arg(long)]
    pub use_ema: bool,
    /// Test-time augmentation: 2 averages the logits of each image and its mirror image (0, 1: off).
    #[arg(long, default_value_t = 0)]
    pub tta: usize,
    /// Write the results (one row per checkpoint) to this file.
    #[arg(long)]
    pub results_file: Option<PathBuf>,
    /// Results file format: csv or json.
    #[arg(long, default_value = "csv")]
    pub results_format: String,
    /// ImageNet ReaL labels (a JSON list of label lists, one per ImageNet validation file in
    /// number order): top-1 and top-5 are scored against them instead.
    #[arg(long)]
    pub real_labels: Option<PathBuf>,
    /// A file of the model's class indices, one a line: its logits are cut to these, in this
    /// order (data class i scored as class line i), for datasets of a subset of the classes.
    #[arg(long)]
    pub valid_labels: Option<PathBuf>,
    /// Also report precision, recall and F1, averaged micro, macro or weighted over the classes.
    #[arg(long, value_enum)]
    #[serde(serialize_with = "super::eval_args::value_enum_name")]
    pub metrics_avg: Option<MetricsAvg>,
    /// Pixels cut from every edge of each image before it is resized.
    #[arg(long)]
    pub crop_border_pixels: Option<usize>,
    /// Loader worker threads.
    #[arg(short = 'j', long, default_value_t = 4)]
    pub workers: usize,
    /// Batches between log lines (timm's validate.py calls it --log-freq).
    #[arg(
        long = "log-freq",
        visible_alias = "log-interval",
        default_value_t = 10
    )]
    #[serde(rename = "log_freq")]
    pub log_interval: usize,
}

/// Every flag of `A` at its default: `A` parsed from no flags.
fn parsed_defaults<A: Args + clap::FromArgMatches>() -> A {
    let cmd = A::augment_args(clap::Command::new("kiln"));
    A::from_arg_matches(&cmd.get_matches_from(["kiln"])).expect("every flag has a default")
}

impl Default for ValidateArgs {
    /// Every flag at timm's default, as `kiln validate` with no flags parses them.
    fn default() -> Self {
        parsed_defaults()
    }
}

impl Default for TrainArgs {
    /// Every flag at timm's default, as `kiln train` with no flags parses them.
    fn default() -> Self {
        parsed_defaults()
    }
}

impl TrainArgs {
    /// The run folder's `args.yaml`: every flag under timm's key (`gp`, `drop`), in timm's shape
    /// (`model_kwargs` a mapping, unset paths `''`), so `train.py --config` reads it back.
    pub fn args_yaml(&self) -> kiln_train::Result<String> {
        serde_yaml::to_string(self).map_err(|e| kiln_train::Error::flag("args.yaml", e.to_string()))
    }
}
