//! `kiln validate`: evaluates checkpoints, as timm's `validate.py`.

use super::args::ValidateArgs;
use super::data_source::{is_stream_or_cache, open_split, DatasetFlags, SplitRequest};
use super::limits::{self, Budget};
use super::model_flags::apply_model_kwargs;
use super::model_record::{model_with_weights, recorded_multi_label, resolve_model};
use super::pretrained::start_from;
use super::ranges::check_eval_ranges;
use super::retry::with_retry;
use super::setup::{
    data_cfg, layout, note_cpu_layout, open_device, open_multi_label_split, print_data_config,
    DataRoot,
};
use super::unsupported::{
    check_input_img_mode, check_supported, notes, VALIDATE_NOTED, VALIDATE_REFUSED,
};
use super::validate_scores::{valid_labels, Metrics, Scores};
use kiln_engine::MemoryFormat;
use kiln_nn::layers::TestTimePoolHead;
use kiln_nn::{Model, ModelArgs, ModelSpec};
use kiln_train::augment::EvalCropMode;
use kiln_train::checkpoint::{is_checkpoint_name, Checkpoint};
use kiln_train::data::{load_class_map, Source};
use kiln_train::loader::{resolve_data_config, DataConfig, DataFlags};
use kiln_train::trainer::{validate_observed, BatchStages, EvalOptions};
use kiln_train::{Error, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One checkpoint's result (timm's results-file columns plus kiln's loss and checkpoint).
#[derive(Debug, Serialize)]
struct Row {
    model: String,
    checkpoint: String,
    top1: f64,
    top1_err: f64,
    top5: f64,
    top5_err: f64,
    /// `--metrics-avg`'s precision, recall and F1 keys.
    #[serde(flatten)]
    metrics: Option<Metrics>,
    /// Multi-label data (`--multi-label`): mAP and micro F1 at `--multi-label-thresh`, percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    map: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    f1: Option<f64>,
    loss: f64,
    param_count: usize,
    img_size: usize,
    crop_pct: f64,
    samples: usize,
    img_per_sec: f64,
}

fn flag(flag: &str, msg: impl Into<String>) -> Error {
    Error::Flag {
        flag: flag.into(),
        msg: msg.into(),
    }
}

/// Runs `kiln validate`: every checkpoint named (folders expand to their checkpoints), timm's
/// result line for each, and the results file if asked.
pub fn validate(a: ValidateArgs) -> Result<()> {
    check_supported(&a, VALIDATE_REFUSED)?;
    notes(&a, VALIDATE_NOTED)
        .iter()
        .for_each(|n| println!("{n}"));
    kiln_engine::cpu::threads::compute_on_calling_thread();
    // timm's validate.py: utils.random_seed(args.seed).
    kiln_engine::manual_seed(a.seed);
    if a.tta > 2 {
        return Err(flag(
            "--tta",
            format!(
                "{} views: kiln averages 2 (the image and its mirror)",
                a.tta
            ),
        ));
    }
    if !matches!(a.results_format.as_str(), "csv" | "json") {
        return Err(flag(
            "--results-format",
            format!("'{}' is not csv or json", a.results_format),
        ));
    }
    if let Some(mode) = &a.eval.crop_mode {
        mode.parse::<EvalCropMode>()
            .map_err(|e| flag("--crop-mode", e.to_string()))?;
    }
    let (amp, dtype) = a.eval.precision()?;
    let mut rows = Vec::new();
    let paths = expand(&a.checkpoint)?;
    // timm's validate.py: `args.pretrained = args.pretrained or not args.checkpoint`; a
    // checkpoint's weights replace the pretrained ones, so those are read only without one.
    let one = |path: Option<&Path>| match a.retry {
        true => with_retry(a.eval.batch_size, |batch_size| {
            let mut a = a.clone();
            a.eval.batch_size = batch_size;
            validate_one(&a, path, amp, dtype)
        }),
        false => validate_one(&a, path, amp, dtype),
    };
    if paths.is_empty() {
        rows.push(one(None)?);
    }
    for path in paths {
        rows.push(one(Some(&path))?);
    }
    if let Some(file) = &a.results_file {
        write_results(file, &a.results_format, &rows)?;
    }
    Ok(())
}

/// Refuses counts that must be positive, more loader threads than a process should start and
/// values outside their range, before anything is read.
fn check_eval_flags(a: &ValidateArgs) -> Result<()> {
    limits::at_least_one("--batch-size", a.eval.batch_size)?;
    if let Some(size) = a.eval.input.img_size {
        limits::at_least_one("--img-size", size)?;
    }
    if let Some(n) = a.eval.num_classes {
        limits::at_least_one("--num-classes", n)?;
    }
    limits::at_least_one("--log-freq", a.log_interval)?;
    limits::check_workers(a.workers)?;
    check_eval_ranges(&a.eval)
}

/// The checkpoints named: files as given, folders as their checkpoint files in order (kiln's
/// `.safetensors`, timm's `.pth.tar`, torch's `.pth` / `.pt` / `.bin`).
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if !p.is_dir() {
            out.push(p.clone());
            continue;
        }
        let mut found: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(|e| Error::io(p, e))?
            .filter_map(|e| Some(e.ok()?.path()))
            .filter(|f| f.is_file() && is_checkpoint_name(f))
            .collect();
        found.sort();
        if found.is_empty() {
            return Err(flag(
                "--checkpoint",
                format!(
                    "{} holds no checkpoint (.safetensors, .pth.tar, .pth, .pt, .bin)",
                    p.display()
                ),
            ));
        }
        out.extend(found);
    }
    Ok(out)
}

/// The model (`path`'s weights, or without it the pretrained ones; cast to `dtype`), the data
/// and the loader of `a`, as validate.py resolves them.
pub(super) fn prepare(
    a: &ValidateArgs,
    path: Option<&Path>,
    dtype: Option<kiln_engine::DType>,
) -> Result<Prepared> {
    check_eval_flags(a)?;
    let dir = a.eval.source.root();
    let root = DataRoot::detect(&dir)?;
    let checkpoint = path.map(Checkpoint::load).transpose()?;
    // The model flags over what the checkpoint records: the model, its channels, classes and
    // data settings.
    let mut a = a.clone();
    let e = &a.eval;
    let flags = e
        .input
        .record(e.model.clone(), &e.model_kwargs, e.num_classes)?;
    let record = resolve_model(flags, None, checkpoint.as_ref().zip(path))?;
    a.eval.input.apply(&record);
    a.eval.model = record.model;
    a.eval.model_kwargs = record.model_kwargs;
    a.eval.num_classes = record.num_classes;
    // As kiln infer: a checkpoint of a multi-label run (its args.yaml says so) validates so.
    a.eval.multi_label.multi_label |= recorded_multi_label(path);
    let a = &a;
    let in_chans = a
        .eval
        .input
        .in_chans
        .unwrap_or(if root.is_idx() { 1 } else { 3 });
    check_input_img_mode(a.input_img_mode.as_deref(), in_chans)?;
    limits::check_channels(in_chans)?;
    let source = open_eval_source(a, &root, &dir, in_chans)?;
    let data_classes = (source.num_classes().or(a.eval.num_classes)).ok_or_else(|| {
        flag(
            "--num-classes",
            "needed: the wds/ dataset's info file gives no num_classes, nor does a checkpoint",
        )
    })?;
    let device = open_device(&a.eval.device)?;
    let budget = Budget::of(device);
    let (mut model, arch, checkpoint) = match checkpoint.zip(path) {
        Some((ck, path)) => from_checkpoint(a, ck, path, in_chans, data_classes, budget.as_ref())?,
        None => from_pretrained(a, in_chans, data_classes, budget.as_ref())?,
    };
    if a.eval.channels_last {
        note_cpu_layout(device);
    }
    let format = MemoryFormat::preferred_on(device);
    let channels_last = a.eval.channels_last || format == Some(MemoryFormat::ChannelsLast);
    if channels_last {
        model.set_memory_format(MemoryFormat::ChannelsLast)?;
    }
    model.to_device(device)?;
    if let Some(dtype) = dtype {
        model.to_dtype(dtype)?;
    }
    let param_count = model
        .named_parameters()
        .iter()
        .map(|p| p.tensor.numel())
        .sum();
    let native = match (root.is_idx(), &source) {
        (true, Source::Indexed(ds)) => Some(ds.load(0)?.image.h),
        _ => None,
    };
    let flags = DataFlags {
        crop_mode: a.eval.crop_mode.clone(),
        ..a.eval.input.data_flags(in_chans)
    };
    // timm's validate.py: resolve_data_config(vars(args), model=model, use_test_size=not
    // args.use_train_size).
    let model_cfg = data_cfg(model.pretrained_cfg(), native);
    let resolved = resolve_data_config(&flags, &model_cfg, !a.eval.use_train_size)?;
    print_data_config(&resolved);
    let img_size = resolved.img_size;
    if let Some(budget) = &budget {
        limits::check_input_batch(budget, a.eval.batch_size, in_chans, img_size)?;
        let bytes = if a.eval.amp {
            2
        } else {
            model.param_dtype().size_in_bytes()
        };
        limits::check_largest_map(budget, model.as_ref(), a.eval.batch_size, img_size, bytes)?;
    }
    let (model, test_time_pool) = match a.eval.test_pool {
        true => apply_test_time_pool(model, img_size)?,
        false => (model, false),
    };
    // validate.py: `crop_pct = 1.0 if test_time_pool else data_config['crop_pct']`.
    let crop_pct = if test_time_pool {
        1.0
    } else {
        resolved.crop_pct
    };
    let cfg = DataConfig {
        workers: a.workers,
        crop_pct: Some(crop_pct),
        crop_border_pixels: a.crop_border_pixels,
        ..resolved.data_config()
    };
    let loader = cfg.eval_loader_for(source.clone(), a.eval.batch_size, 0, 1)?;
    let stages = BatchStages {
        normalize: cfg.normalize(layout(channels_last)),
        erasing: None,
        mixup: None,
        seed: 0,
        device,
        dtype: model.param_dtype(),
    };
    Ok(Prepared {
        model,
        arch,
        checkpoint,
        source,
        loader,
        stages,
        param_count,
        img_size,
        crop_pct,
    })
}

impl DatasetFlags for ValidateArgs {
    fn dataset(&self) -> &str {
        &self.eval.source.dataset
    }
    fn seed(&self) -> u64 {
        self.seed
    }
    fn input_key(&self) -> Option<&str> {
        self.input_key.as_deref()
    }
    fn target_key(&self) -> Option<&str> {
        self.target_key.as_deref()
    }
    fn has_class_map(&self) -> bool {
        self.eval.class_map.is_some()
    }
}

/// The split validate.py reads: `--split` of the folder, the multi-label folder, the wds/
/// shards or the hfds/ cache in `dir`.
fn open_eval_source(a: &ValidateArgs, root: &DataRoot, dir: &Path, chans: usize) -> Result<Source> {
    let e = &a.eval;
    let class_map = e.class_map.as_deref();
    let stream_or_cache = is_stream_or_cache(&e.source.dataset);
    Ok(match e.multi_label.multi_label {
        true if stream_or_cache => {
            return Err(flag(
                "--multi-label",
                "reads image folders with a label file, not webdataset shards or hfds/ datasets",
            ))
        }
        true => {
            let classes = class_map.map(load_class_map).transpose()?;
            let ml = &e.multi_label;
            Source::Indexed(open_multi_label_split(
                root, &e.split, false, chans, classes, ml,
            )?)
        }
        false if stream_or_cache => {
            let req = SplitRequest {
                flags: a,
                split: &e.split,
                train: false,
                num_samples: a.num_samples,
                chans,
            };
            open_split(dir, &req)?
        }
        false => Source::Indexed(root.open(&e.split, false, chans, class_map)?),
    })
}

/// What evaluating one checkpoint (or pretrained weights) runs on: the model on its device, the
/// eval loader and the batch stages, as validate.py sets them up (`kiln infer` shares it).
pub(super) struct Prepared {
    pub model: Box<dyn Model>,
    pub arch: String,
    pub checkpoint: String,
    pub source: Source,
    pub loader: kiln_train::loader::Loader,
    pub stages: BatchStages,
    pub param_count: usize,
    pub img_size: usize,
    pub crop_pct: f64,
}

/// Evaluates one checkpoint, or without one the model's pretrained weights, under autocast in
/// `amp` or with the model cast to `dtype` (`--model-dtype`).
fn validate_one(
    a: &ValidateArgs,
    path: Option<&Path>,
    amp: Option<kiln_engine::DType>,
    dtype: Option<kiln_engine::DType>,
) -> Result<Row> {
    let Prepared {
        mut model,
        arch,
        checkpoint,
        source,
        mut loader,
        stages,
        param_count,
        img_size,
        crop_pct,
    } = prepare(a, path, dtype)?;
    let valid = (a.valid_labels.as_deref())
        .map(|f| {
            let data_classes = source.num_classes().unwrap_or(model.num_classes());
            valid_labels(f, model.num_classes(), data_classes)
        })
        .transpose()?;
    let opts = EvalOptions {
        log_interval: a.log_interval,
        amp,
        tta: a.tta == 2,
        valid_labels: valid,
        multi_label_thresh: Some(a.eval.multi_label.multi_label_thresh),
        ..EvalOptions::default()
    };
    let mut scores = Scores::new(a, source.num_samples())?;
    let r = validate_observed(
        model.as_mut(),
        &mut loader,
        &stages,
        &opts,
        &mut |logits, labels, files| scores.observe(logits, labels, files),
    )?;
    // validate.py: real labels mode replaces the top-k values at the end.
    let [top1, top5] = scores.real_accuracy().unwrap_or([r.top1, r.top5]);
    let metrics = scores.metrics()?;
    println!(
        " * Acc@1 {top1:.3} ({:.3}) Acc@5 {top5:.3} ({:.3}){}",
        100.0 - top1,
        100.0 - top5,
        metrics.as_ref().map(Metrics::log_line).unwrap_or_default()
    );
    if let (Some(map), Some(f1)) = (r.map, r.f1) {
        let thresh = a.eval.multi_label.multi_label_thresh;
        println!(" * mAP {map:.3} F1@{thresh} {f1:.3}");
    }
    let row = Row {
        model: arch,
        checkpoint,
        top1,
        top1_err: 100.0 - top1,
        top5,
        top5_err: 100.0 - top5,
        metrics,
        map: r.map,
        f1: r.f1,
        loss: r.loss,
        param_count,
        img_size,
        crop_pct,
        samples: r.samples,
        img_per_sec: r.samples as f64 / r.seconds.max(1e-9),
    };
    let json = serde_json::to_string(&row).map_err(|e| flag("--results-file", e.to_string()))?;
    println!("--result\n{json}");
    Ok(row)
}

/// timm's `apply_test_time_pool`: when the input (`img_size` square) is larger than the one
/// the model's pretrained config was trained at, its head becomes [`TestTimePoolHead`] with the
/// config's pooling window; whether it did.
fn apply_test_time_pool(model: Box<dyn Model>, img_size: usize) -> Result<(Box<dyn Model>, bool)> {
    let cfg = model.pretrained_cfg();
    let [_, h, w] = cfg.input_size;
    if img_size <= h || img_size <= w {
        return Ok((model, false));
    }
    println!(
        "Target input size ({img_size}, {img_size}) > pretrained default ({h}, {w}), using test time pooling"
    );
    let window = cfg.pool_size;
    let head =
        TestTimePoolHead::new(model, window).map_err(|e| flag("--test-pool", e.to_string()))?;
    Ok((Box::new(head), true))
}

/// The model `ck` (read from `path`) holds (its EMA weights with --use-ema), its architecture and
/// the path.
fn from_checkpoint(
    a: &ValidateArgs,
    mut ck: Checkpoint,
    path: &Path,
    in_chans: usize,
    data_classes: usize,
    budget: Option<&Budget>,
) -> Result<(Box<dyn Model>, String, String)> {
    // `prepare` resolved the model: the flag's, else the checkpoint's.
    let arch = a.eval.model.clone().unwrap_or_default();
    let weights = match (a.use_ema, ck.extra.remove("state_dict_ema")) {
        (true, Some(ema)) => ema,
        (true, None) => {
            println!(
                "{} has no EMA weights; validating its model weights",
                path.display()
            );
            ck.model
        }
        (false, _) => ck.model,
    };
    let model_args = model_args(a, a.eval.num_classes.unwrap_or(data_classes), in_chans)?;
    let spec = ModelSpec::resolve(&arch)?;
    if let Some(budget) = budget {
        limits::check_classifier(budget, &spec, &model_args)?;
    }
    let weights = without_aux_bn(weights, path);
    let shapes = ck.meta.pruned_shapes.as_deref();
    let model = model_with_weights(&spec, &model_args, &weights, shapes, path)?;
    Ok((model, arch, path.display().to_string()))
}

/// `--model` with its pretrained weights (timm's `create_model(pretrained=True)`), with the
/// weights' classes unless --num-classes is given (the data's when the weights have no head),
/// its name and the weights file.
fn from_pretrained(
    a: &ValidateArgs,
    in_chans: usize,
    data_classes: usize,
    budget: Option<&Budget>,
) -> Result<(Box<dyn Model>, String, String)> {
    let name = a.eval.model.clone().ok_or_else(|| {
        flag(
            "--model",
            "validating pretrained weights (no --checkpoint) needs the model's name",
        )
    })?;
    let spec = ModelSpec::resolve(&name)?;
    let default_classes = match spec.cfg.num_classes {
        0 => data_classes,
        n => n,
    };
    let model_args = model_args(a, a.eval.num_classes.unwrap_or(default_classes), in_chans)?;
    if let Some(budget) = budget {
        limits::check_classifier(budget, &spec, &model_args)?;
    }
    let source = spec.pretrained_source(model_args.num_classes)?;
    let model = spec.create(&model_args)?;
    start_from(model.as_ref(), &source)?;
    Ok((model, name, source.file.display().to_string()))
}

/// Writes the rows as CSV (timm's default) or a JSON list.
fn write_results(file: &Path, format: &str, rows: &[Row]) -> Result<()> {
    let text = if format == "json" {
        serde_json::to_string_pretty(rows).map_err(|e| flag("--results-file", e.to_string()))?
    } else {
        let header = rows.first().map(|r| {
            let names: Vec<String> = csv_cells(r).into_iter().map(|(k, _)| k).collect();
            names.join(",")
        });
        let lines = rows.iter().map(|r| {
            let cells: Vec<String> = csv_cells(r).into_iter().map(|(_, v)| v).collect();
            cells.join(",")
        });
        header
            .into_iter()
            .chain(lines)
            .map(|l| l + "\n")
            .collect::<String>()
    };
    std::fs::write(file, text).map_err(|e| Error::io(file, e))
}

/// A row's CSV columns, (name, value), in the JSON rows' order.
fn csv_cells(r: &Row) -> Vec<(String, String)> {
    let mut cells: Vec<(String, String)> = [
        ("model", r.model.clone()),
        ("checkpoint", r.checkpoint.clone()),
        ("top1", format!("{:.3}", r.top1)),
        ("top1_err", format!("{:.3}", r.top1_err)),
        ("top5", format!("{:.3}", r.top5)),
        ("top5_err", format!("{:.3}", r.top5_err)),
    ]
    .map(|(k, v)| (k.to_string(), v))
    .into();
    let metrics = r.metrics.iter().flat_map(Metrics::entries);
    cells.extend(metrics.map(|(k, v)| (k, format!("{v}"))));
    cells.extend(
        [
            ("loss", format!("{:.4}", r.loss)),
            ("param_count", r.param_count.to_string()),
            ("img_size", r.img_size.to_string()),
            ("crop_pct", r.crop_pct.to_string()),
            ("samples", r.samples.to_string()),
            ("img_per_sec", format!("{:.1}", r.img_per_sec)),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    cells
}

/// The weights less the auxiliary BatchNorm layers of `--split-bn` training, which evaluation
/// never uses (timm's `clean_checkpoint.py --clean-aux-bn`), saying so when there were any.
fn without_aux_bn(
    mut weights: BTreeMap<String, kiln_engine::Tensor>,
    path: &Path,
) -> BTreeMap<String, kiln_engine::Tensor> {
    let before = weights.len();
    weights.retain(|name, _| !name.contains(".aux_bn."));
    if weights.len() < before {
        println!(
            "{}: left out {} tensors of auxiliary BatchNorm layers (--split-bn training)",
            path.display(),
            before - weights.len()
        );
    }
    weights
}

/// The model's arguments: `num_classes`, `in_chans`, `--gp` and `--model-kwargs`.
fn model_args(a: &ValidateArgs, num_classes: usize, in_chans: usize) -> Result<ModelArgs> {
    let mut args = ModelArgs {
        num_classes,
        in_chans,
        global_pool: a.global_pool.clone(),
        ..Default::default()
    };
    apply_model_kwargs(&mut args, &a.eval.model_kwargs)?;
    Ok(args)
}
