//! `--kd-model-name`: the teacher of knowledge distillation, made as timm's train.py makes it
//! (`create_model(name, pretrained=True, num_classes=<student's>, in_chans=<student's>)`, in eval
//! mode) with its weights from one of timm's sources:
//!
//! - `local-dir:/folder` (timm's `local-dir:` model source): the architecture, mean/std and model
//!   arguments from the folder's `config.json`, the weights from its `model.safetensors` (or
//!   `pytorch_model.bin`, `pytorch_model.pth`, `model.pth`, else the first `*.safetensors`,
//!   `*.pth`, `*.pth.tar`, `*.bin`), as timm's `load_state_dict_from_path` picks them;
//! - a registry name (`resnet50`, `resnet50.a1_in1k`): its pretrained weights, found by
//!   [`pretrained_file`].

use super::args::TrainArgs;
use super::model_flags::apply_model_kwargs;
use kiln_engine::MemoryFormat;
use kiln_nn::{create_model, load_pretrained, Model, ModelArgs, PretrainedSource};
use kiln_train::distill::{DistillConfig, Distillation, Teacher};
use kiln_train::{Error, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

const FLAG: &str = "--kd-model-name";

fn flag_error(msg: impl Into<String>) -> Error {
    Error::Flag {
        flag: FLAG.into(),
        msg: msg.into(),
    }
}

/// The distillation `--kd-model-name` asks for (None without it), taught to `student`, which
/// takes `in_chans` channels.
pub fn distillation(
    a: &TrainArgs,
    config: &DistillConfig,
    student: &dyn Model,
    in_chans: usize,
) -> Result<Option<Distillation>> {
    let Some(name) = &a.kd_model_name else {
        return Ok(None);
    };
    let args = ModelArgs {
        num_classes: student.num_classes(),
        in_chans,
        ..ModelArgs::default()
    };
    let teacher = create_teacher(name, args, a.channels_last)?;
    Distillation::new(config, teacher, student).map(Some)
}

/// Where the teacher's weights and config come from.
struct Source {
    arch: String,
    weights: PathBuf,
    /// config.json's pretrained mean/std, if it has them.
    normalization: Option<([f64; 3], [f64; 3])>,
    /// config.json's `model_args` as `key=value`.
    model_args: Vec<String>,
}

/// The teacher model with its weights loaded (the classifier re-initialized only where its
/// classes differ from the file's, as timm's `load_pretrained` does), channels-last as the
/// student when `channels_last`.
fn create_teacher(name: &str, mut args: ModelArgs, channels_last: bool) -> Result<Teacher> {
    let source = match name.strip_prefix("local-dir:") {
        Some(dir) => local_dir(Path::new(dir))?,
        None => Source {
            arch: name.split('.').next().unwrap_or(name).to_string(),
            weights: pretrained_file(name)?,
            normalization: None,
            model_args: Vec::new(),
        },
    };
    apply_model_kwargs(&mut args, &source.model_args)
        .map_err(|e| flag_error(format!("config.json model_args: {e}")))?;
    let mut model = create_model(&source.arch, &args)?;
    let file = PretrainedSource {
        file: source.weights.clone(),
        reset_classifier: false,
    };
    let report = load_pretrained(model.as_ref(), &file)?;
    println!(
        "Created KD teacher {} from {}{}",
        source.arch,
        source.weights.display(),
        if report.classifier_reset {
            " (its classifier re-initialized for the student's classes)"
        } else {
            ""
        }
    );
    if channels_last {
        model.set_memory_format(MemoryFormat::ChannelsLast)?;
    }
    let teacher = Teacher::new(model);
    Ok(match source.normalization {
        Some((mean, std)) => teacher.with_normalization(mean, std),
        None => teacher,
    })
}

/// The pretrained weights file of registry model `name` (timm's `pretrained=True`). kiln has no
/// network access and no hub cache yet, so this is refused with the local alternative; hub-cache
/// resolution plugs in here.
pub fn pretrained_file(name: &str) -> Result<PathBuf> {
    Err(flag_error(format!(
        "the pretrained weights of '{name}' come from the Hugging Face hub, which kiln cannot reach; \
         save the teacher as a folder with config.json and model.safetensors and pass local-dir:/that/folder"
    )))
}

/// timm's `local-dir:` source: `config.json` and the weights file in `dir`.
fn local_dir(dir: &Path) -> Result<Source> {
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
    let bad = |msg: &str| flag_error(format!("{}: {msg}", cfg_path.display()));
    let cfg: Value = serde_json::from_str(&text).map_err(|e| bad(&e.to_string()))?;
    let arch = cfg["architecture"]
        .as_str()
        .ok_or_else(|| bad("no \"architecture\""))?
        .to_string();
    // timm's legacy single-dict config keeps the pretrained config at the top level.
    let pretrained = cfg.get("pretrained_cfg").unwrap_or(&cfg);
    let triple = |key: &str| -> Result<Option<[f64; 3]>> {
        let Some(v) = pretrained.get(key) else {
            return Ok(None);
        };
        let nums: Option<Vec<f64>> = v
            .as_array()
            .and_then(|a| a.iter().map(Value::as_f64).collect());
        match nums.as_deref() {
            Some(&[a, b, c]) => Ok(Some([a, b, c])),
            _ => Err(bad(&format!("\"{key}\" is not three numbers"))),
        }
    };
    let normalization = match (triple("mean")?, triple("std")?) {
        (Some(m), Some(s)) => Some((m, s)),
        _ => None,
    };
    let model_args = match cfg.get("model_args").and_then(Value::as_object) {
        Some(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", python_literal(v)))
            .collect(),
        None => Vec::new(),
    };
    Ok(Source {
        arch,
        weights: weights_in(dir)?,
        normalization,
        model_args,
    })
}

/// A JSON value as the Python literal `--model-kwargs` reads.
fn python_literal(v: &Value) -> String {
    match v {
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// timm's `load_state_dict_from_path`: a preferred file name, else the first file by extension.
fn weights_in(dir: &Path) -> Result<PathBuf> {
    const PREFERRED: [&str; 4] = [
        "model.safetensors",
        "pytorch_model.bin",
        "pytorch_model.pth",
        "model.pth",
    ];
    const EXTENSIONS: [&str; 4] = [".safetensors", ".pth", ".pth.tar", ".bin"];
    if let Some(p) = PREFERRED.iter().map(|f| dir.join(f)).find(|p| p.exists()) {
        return Ok(p);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    EXTENSIONS
        .iter()
        .find_map(|ext| {
            files
                .iter()
                .find(|f| f.to_string_lossy().ends_with(ext))
                .cloned()
        })
        .ok_or_else(|| flag_error(format!("no checkpoint found in {}", dir.display())))
}
