//! `kiln export`: writes a model as ONNX (timm's `onnx_export.py`, with a dynamic batch dim) or
//! as a plain safetensors state dict under timm's names (timm's `clean_checkpoint.py
//! --safetensors`), from its random init, its pretrained weights or a checkpoint.

use super::pretrained::start_from;
use kiln_nn::export::{export_onnx, ExportOptions, OPSETS};
use kiln_nn::{load_state_dict, save_safetensors, state_dict, Model, ModelArgs, ModelSpec};
use kiln_train::checkpoint::Checkpoint;
use kiln_train::{Error, Result};
use std::path::PathBuf;

/// `kiln export` flags (timm's `onnx_export.py` spellings where they apply).
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The model to export (a registered name, `arch.tag`, or `hf-hub:org/name`).
    pub model: String,
    /// The file format: `onnx`, or `safetensors` (the weights alone, which timm's
    /// `load_checkpoint` and `pretrained_cfg_overlay=dict(file=...)` read).
    #[arg(long, default_value = "onnx")]
    pub format: String,
    /// The file to write.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Weights from this checkpoint (kiln's or timm's .safetensors, .pth.tar, .pth).
    #[arg(long, conflicts_with = "pretrained")]
    pub checkpoint: Option<PathBuf>,
    /// The checkpoint's EMA weights instead of its model weights (timm's `--use-ema`).
    #[arg(long, requires = "checkpoint")]
    pub use_ema: bool,
    /// The model's pretrained weights (from the Hugging Face hub cache).
    #[arg(long)]
    pub pretrained: bool,
    /// ONNX opset: 17 or 18.
    #[arg(long, default_value_t = 17)]
    pub opset: i64,
    /// Input height and width (default: the model's pretrained input size).
    #[arg(long)]
    pub img_size: Option<usize>,
    /// Classifier classes (default: the model's, or the checkpoint's head).
    #[arg(long)]
    pub num_classes: Option<usize>,
    /// The batch size the forward is traced at; the file's batch dim is dynamic either way.
    #[arg(short = 'b', long, default_value_t = 1)]
    pub batch_size: usize,
    /// List the initializers as graph inputs too (torch.onnx's `keep_initializers_as_inputs`).
    #[arg(long)]
    pub keep_init: bool,
    /// Re-parameterize RepVGG and MobileOne blocks into single convs first (timm's `--reparam`).
    #[arg(long)]
    pub reparam: bool,
    /// timm's dynamic height and width: refused (kiln's files have a dynamic batch only).
    #[arg(long)]
    pub dynamic_size: bool,
    /// timm's onnxruntime check: refused (scripts/fixtures/check_onnx_export.py does it).
    #[arg(long)]
    pub check_forward: bool,
}

/// Runs `kiln export`.
pub fn export(a: ExportArgs) -> Result<()> {
    if a.format != "onnx" && a.format != "safetensors" {
        return Err(Error::flag(
            "--format",
            format!(
                "unknown format '{}' (kiln exports onnx and safetensors)",
                a.format
            ),
        ));
    }
    if !OPSETS.contains(&a.opset) {
        return Err(Error::flag(
            "--opset",
            format!("opset {} is not written (kiln writes 17 and 18)", a.opset),
        ));
    }
    if a.dynamic_size {
        return Err(Error::flag(
            "--dynamic-size",
            "kiln's ONNX files have a dynamic batch dim and a fixed height and width",
        ));
    }
    if a.check_forward {
        return Err(Error::flag(
            "--check-forward",
            "kiln has no ONNX runtime; run scripts/fixtures/check_onnx_export.py on the file",
        ));
    }
    if let Some(path) = a.checkpoint.as_ref().filter(|p| !p.is_file()) {
        return Err(Error::flag(
            "--checkpoint",
            format!("{} is not a file", path.display()),
        ));
    }
    let mut model = build(&a)?;
    if a.reparam {
        model.reparameterize()?;
    }
    if a.format == "safetensors" {
        save_safetensors(&state_dict(model.as_ref()), None, &a.output)?;
        println!("Saved {} weights to {}", a.model, a.output.display());
        return Ok(());
    }
    model.set_training(false);
    let [c, h, w] = model.pretrained_cfg().input_size;
    let size = a.img_size.map_or([c, h, w], |s| [c, s, s]);
    let opts = ExportOptions {
        opset: a.opset,
        batch_size: a.batch_size,
        input_size: size,
        keep_init: a.keep_init,
    };
    let bytes = export_onnx(model.as_ref(), &opts)?;
    std::fs::write(&a.output, bytes).map_err(|e| Error::io(&a.output, e))?;
    println!(
        "Exported {} (opset {}, input {:?}, dynamic batch) to {}",
        a.model,
        a.opset,
        size,
        a.output.display()
    );
    Ok(())
}

/// The class count of `ck`'s classifier weight (a head of `spec`'s config), if it has one.
pub(super) fn checkpoint_classes(spec: &ModelSpec, ck: &Checkpoint) -> Option<usize> {
    ck.model
        .iter()
        .find(|(name, _)| {
            spec.cfg
                .classifiers()
                .any(|c| **name == format!("{c}.weight"))
        })
        .map(|(_, t)| t.shape()[0])
}

/// The model with its weights: the checkpoint's, the pretrained ones, or its random init.
fn build(a: &ExportArgs) -> Result<Box<dyn Model>> {
    let spec = ModelSpec::resolve(&a.model)?;
    let mut checkpoint = a.checkpoint.as_deref().map(Checkpoint::load).transpose()?;
    if let Some(ck) = checkpoint.as_mut().filter(|_| a.use_ema) {
        let ema = ck.extra.remove("state_dict_ema").ok_or_else(|| {
            let path = a.checkpoint.as_deref().unwrap_or(std::path::Path::new(""));
            Error::flag(
                "--use-ema",
                format!("{} holds no EMA weights", path.display()),
            )
        })?;
        ck.model = ema;
    }
    let head = checkpoint
        .as_ref()
        .and_then(|ck| checkpoint_classes(&spec, ck));
    let args = ModelArgs {
        num_classes: a.num_classes.or(head).unwrap_or(spec.cfg.num_classes),
        img_size: a.img_size,
        ..Default::default()
    };
    let mut model = spec.create(&args)?;
    match checkpoint {
        Some(ck) => {
            let path = a.checkpoint.as_deref().unwrap_or(std::path::Path::new(""));
            if let Some(shapes) = super::prune::recorded_shapes(path)? {
                kiln_nn::prune::apply_pruned_shapes(model.as_mut(), &shapes)?;
            }
            load_state_dict(model.as_ref(), &ck.model, true)?;
        }
        None if a.pretrained => {
            start_from(model.as_ref(), &spec.pretrained_source(args.num_classes)?)?
        }
        None => {}
    }
    Ok(model)
}
