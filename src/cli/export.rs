//! `kiln export`: writes a model as ONNX (timm's `onnx_export.py`, with a dynamic batch dim) or
//! as a plain safetensors state dict under timm's names (timm's `clean_checkpoint.py
//! --safetensors`), from its random init, its pretrained weights or a checkpoint.

use super::input_flags::InputFlags;
use super::model_record::{build_model, named_model};
use kiln_nn::export::{export_onnx, ExportOptions, Exportable, OPSETS};
use kiln_nn::{save_safetensors, state_dict, FeatureExtractor, Model, ModelSpec, OutIndices};
use kiln_train::checkpoint::MODEL_CONFIG_KEY;
use kiln_train::{Error, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// `kiln export` flags (timm's `onnx_export.py` spellings where they apply), serialized under the
/// dest names of onnx_export.py's namespace.
#[derive(Debug, clap::Args, Serialize)]
pub struct ExportArgs {
    /// kiln's MODEL (with `-o OUT`), or else timm's OUTPUT file (`kiln export --model M OUT`, as
    /// onnx_export.py takes it).
    #[arg(value_name = "MODEL|OUTPUT")]
    #[serde(rename = "output")]
    pub target: Option<String>,
    /// The model to export (a registered name, `arch.tag`, or `hf-hub:org/name`; default: the
    /// checkpoint's).
    #[arg(short = 'm', long)]
    pub model: Option<String>,
    /// The file format: `onnx`, or `safetensors` (the weights alone, which timm's
    /// `load_checkpoint` and `pretrained_cfg_overlay=dict(file=...)` read).
    #[arg(long, default_value = "onnx")]
    pub format: String,
    /// The file to write (kiln's `-o`; timm's output file is the positional OUTPUT).
    #[arg(short, long)]
    #[serde(rename = "o")]
    pub output: Option<PathBuf>,
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
    /// The model-input flags (`--img-size` to `--interpolation`).
    #[command(flatten)]
    #[serde(flatten)]
    pub input: InputFlags,
    /// Model keyword arguments as KEY=VALUE (as kiln train's --model-kwargs; default: the
    /// checkpoint's).
    #[arg(long, num_args = 0.., value_name = "KEY=VALUE")]
    #[serde(serialize_with = "kiln_train::flags::kwargs_as_mapping")]
    pub model_kwargs: Vec<String>,
    /// Classifier classes (default: the checkpoint's head, else the model's).
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
    /// A symbolic height and width as well as batch (timm's `--dynamic-size`), where the model's
    /// graph does not depend on the input size (convolutional nets); refused with the reason
    /// where it does (position embeddings, windows).
    #[arg(long)]
    pub dynamic_size: bool,
    /// Run the written file with tract on a random batch and compare it with kiln's forward,
    /// within a tolerance from kiln's own float32 error (timm: onnxruntime against torch).
    #[arg(long)]
    pub check_forward: bool,
    /// torch.onnx's ATen fallback for ops ONNX lacks: no effect (kiln writes standard ONNX ops
    /// only, so nothing falls back).
    #[arg(long)]
    pub aten_fallback: bool,
    /// Export the training-mode forward (timm's `--training`): BatchNorm on the batch's
    /// statistics; refused where the forward draws random masks (dropout, drop path).
    #[arg(long)]
    pub training: bool,
    /// Export the feature maps instead of the logits (timm's `features_only=True`): one graph
    /// output per map, `output0` the first.
    #[arg(long)]
    pub features_only: bool,
    /// With --features-only, the maps to take (indices into the model's feature_info; negative
    /// counts from the end; default: the family's).
    #[arg(long, num_args = 1.., allow_negative_numbers = true, requires = "features_only")]
    pub out_indices: Option<Vec<i64>>,
    /// Print the record and the export settings written.
    #[arg(long)]
    pub verbose: bool,
    /// torch's dynamo exporter: no effect (kiln has one exporter, which writes the graph from its
    /// own ops).
    #[arg(long)]
    pub dynamo: bool,
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
    if a.check_forward && !cfg!(feature = "onnx-check") {
        return Err(Error::flag(
            "--check-forward",
            "this kiln was built without its `onnx-check` feature (tract); rebuild with it, or \
             run scripts/fixtures/check_onnx_export.py on the file",
        ));
    }
    if a.features_only && a.format != "onnx" {
        return Err(Error::flag(
            "--features-only",
            format!(
                "writes an ONNX graph of the feature maps; --format {} writes the model's \
                 weights, which are the same either way",
                a.format
            ),
        ));
    }
    if a.check_forward && a.format != "onnx" {
        return Err(Error::flag(
            "--check-forward",
            format!("checks an ONNX file; --format {} writes none", a.format),
        ));
    }
    for (set, flag, why) in [
        (
            a.aten_fallback,
            "--aten-fallback",
            "kiln writes standard ONNX ops only",
        ),
        (a.dynamo, "--dynamo", "kiln has one exporter"),
    ] {
        if set {
            eprintln!("note: {flag} has no effect: {why}");
        }
    }
    if let Some(path) = a.checkpoint.as_ref().filter(|p| !p.is_file()) {
        return Err(Error::flag(
            "--checkpoint",
            format!("{} is not a file", path.display()),
        ));
    }
    let (model_flag, output) = targets(&a)?;
    let flags = a.input.record(model_flag, &a.model_kwargs, a.num_classes)?;
    let (checkpoint, record, name) = named_model(flags, a.checkpoint.as_deref(), "export")?;
    let weights = match (checkpoint, a.use_ema) {
        (Some(mut ck), true) => Some(ck.extra.remove("state_dict_ema").ok_or_else(|| {
            let path = a.checkpoint.as_deref().unwrap_or(Path::new(""));
            Error::flag(
                "--use-ema",
                format!("{} holds no EMA weights", path.display()),
            )
        })?)
        .map(|w| (w, ck.meta.pruned_shapes)),
        (Some(ck), false) => Some((ck.model, ck.meta.pruned_shapes)),
        (None, _) => None,
    };
    let from = (weights.as_ref().zip(a.checkpoint.as_deref()))
        .map(|((w, shapes), path)| (w, shapes.as_deref(), path));
    let mut model = build_model(&name, &record, from, a.pretrained)?;
    if a.reparam {
        model.reparameterize()?;
    }
    let (written, size) = record.settled(model.as_ref());
    let meta = vec![(MODEL_CONFIG_KEY.to_string(), written.to_json())];
    if a.format == "safetensors" {
        let weights = state_dict(model.as_ref());
        save_safetensors(&weights, Some(meta.into_iter().collect()), &output)?;
        println!("Saved {name} weights to {}", output.display());
        return Ok(());
    }
    model.set_training(a.training);
    let opts = ExportOptions {
        opset: a.opset,
        batch_size: a.batch_size,
        input_size: size,
        keep_init: a.keep_init,
        metadata: meta,
        dynamic_size: a.dynamic_size,
    };
    if a.verbose {
        println!("model_config: {}", written.to_json());
        println!(
            "opset {}, traced at batch {}, input {size:?}, initializers as inputs: {}",
            a.opset, a.batch_size, a.keep_init
        );
    }
    if !a.features_only {
        return write_onnx(model.as_ref(), model.as_ref(), &a, &opts, &output, &name);
    }
    let take = a.out_indices.clone().map(OutIndices::List);
    let features = FeatureExtractor::new(model, take)
        .map_err(|e| Error::flag("--out-indices", e.to_string()))?;
    write_onnx(&features, features.model(), &a, &opts, &output, &name)
}

/// Writes the ONNX file of `exported` (the model, or its feature extractor over `model`) and
/// checks it with tract under `--check-forward`.
#[cfg_attr(not(feature = "onnx-check"), allow(unused_variables))]
fn write_onnx<E: Exportable + ?Sized>(
    exported: &E,
    model: &dyn Model,
    a: &ExportArgs,
    opts: &ExportOptions,
    output: &Path,
    name: &str,
) -> Result<()> {
    let bytes = export_onnx(exported, opts).map_err(|e| export_error(e, name))?;
    std::fs::write(output, bytes).map_err(|e| Error::io(output, e))?;
    let dynamic = match a.dynamic_size {
        true => "dynamic batch, height and width",
        false => "dynamic batch",
    };
    let mode = if a.training { ", training mode" } else { "" };
    let what = if a.features_only { " feature maps" } else { "" };
    println!(
        "Exported {name}{what} (opset {}, input {:?}, {dynamic}{mode}) to {}",
        a.opset,
        opts.input_size,
        output.display()
    );
    #[cfg(feature = "onnx-check")]
    if a.check_forward {
        // A dynamic-size file is checked at the second size it was traced at, too.
        let mut sizes = vec![opts.input_size];
        if a.dynamic_size {
            sizes.push(kiln_nn::export::probe_size(opts.input_size));
        }
        for size in sizes {
            let checked =
                super::check_forward::check_forward(exported, model, output, a.batch_size, size)?;
            println!("Checked the forward at {size:?} with tract: {checked}");
        }
    }
    Ok(())
}

/// An export error, under the flag that asked for what the model's forward does not allow
/// (`--dynamic-size` where the graph depends on the input size, `--training` where the forward
/// draws random masks).
fn export_error(e: kiln_nn::Error, name: &str) -> Error {
    match e {
        kiln_nn::Error::ExportOption { option, msg } => Error::flag(
            &format!("--{}", option.replace('_', "-")),
            format!("{name} cannot be exported so: {msg}"),
        ),
        e => e.into(),
    }
}

/// The model flag and the output file, from kiln's `MODEL -o OUT` or timm's `--model M OUT`.
fn targets(a: &ExportArgs) -> Result<(Option<String>, PathBuf)> {
    match (&a.target, &a.output) {
        (Some(model), Some(out)) => match &a.model {
            Some(m) if m != model => Err(Error::flag(
                "--model",
                format!("'{m}' and the positional model '{model}' disagree; give one"),
            )),
            _ => Ok((Some(model.clone()), out.clone())),
        },
        (Some(out), None) if a.model.is_none() && ModelSpec::resolve(out).is_ok() => {
            Err(Error::flag(
                "--output",
                format!("no file to write: `kiln export {out} -o FILE` (or `--model {out} FILE`)"),
            ))
        }
        (Some(out), None) => Ok((a.model.clone(), PathBuf::from(out))),
        (None, Some(out)) => Ok((a.model.clone(), out.clone())),
        (None, None) => Err(Error::flag(
            "--output",
            "no file to write: `kiln export MODEL -o FILE`, or timm's `--model MODEL FILE`",
        )),
    }
}
