//! `kiln prune`: removes channels from a model (its random init, pretrained weights or a
//! checkpoint) by an importance criterion until the MACs or parameters fall by `--ratio`, and
//! writes the smaller model with its shapes recorded, printing parameters, MACs and CPU latency
//! before and after. Also the schedule of `kiln train --prune-*`, which prunes while training.

use super::args::TrainArgs;
use super::input_flags::InputFlags;
use super::limits;
use super::model_record::{build_model, named_model};
use kiln_engine::{DType, Tensor};
use kiln_nn::init::skip_init;
use kiln_nn::prune::{
    prune, pruned_shapes_metadata, Criterion, PruneOptions, Target, PRUNED_SHAPES_KEY,
};
use kiln_nn::{state_dict, CheckpointFile, Model, ModelArgs, ModelSpec};
use kiln_train::augment::{resize, Interpolation};
use kiln_train::checkpoint::MODEL_CONFIG_KEY;
use kiln_train::data::{Dataset, ImageFolder};
use kiln_train::trainer::PruneSchedule;
use kiln_train::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `kiln prune` flags.
#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// The model (a registered name, `arch.tag`, or `hf-hub:org/name`; default: the
    /// checkpoint's).
    #[arg(short = 'm', long)]
    pub model: Option<String>,
    /// Weights from this checkpoint (kiln's, timm's, or one `kiln prune` wrote).
    #[arg(long, conflicts_with = "pretrained")]
    pub checkpoint: Option<PathBuf>,
    /// The model's pretrained weights (from the Hugging Face hub cache).
    #[arg(long)]
    pub pretrained: bool,
    /// How channels are ranked: l1, l2, fpgm, bn-scale or taylor.
    #[arg(long, default_value = "l1")]
    pub criterion: String,
    /// Fraction of the target removed (0.5 halves the MACs).
    #[arg(long, default_value_t = 0.5)]
    pub ratio: f64,
    /// What the ratio is of: macs or params.
    #[arg(long, default_value = "macs")]
    pub target: String,
    /// One importance threshold across layers instead of the same fraction of each.
    #[arg(long)]
    pub global: bool,
    /// The most of any layer's channels removed.
    #[arg(long, default_value_t = 1.0)]
    pub max_ratio: f64,
    /// Layers left alone: a glob over parameter names (`layer4.*`); repeatable.
    #[arg(long)]
    pub ignore: Vec<String>,
    /// Kept channel counts rounded up to a multiple of this (8 for tensor cores).
    #[arg(long, default_value_t = 1)]
    pub round_to: usize,
    /// An image folder whose first images give taylor its gradients.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Images read from --data for taylor.
    #[arg(long, default_value_t = 8)]
    pub taylor_samples: usize,
    /// Classifier classes (default: the checkpoint's head, else the model's).
    #[arg(long)]
    pub num_classes: Option<usize>,
    /// The model-input flags (`--img-size` to `--interpolation`).
    #[command(flatten)]
    pub input: InputFlags,
    /// The pruned model's safetensors file.
    #[arg(short, long)]
    pub output: PathBuf,
}

/// Runs `kiln prune`.
pub fn prune_cmd(a: PruneArgs) -> Result<()> {
    let (criterion, opts) = options(&a)?;
    if let Some(path) = a.checkpoint.as_ref().filter(|p| !p.is_file()) {
        return Err(Error::flag(
            "--checkpoint",
            format!("{} is not a file", path.display()),
        ));
    }
    let flags = a.input.record(a.model.clone(), &[], a.num_classes)?;
    let (checkpoint, record, name) = named_model(flags, a.checkpoint.as_deref(), "prune")?;
    let from = (checkpoint.as_ref().zip(a.checkpoint.as_deref()))
        .map(|(ck, path)| (&ck.model, ck.meta.pruned_shapes.as_deref(), path));
    let mut model = build_model(&name, &record, from, a.pretrained)?;
    let (written, size) = record.settled(model.as_ref());
    let before = latency_ms(model.as_mut(), size)?;
    if criterion == Criterion::Taylor {
        let data = a.data.as_deref().ok_or_else(|| {
            Error::flag(
                "--data",
                "taylor importance needs an image folder for its gradients",
            )
        })?;
        taylor_gradients(model.as_mut(), data, size, a.taylor_samples)?;
    }
    let report = prune(model.as_mut(), size, criterion, &opts)?;
    let after = latency_ms(model.as_mut(), size)?;
    let meta = [
        pruned_shapes_metadata(model.as_ref()),
        ("arch".into(), name.clone()),
        (MODEL_CONFIG_KEY.into(), written.to_json()),
    ];
    kiln_nn::save_safetensors(
        &state_dict(model.as_ref()),
        Some(meta.into_iter().collect()),
        &a.output,
    )?;
    let pct = |x: [f64; 2]| 100.0 * x[1] / x[0];
    println!(
        "Pruned {name} by {} ({}% of {}, {}): {} channels removed",
        a.criterion,
        a.ratio * 100.0,
        a.target,
        if a.global { "global" } else { "per layer" },
        report.removed
    );
    println!(
        "params: {} -> {} ({:.1}%)",
        report.params[0],
        report.params[1],
        pct(report.params)
    );
    println!(
        "MACs: {} -> {} ({:.1}%)",
        report.macs[0],
        report.macs[1],
        pct(report.macs)
    );
    println!("latency_ms (CPU, batch 1, median of 5): {before:.3} -> {after:.3}");
    println!("Wrote {}", a.output.display());
    Ok(())
}

/// The criterion and options, or the flag at fault.
fn options(a: &PruneArgs) -> Result<(Criterion, PruneOptions)> {
    let values = PruneValues {
        criterion: &a.criterion,
        ratio: a.ratio,
        target: &a.target,
        global: a.global,
        max_ratio: a.max_ratio,
        ignore: &a.ignore,
        round_to: a.round_to,
    };
    parse_options(&values, "--")
}

/// The values of the flags that say how to prune, as `kiln prune` and `kiln train --prune-*`
/// take them.
pub(super) struct PruneValues<'a> {
    pub criterion: &'a str,
    pub ratio: f64,
    pub target: &'a str,
    pub global: bool,
    pub max_ratio: f64,
    pub ignore: &'a [String],
    pub round_to: usize,
}

/// The criterion and options of `v`, or the flag at fault (named `{prefix}criterion`, ...).
pub(super) fn parse_options(v: &PruneValues, prefix: &str) -> Result<(Criterion, PruneOptions)> {
    let flag = |name: &str| format!("{prefix}{name}");
    let criterion = Criterion::parse(v.criterion).ok_or_else(|| {
        Error::flag(
            &flag("criterion"),
            format!(
                "unknown criterion '{}' (l1, l2, fpgm, bn-scale, taylor)",
                v.criterion
            ),
        )
    })?;
    let target = match v.target {
        "macs" => Target::Macs,
        "params" => Target::Params,
        t => {
            return Err(Error::flag(
                &flag("target"),
                format!("unknown target '{t}' (macs, params)"),
            ))
        }
    };
    if !(0.0..1.0).contains(&v.ratio) {
        return Err(Error::flag(
            &flag("ratio"),
            format!("{} is not in [0, 1)", v.ratio),
        ));
    }
    if !(v.max_ratio > 0.0 && v.max_ratio <= 1.0) {
        return Err(Error::flag(
            &flag("max-ratio"),
            format!("{} is not in (0, 1]", v.max_ratio),
        ));
    }
    if v.round_to == 0 {
        return Err(Error::flag(&flag("round-to"), "must be at least 1"));
    }
    let opts = PruneOptions {
        ratio: v.ratio,
        target,
        global: v.global,
        max_ratio: v.max_ratio,
        ignore: v.ignore.to_vec(),
        round_to: v.round_to,
        reference: None,
    };
    Ok((criterion, opts))
}

/// The shapes a pruned checkpoint records, if `path` is one.
pub(super) fn recorded_shapes(path: &Path) -> Result<Option<String>> {
    Ok(match kiln_nn::read_checkpoint_file(path)? {
        CheckpointFile::Safetensors { metadata, .. } => metadata.get(PRUNED_SHAPES_KEY).cloned(),
        CheckpointFile::Torch(_) => None,
    })
}

/// Median wall time of 5 eval forwards of one image (after one warm-up), in milliseconds.
fn latency_ms(model: &mut dyn Model, [c, h, w]: [usize; 3]) -> Result<f64> {
    model.set_training(false);
    let _no_grad = kiln_engine::no_grad();
    let x = Tensor::randn(&[1, c, h, w], DType::F32, 0)?;
    model.forward(&x)?;
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            model.forward(&x).map(|_| t.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<kiln_nn::Result<_>>()?;
    times.sort_by(f64::total_cmp);
    model.set_training(true);
    Ok(times[2])
}

/// Accumulates the cross-entropy gradients of the first `n` images of the folder `dir`
/// (resized to the input, normalized with the model's mean and std), for taylor.
fn taylor_gradients(
    model: &mut dyn Model,
    dir: &Path,
    [c, h, w]: [usize; 3],
    n: usize,
) -> Result<()> {
    let folder = ImageFolder::open(dir, None, c)?;
    let cfg = model.pretrained_cfg().clone();
    let count = n.clamp(1, folder.len());
    let mut pixels = Vec::with_capacity(count * c * h * w);
    let mut labels = Vec::with_capacity(count);
    for i in 0..count {
        let s = folder.load(i)?;
        let img = resize(&s.image, w, h, Interpolation::Bilinear);
        for ch in 0..c {
            for y in 0..h {
                for x in 0..w {
                    let v = f64::from(img.px(x, y)[ch]) / 255.0;
                    pixels.push(((v - cfg.mean[ch % 3]) / cfg.std[ch % 3]) as f32);
                }
            }
        }
        labels.push((s.label % model.num_classes().max(1)) as i64);
    }
    model.set_training(false);
    let x = Tensor::from_vec(pixels, &[count, c, h, w])?;
    let y = Tensor::from_vec(labels, &[count])?;
    model.forward(&x)?.cross_entropy(&y, 0.0)?.backward()?;
    model.set_training(true);
    Ok(())
}

/// Refuses a `--prune-*` setting off its default without `--prune-ratio`, which it would
/// configure. (At their defaults they pass: a run's own args.yaml holds every flag.)
fn unused_prune_flags(a: &TrainArgs) -> Result<Option<PruneSchedule>> {
    let d = TrainArgs::default();
    let changed = [
        ("--prune-criterion", a.prune_criterion != d.prune_criterion),
        ("--prune-target", a.prune_target != d.prune_target),
        ("--prune-steps", a.prune_steps != d.prune_steps),
        ("--prune-interval", a.prune_interval != d.prune_interval),
        ("--prune-global", a.prune_global != d.prune_global),
        ("--prune-max-ratio", a.prune_max_ratio != d.prune_max_ratio),
        ("--prune-ignore", a.prune_ignore != d.prune_ignore),
        ("--prune-round-to", a.prune_round_to != d.prune_round_to),
    ];
    match changed.iter().find(|(_, changed)| *changed) {
        Some((flag, _)) => Err(Error::flag(
            flag,
            "configures pruning while training, which only --prune-ratio turns on",
        )),
        None => Ok(None),
    }
}

/// `kiln train --prune-ratio`'s schedule, traced at the training input `input`. The unpruned
/// MACs or parameters the ratio is of come from `model`, or from a fresh instance of the
/// architecture when `model` was built with a pruned checkpoint's shapes (`pruned`).
pub(super) fn train_schedule(
    a: &TrainArgs,
    spec: &ModelSpec,
    args: &ModelArgs,
    model: &mut dyn Model,
    pruned: bool,
    input: [usize; 3],
    log: bool,
) -> Result<Option<PruneSchedule>> {
    let Some(ratio) = a.prune_ratio else {
        return unused_prune_flags(a);
    };
    let values = PruneValues {
        criterion: &a.prune_criterion,
        ratio,
        target: &a.prune_target,
        global: a.prune_global,
        max_ratio: a.prune_max_ratio,
        ignore: &a.prune_ignore,
        round_to: a.prune_round_to,
    };
    let (criterion, options) = parse_options(&values, "--prune-")?;
    if criterion == Criterion::Taylor {
        return Err(Error::flag(
            "--prune-criterion",
            "taylor ranks by gradients, and a prune step runs at an epoch's start, before any: \
             prune with `kiln prune --criterion taylor --data DIR`, then train the result",
        ));
    }
    if a.kd_model_name.is_some() {
        return Err(Error::flag(
            "--prune-ratio",
            "not with --kd-model-name (the distillation projection reads the student's feature \
             width): prune with `kiln prune`, then distill into the pruned model",
        ));
    }
    limits::at_least_one("--prune-steps", a.prune_steps)?;
    limits::at_least_one("--prune-interval", a.prune_interval)?;
    let (steps, interval) = (a.prune_steps, a.prune_interval);
    let schedule = match pruned {
        false => PruneSchedule::new(model, criterion, options, steps, interval, input)?,
        true => {
            let mut unpruned = skip_init(|| spec.create(args))?;
            PruneSchedule::new(
                unpruned.as_mut(),
                criterion,
                options,
                steps,
                interval,
                input,
            )?
        }
    };
    log.then(|| {
        println!(
            "Pruning {}% of the {} in {steps} step(s) {interval} epoch(s) apart, by {} ({})",
            ratio * 100.0,
            match a.prune_target.as_str() {
                "params" => "parameters",
                _ => "MACs",
            },
            a.prune_criterion,
            if a.prune_global {
                "global"
            } else {
                "per layer"
            },
        )
    });
    Ok(Some(schedule))
}
