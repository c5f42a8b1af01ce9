//! What a checkpoint says about its model, and the one resolver every command (`train
//! --initial-checkpoint` / `--resume`, `validate`, `infer`, `export`, `prune`) runs its model
//! flags through. A flag given wins; else the model the file records (kiln's `model_config`
//! metadata, or the `arch` of kiln's and timm's checkpoints), else the `args.yaml` beside the file
//! (timm's and kiln's run folders write one), else the state dict's shapes (input channels from
//! the stem conv, classes from the classifier). A flag the shapes contradict, which no model built
//! from it could load, is refused naming both values and the file. Nothing read runs code.

use super::config::yaml_to_flags;
use super::model_flags::apply_model_kwargs;
use super::pretrained::start_from;
use kiln_engine::Tensor;
use kiln_nn::init::skip_init;
use kiln_nn::prune::apply_pruned_shapes;
use kiln_nn::{load_state_dict, Model, ModelArgs, ModelSpec};
use kiln_train::checkpoint::Checkpoint;
use kiln_train::loader::ResolvedData;
use kiln_train::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// A model's settings as a command's flags give them or a checkpoint records them (None: not
/// said).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelRecord {
    /// The model name (`--model`).
    pub model: Option<String>,
    /// Constructor arguments as `key=value` (`--model-kwargs`).
    pub model_kwargs: Vec<String>,
    /// Input channels.
    pub in_chans: Option<usize>,
    /// Classifier classes.
    pub num_classes: Option<usize>,
    /// Square input size.
    pub img_size: Option<usize>,
    /// Normalization mean, one per channel.
    pub mean: Option<Vec<f32>>,
    /// Normalization std, one per channel.
    pub std: Option<Vec<f32>>,
    /// Eval center-crop fraction (recorded; the commands keep timm's crop, see
    /// `InputFlags::apply`).
    pub crop_pct: Option<f64>,
    /// Eval resize interpolation.
    pub interpolation: Option<String>,
}

/// The metadata's JSON, in the layout of timm's `config.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    architecture: Option<String>,
    num_classes: Option<usize>,
    in_chans: Option<usize>,
    #[serde(default)]
    model_args: BTreeMap<String, String>,
    #[serde(default)]
    pretrained_cfg: StoredCfg,
}

/// The data half of [`Stored`].
#[derive(Debug, Default, Serialize, Deserialize)]
struct StoredCfg {
    input_size: Option<[usize; 3]>,
    interpolation: Option<String>,
    mean: Option<Vec<f32>>,
    std: Option<Vec<f32>>,
    crop_pct: Option<f64>,
}

/// The key of a `key=value` model argument.
fn kwarg_key(kv: &str) -> &str {
    kv.split_once('=').map_or(kv, |(k, _)| k)
}

impl ModelRecord {
    /// What a run records of its model: its name and arguments, its classes and the data
    /// settings it resolved (input size, normalization, crop, interpolation).
    pub fn of_run(model: &str, kwargs: &[String], num_classes: usize, data: &ResolvedData) -> Self {
        ModelRecord {
            model: Some(model.to_string()),
            model_kwargs: kwargs.to_vec(),
            in_chans: Some(data.in_chans),
            num_classes: Some(num_classes),
            img_size: Some(data.img_size),
            mean: Some(data.mean.clone()),
            std: Some(data.std.clone()),
            crop_pct: Some(data.crop_pct),
            interpolation: Some(data.interpolation.clone()),
        }
    }

    /// The record of the `model` built from it, with the input shape it is traced and timed at:
    /// the record's channels (else 3) and size (else the model's pretrained size), and the
    /// model's classes.
    pub fn settled(self, model: &dyn Model) -> (Self, [usize; 3]) {
        let [_, h, w] = model.pretrained_cfg().input_size;
        let c = self.in_chans.unwrap_or(3);
        let size = self.img_size.map_or([c, h, w], |s| [c, s, s]);
        let record = ModelRecord {
            in_chans: Some(c),
            num_classes: Some(model.num_classes()),
            img_size: Some(size[1]),
            ..self
        };
        (record, size)
    }

    /// The record as the JSON kiln writes under [`kiln_train::checkpoint::MODEL_CONFIG_KEY`].
    pub fn to_json(&self) -> String {
        let model_args = self.model_kwargs.iter().filter_map(|kv| kv.split_once('='));
        let stored = Stored {
            architecture: self.model.clone(),
            num_classes: self.num_classes,
            in_chans: self.in_chans,
            model_args: model_args
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            pretrained_cfg: StoredCfg {
                input_size: self.in_chans.zip(self.img_size).map(|(c, s)| [c, s, s]),
                interpolation: self.interpolation.clone(),
                mean: self.mean.clone(),
                std: self.std.clone(),
                crop_pct: self.crop_pct,
            },
        };
        serde_json::to_string(&stored).unwrap_or_default()
    }

    /// The record `path`'s `model_config` metadata holds.
    fn from_json(text: &str, path: &Path) -> Result<Self> {
        let s: Stored = serde_json::from_str(text).map_err(|e| Error::Checkpoint {
            path: path.to_path_buf(),
            msg: format!("metadata model_config is not a model record: {e}"),
        })?;
        let cfg = s.pretrained_cfg;
        Ok(ModelRecord {
            model: s.architecture,
            model_kwargs: (s.model_args.iter())
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            in_chans: s.in_chans.or(cfg.input_size.map(|d| d[0])),
            num_classes: s.num_classes,
            img_size: cfg.input_size.map(|d| d[1]),
            mean: cfg.mean,
            std: cfg.std,
            crop_pct: cfg.crop_pct,
            interpolation: cfg.interpolation,
        })
    }

    /// The model settings of a run's `args.yaml` (timm's or kiln's), read as `--config` reads it.
    fn from_args_yaml(file: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
        let origin = file.display().to_string();
        let flags = yaml_to_flags(&text, &origin)?;
        let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
        for f in &flags {
            match (f.strip_prefix("--"), groups.last_mut()) {
                (Some(name), _) => groups.push((name, Vec::new())),
                (None, Some((_, values))) => values.push(f),
                (None, None) => {}
            }
        }
        let bad = |key: &str, v: &[&str], what: &str| {
            Error::flag(&origin, format!("{key}: {v:?} is not {what}"))
        };
        let count = |key: &str, v: &[&str]| match v {
            [one] => one.parse::<usize>().map_err(|_| bad(key, v, "a count")),
            _ => Err(bad(key, v, "a count")),
        };
        let floats = |key: &str, v: &[&str]| -> Result<Vec<f32>> {
            (v.iter().map(|x| x.parse::<f32>()))
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| bad(key, v, "a list of numbers"))
        };
        let mut r = ModelRecord::default();
        for (name, v) in groups {
            match name {
                "model" => r.model = v.first().map(|m| m.to_string()),
                "model-kwargs" => r.model_kwargs = v.iter().map(|s| s.to_string()).collect(),
                "in-chans" => r.in_chans = Some(count(name, &v)?),
                "num-classes" => r.num_classes = Some(count(name, &v)?),
                "img-size" => r.img_size = Some(count(name, &v)?),
                "input-size" => {
                    let [c, h, _] = v[..] else {
                        return Err(bad(name, &v, "C H W"));
                    };
                    r.in_chans = Some(count(name, &[c])?);
                    r.img_size = Some(count(name, &[h])?);
                }
                "mean" => r.mean = Some(floats(name, &v)?),
                "std" => r.std = Some(floats(name, &v)?),
                "crop-pct" => r.crop_pct = floats(name, &v)?.first().map(|&p| f64::from(p)),
                "interpolation" => r.interpolation = v.first().map(|i| i.to_string()),
                _ => {}
            }
        }
        Ok(r)
    }

    /// `self`, its gaps filled from `other` (model arguments merged by key, `self`'s winning).
    fn or(self, other: ModelRecord) -> ModelRecord {
        let given: Vec<&str> = self.model_kwargs.iter().map(|kv| kwarg_key(kv)).collect();
        let mut model_kwargs: Vec<String> = (other.model_kwargs.into_iter())
            .filter(|kv| !given.contains(&kwarg_key(kv)))
            .collect();
        model_kwargs.extend(self.model_kwargs);
        ModelRecord {
            model: self.model.or(other.model),
            model_kwargs,
            in_chans: self.in_chans.or(other.in_chans),
            num_classes: self.num_classes.or(other.num_classes),
            img_size: self.img_size.or(other.img_size),
            mean: self.mean.or(other.mean),
            std: self.std.or(other.std),
            crop_pct: self.crop_pct.or(other.crop_pct),
            interpolation: self.interpolation.or(other.interpolation),
        }
    }
}

/// What `path` records of its model: its `model_config` metadata, the `arch` it names, then the
/// `args.yaml` beside it.
fn recorded(ck: &Checkpoint, path: &Path) -> Result<ModelRecord> {
    let mut r = match &ck.meta.model_config {
        Some(json) => ModelRecord::from_json(json, path)?,
        None => ModelRecord::default(),
    };
    if r.model.is_none() && !ck.meta.arch.is_empty() {
        r.model = Some(ck.meta.arch.clone());
    }
    let yaml = path.parent().map(|d| d.join("args.yaml"));
    match yaml.filter(|f| f.is_file()) {
        Some(file) => Ok(r.or(ModelRecord::from_args_yaml(&file)?)),
        None => Ok(r),
    }
}

/// The first of `names` (`.weight` added) among `weights`, with its shape, when it has `dim`.
fn weight_shape<'a>(
    names: impl Iterator<Item = &'a str>,
    weights: &BTreeMap<String, Tensor>,
    dim: usize,
) -> Option<(String, Vec<usize>)> {
    names.map(|n| format!("{n}.weight")).find_map(|name| {
        let shape = weights.get(&name)?.shape().to_vec();
        (shape.len() > dim).then_some((name, shape))
    })
}

/// `given` (the value of `flag`) against the `dim` of a tensor of `path`: a mismatch names both.
fn agree(
    flag: &str,
    given: Option<usize>,
    tensor: &Option<(String, Vec<usize>)>,
    dim: usize,
    what: &str,
    path: &Path,
) -> Result<()> {
    match (given, tensor) {
        (Some(g), Some((name, shape))) if shape[dim] != g => Err(Error::flag(
            flag,
            format!(
                "{g} disagrees with {}, whose {name} {shape:?} has {} {what}",
                path.display(),
                shape[dim]
            ),
        )),
        _ => Ok(()),
    }
}

/// A command's model: `flags` over what the checkpoint (`ck`, read from `path`) records, over
/// what its weights' shapes say (see the module doc); the model is `default_model` when neither
/// the flags nor the file name one. Without a checkpoint, `flags`.
pub fn resolve_model(
    flags: ModelRecord,
    default_model: Option<&str>,
    checkpoint: Option<(&Checkpoint, &Path)>,
) -> Result<ModelRecord> {
    let Some((ck, path)) = checkpoint else {
        return Ok(flags);
    };
    let mut recorded = recorded(ck, path)?;
    if recorded.model.is_none() {
        recorded.model = default_model.map(str::to_string);
    }
    let arch = flags
        .model
        .as_ref()
        .or(recorded.model.as_ref())
        .ok_or_else(|| {
            Error::flag(
                "--model",
                format!(
                "{} does not name its model (no model_config or arch in it, no args.yaml beside \
                 it); pass --model",
                path.display()
            ),
            )
        })?;
    let spec = ModelSpec::resolve(arch)?;
    let stem = weight_shape(spec.cfg.first_convs(), &ck.model, 1);
    let head = weight_shape(spec.cfg.classifiers(), &ck.model, 0);
    agree(
        "--in-chans",
        flags.in_chans,
        &stem,
        1,
        "input channels",
        path,
    )?;
    agree(
        "--num-classes",
        flags.num_classes,
        &head,
        0,
        "classes",
        path,
    )?;
    let shapes = ModelRecord {
        in_chans: stem.map(|(_, s)| s[1]),
        num_classes: head.map(|(_, s)| s[0]),
        ..ModelRecord::default()
    };
    Ok(flags.or(shapes).or(recorded))
}

/// What `kiln export` and `kiln prune` start from: the checkpoint at `path` (if given), the model
/// `flags` resolve to against it, and that model's name, which one of them must give (`doing`
/// says what for).
pub fn named_model(
    flags: ModelRecord,
    path: Option<&Path>,
    doing: &str,
) -> Result<(Option<Checkpoint>, ModelRecord, String)> {
    let checkpoint = path.map(Checkpoint::load).transpose()?;
    let record = resolve_model(flags, None, checkpoint.as_ref().zip(path))?;
    let name = record.model.clone().ok_or_else(|| {
        Error::flag(
            "--model",
            format!("no model to {doing}: name one, or give a --checkpoint that records it"),
        )
    })?;
    Ok((checkpoint, record, name))
}

/// `spec`'s model built with `args` and given `weights` read from `path`: a pruned checkpoint's
/// `shapes` first, then a strict load. A load that fails names the file and `arch`.
pub fn model_with_weights(
    spec: &ModelSpec,
    args: &ModelArgs,
    weights: &BTreeMap<String, Tensor>,
    shapes: Option<&str>,
    path: &Path,
) -> Result<Box<dyn Model>> {
    // The strict load replaces every tensor: nothing is drawn for them.
    let mut model = skip_init(|| spec.create(args))?;
    if let Some(shapes) = shapes {
        apply_pruned_shapes(model.as_mut(), shapes)?;
    }
    load_state_dict(model.as_ref(), weights, true).map_err(|e| Error::Checkpoint {
        path: path.to_path_buf(),
        msg: format!(
            "does not load into {} ({} input channels, {} classes): {e}",
            spec.cfg.name, args.in_chans, args.num_classes
        ),
    })?;
    Ok(model)
}

/// A checkpoint's weights for [`build_model`]: the tensors, a pruned checkpoint's shapes and the
/// file they were read from.
pub type CheckpointWeights<'a> = (&'a BTreeMap<String, Tensor>, Option<&'a str>, &'a Path);

/// The model `name` as `record` describes it (unsaid classes: the model's; channels: 3), with
/// `weights`, else its pretrained weights when `pretrained`, else its random init.
pub fn build_model(
    name: &str,
    record: &ModelRecord,
    weights: Option<CheckpointWeights>,
    pretrained: bool,
) -> Result<Box<dyn Model>> {
    let spec = ModelSpec::resolve(name)?;
    let mut args = ModelArgs {
        num_classes: record.num_classes.unwrap_or(spec.cfg.num_classes),
        in_chans: record.in_chans.unwrap_or(3),
        img_size: record.img_size,
        ..Default::default()
    };
    apply_model_kwargs(&mut args, &record.model_kwargs)?;
    if let Some((weights, shapes, path)) = weights {
        return model_with_weights(&spec, &args, weights, shapes, path);
    }
    let model = spec.create(&args)?;
    if pretrained {
        start_from(model.as_ref(), &spec.pretrained_source(args.num_classes)?)?;
    }
    Ok(model)
}

/// Whether the run that wrote `checkpoint` trained multi-label: its folder's `args.yaml` sets
/// `multi_label: true`.
pub(super) fn recorded_multi_label(checkpoint: Option<&Path>) -> bool {
    let yaml = checkpoint
        .and_then(Path::parent)
        .map(|d| d.join("args.yaml"));
    let text = yaml.and_then(|f| std::fs::read_to_string(f).ok());
    let doc: Option<serde_yaml::Value> = text.and_then(|t| serde_yaml::from_str(&t).ok());
    doc.and_then(|d| d.get("multi_label").and_then(serde_yaml::Value::as_bool))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resnet18(in_chans: usize, num_classes: usize) -> Checkpoint {
        let args = ModelArgs {
            in_chans,
            num_classes,
            ..ModelArgs::default()
        };
        let model = skip_init(|| kiln_nn::create_model("resnet18", &args)).unwrap();
        Checkpoint {
            model: kiln_nn::state_dict(model.as_ref()),
            ..Checkpoint::default()
        }
    }

    #[test]
    fn the_record_round_trips_through_its_json() {
        let r = ModelRecord {
            model: Some("resnet18".into()),
            model_kwargs: vec!["zero_init_last=False".into()],
            in_chans: Some(1),
            num_classes: Some(10),
            img_size: Some(28),
            mean: Some(vec![0.45]),
            std: Some(vec![0.22]),
            crop_pct: Some(1.0),
            interpolation: Some("bilinear".into()),
        };
        let back = ModelRecord::from_json(&r.to_json(), Path::new("x")).unwrap();
        assert_eq!(back, r);
        let e = ModelRecord::from_json("[1]", Path::new("ck.safetensors")).unwrap_err();
        assert!(e.to_string().contains("ck.safetensors"), "{e}");
    }

    #[test]
    fn the_shapes_give_channels_and_classes_and_refuse_contradicting_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain.safetensors");
        let mut ck = resnet18(1, 7);
        let none = ModelRecord::default();
        let e = resolve_model(none.clone(), None, Some((&ck, &path))).unwrap_err();
        assert!(e.to_string().starts_with("--model: "), "{e}");
        ck.meta.arch = "resnet18".into();
        let r = resolve_model(none, None, Some((&ck, &path))).unwrap();
        assert_eq!((r.in_chans, r.num_classes), (Some(1), Some(7)));
        let flags = ModelRecord {
            in_chans: Some(3),
            ..ModelRecord::default()
        };
        let e = resolve_model(flags, None, Some((&ck, &path)))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--in-chans: 3 disagrees with"), "{e}");
        assert!(
            e.contains("plain.safetensors") && e.contains("conv1.weight [64, 1, 7, 7]"),
            "{e}"
        );
    }

    #[test]
    fn flags_win_over_the_record_and_args_yaml_fills_what_it_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model_best.pth.tar");
        std::fs::write(
            dir.path().join("args.yaml"),
            "model: resnet18\nimg_size: 32\nmean: [0.5]\nstd: null\n\
             model_kwargs: {zero_init_last: false}\ninterpolation: ''\n",
        )
        .unwrap();
        let ck = resnet18(3, 5);
        let flags = ModelRecord {
            mean: Some(vec![0.1]),
            model_kwargs: vec!["drop_rate=0.1".into()],
            ..ModelRecord::default()
        };
        let r = resolve_model(flags, None, Some((&ck, &path))).unwrap();
        assert_eq!(r.model.as_deref(), Some("resnet18"));
        assert_eq!(
            (r.in_chans, r.num_classes, r.img_size),
            (Some(3), Some(5), Some(32))
        );
        assert_eq!(r.mean, Some(vec![0.1]));
        assert_eq!(r.model_kwargs, ["zero_init_last=False", "drop_rate=0.1"]);
        assert_eq!((r.std, r.interpolation), (None, None));
    }
}
