//! `kiln train`: timm's `train.py` loop over the engine, loader, optimizer and scheduler.

use super::args::TrainArgs;
use super::run_dir::{experiment_name, SummaryCsv};
use super::setup::{embedded_data, layout, open_device, small_image_loader, DataRoot};
use crate::amp::{amp_dtype, GradScaler};
use crate::checkpoint::{load_checkpoint, CheckpointMeta, CheckpointSaver};
use crate::loader::DataConfig;
use crate::optim::{create_optimizer_for_model, OptimArgs};
use crate::sched::Scheduler;
use crate::trainer::{train_one_epoch, validate, BatchStages, EpochOptions, Stepper};
use crate::{Error, Result};
use kiln_engine::{manual_seed, with_global_generator, DType, Generator, MemoryFormat};
use kiln_nn::{create_model, load_safetensors, load_state_dict, Model, ModelArgs};
use std::path::PathBuf;

fn flag(flag: &str, msg: impl Into<String>) -> Error {
    Error::Flag {
        flag: flag.into(),
        msg: msg.into(),
    }
}

/// Checks values clap cannot (ranges, pairs).
fn check_args(a: &TrainArgs) -> Result<()> {
    if a.batch_size == 0 {
        return Err(flag("--batch-size", "must be at least 1"));
    }
    if a.epochs == 0 {
        return Err(flag("--epochs", "must be at least 1"));
    }
    if !(0.0..1.0).contains(&a.smoothing) {
        return Err(flag(
            "--smoothing",
            format!("must be in [0, 1), got {}", a.smoothing),
        ));
    }
    if a.lr.is_some_and(|lr| !(lr > 0.0 && lr.is_finite())) {
        return Err(flag("--lr", "must be a positive number"));
    }
    if !matches!(a.eval_metric.as_str(), "top1" | "top5" | "loss") {
        return Err(flag(
            "--eval-metric",
            format!("'{}' is not one of top1, top5, loss", a.eval_metric),
        ));
    }
    if a.amp {
        amp_dtype(&a.amp_dtype)?;
    }
    open_device(&a.device).map(|_| ())
}

/// timm's learning-rate rule: `--lr`, else `lr_base` scaled by global batch / `lr_base_size`.
fn resolve_lr(a: &TrainArgs) -> f64 {
    if let Some(lr) = a.lr {
        return lr;
    }
    let ratio = a.batch_size as f64 / a.lr_base_size as f64;
    let adaptive = ["ada", "lamb"].iter().any(|o| a.opt.contains(o));
    match a.lr_base_scale.as_str() {
        "sqrt" => a.lr_base * ratio.sqrt(),
        "linear" => a.lr_base * ratio,
        _ if adaptive => a.lr_base * ratio.sqrt(),
        _ => a.lr_base * ratio,
    }
}

fn pair(v: &[f64]) -> (f64, f64) {
    (v[0], v.get(1).copied().unwrap_or(v[0]))
}

fn data_config(
    a: &TrainArgs,
    img_size: usize,
    in_chans: usize,
    crop_pct: Option<f64>,
) -> DataConfig {
    DataConfig {
        img_size,
        in_chans,
        batch_size: a.batch_size,
        workers: a.workers,
        aa: a.aa.clone(),
        reprob: a.reprob,
        remode: a.remode.clone(),
        recount: a.recount,
        resplit: a.resplit,
        mixup: a.mixup,
        cutmix: a.cutmix,
        cutmix_minmax: a.cutmix_minmax.as_deref().map(pair),
        mixup_prob: a.mixup_prob,
        mixup_switch_prob: a.mixup_switch_prob,
        mixup_mode: a.mixup_mode.clone(),
        mixup_off_epoch: a.mixup_off_epoch,
        smoothing: a.smoothing,
        scale: pair(&a.scale),
        ratio: pair(&a.ratio),
        hflip: a.hflip,
        vflip: a.vflip,
        color_jitter: a.color_jitter,
        train_interpolation: a.train_interpolation.clone(),
        aug_splits: a.aug_splits,
        no_aug: a.no_aug,
        crop_pct,
        mean: a.mean.clone(),
        std: a.std.clone(),
        interpolation: a.interpolation.clone(),
        seed: a.seed,
        ..DataConfig::default()
    }
}

/// Runs `kiln train`.
pub fn train(a: TrainArgs) -> Result<()> {
    check_args(&a)?;
    let dir = a
        .data
        .clone()
        .or(a.data_dir.clone())
        .unwrap_or_else(embedded_data);
    let root = DataRoot::detect(&dir)?;
    let in_chans = a.in_chans.unwrap_or(if root.is_idx() { 1 } else { 3 });
    let train_ds = root.open(&a.train_split, true, in_chans, a.class_map.as_deref())?;
    let val_ds = root.open(&a.val_split, false, in_chans, a.class_map.as_deref())?;
    let num_classes = a.num_classes.unwrap_or(train_ds.num_classes());
    manual_seed(a.seed);
    let model_args = ModelArgs {
        num_classes,
        in_chans,
        global_pool: a.global_pool.clone(),
        drop_rate: a.drop_rate,
        drop_path_rate: a.drop_path.unwrap_or(0.0),
        ..Default::default()
    };
    let mut model = create_model(&a.model, &model_args)?;
    let params: usize = model
        .named_parameters()
        .iter()
        .map(|p| p.tensor.numel())
        .sum();
    println!("Model {} created, param count: {params}", a.model);
    if let Some(path) = &a.initial_checkpoint {
        load_state_dict(model.as_ref(), &load_safetensors(path)?, true)?;
        println!("Loaded initial weights from {}", path.display());
    }
    if a.channels_last {
        model.set_memory_format(MemoryFormat::ChannelsLast)?;
    }
    let device = open_device(&a.device)?;
    model.to_device(device)?;
    let cfg_size = model.pretrained_cfg().input_size[1];
    let img_size = a.img_size.unwrap_or(if root.is_idx() {
        train_ds.load(0)?.image.h
    } else {
        cfg_size
    });
    let crop_pct = a.crop_pct.or(root.is_idx().then_some(1.0));
    let cfg = data_config(&a, img_size, in_chans, crop_pct);
    let mut train_loader = if root.is_idx() {
        small_image_loader(&cfg, train_ds.clone())?
    } else {
        cfg.train_loader(train_ds.clone(), 0, 1)?
    };
    let mut eval_loader = cfg.eval_loader(
        val_ds.clone(),
        a.validation_batch_size.unwrap_or(a.batch_size),
        0,
        1,
    )?;
    let stages = BatchStages {
        normalize: cfg.normalize(layout(a.channels_last)),
        erasing: cfg.random_erasing()?,
        mixup: cfg.mixup_fn(num_classes)?,
        smoothing: a.smoothing,
        seed: a.seed,
        device,
    };
    let optim_args = OptimArgs::from_train_args(&a, resolve_lr(&a));
    let mut optim = create_optimizer_for_model(&optim_args, model.as_ref())?;
    let lr = resolve_lr(&a);
    let decay = Scheduler::decay_from_name(&a.sched, a.decay_epochs, a.decay_rate)?;
    let sched = Scheduler {
        current: lr,
        base_lr: lr,
        min_lr: a.min_lr,
        warmup_lr: a.warmup_lr,
        warmup_epochs: a.warmup_epochs,
        t_initial: a.epochs as f64,
        decay,
    };
    let amp = a.amp.then(|| amp_dtype(&a.amp_dtype)).transpose()?;
    let mut scaler = (amp == Some(DType::F16)).then(GradScaler::default);
    let mut start_epoch = a.start_epoch.unwrap_or(0);
    if let Some(path) = &a.resume {
        let (next, saved_scaler) = resume(path, model.as_mut(), optim.as_mut(), &a)?;
        start_epoch = next.max(start_epoch);
        if let (Some(s), Some((scale, tracker))) = (scaler.as_mut(), saved_scaler) {
            s.scale = scale;
            s.growth_tracker = tracker;
        }
    }
    let out_dir = a
        .output
        .clone()
        .unwrap_or_else(|| PathBuf::from("output/train"))
        .join(
            a.experiment
                .clone()
                .unwrap_or_else(|| experiment_name(&a.model, img_size)),
        );
    std::fs::create_dir_all(&out_dir).map_err(|e| Error::io(&out_dir, e))?;
    let yaml = serde_yaml::to_string(&a).map_err(|e| flag("args.yaml", e.to_string()))?;
    let args_path = out_dir.join("args.yaml");
    std::fs::write(&args_path, yaml).map_err(|e| Error::io(&args_path, e))?;
    println!("Training {} images ({} classes, {img_size}x{img_size}x{in_chans}) from {}, validating on {}; lr {lr}; output {}", train_ds.len(), num_classes, dir.display(), val_ds.len(), out_dir.display());
    let mut summary = SummaryCsv::open(&out_dir.join("summary.csv"))?;
    let mut saver = CheckpointSaver::new(&out_dir, a.checkpoint_hist, a.eval_metric == "loss");
    let opts = EpochOptions {
        log_interval: a.log_interval,
        clip_grad: a.clip_grad,
        amp,
    };
    for epoch in start_epoch..a.epochs {
        let lr = sched.lr_at(epoch as f64);
        let mut stepper = Stepper {
            optim: optim.as_mut(),
            scaler: scaler.as_mut(),
        };
        let stats = train_one_epoch(
            epoch,
            model.as_mut(),
            &mut stepper,
            &mut train_loader,
            &stages,
            lr,
            &opts,
        )?;
        let eval = validate(
            model.as_mut(),
            &mut eval_loader,
            &stages,
            a.log_interval,
            amp,
        )?;
        let skipped = stats.skipped + eval.skipped;
        println!(
            "Epoch {epoch}: train_loss {:.4}, eval_loss {:.4}, top1 {:.2}%, top5 {:.2}%, {:.1} img/s, {:.1}s{}",
            stats.loss,
            eval.loss,
            eval.top1,
            eval.top5,
            stats.samples as f64 / stats.seconds,
            stats.seconds,
            if skipped > 0 { format!(", {skipped} unreadable images skipped") } else { String::new() }
        );
        summary.append(epoch, stats.loss, &eval, lr)?;
        let metric = match a.eval_metric.as_str() {
            "top5" => eval.top5,
            "loss" => eval.loss,
            _ => eval.top1,
        };
        let rng_offset = with_global_generator(|g| g.offset());
        saver.save(
            model.as_ref(),
            optim.as_ref(),
            &CheckpointMeta {
                epoch,
                arch: a.model.clone(),
                metric: Some(metric),
                rng_offset,
                scaler: scaler.as_ref().map(|s| (s.scale, s.growth_tracker)),
            },
        )?;
    }
    if let Some((best, epoch)) = saver.best {
        println!("*** Best metric: {best} (epoch {epoch})");
    }
    Ok(())
}

/// Restores model, optimizer and RNG from `path`; returns the epoch to continue from.
fn resume(
    path: &std::path::Path,
    model: &mut dyn Model,
    optim: &mut dyn crate::optim::Optimizer,
    a: &TrainArgs,
) -> Result<(usize, Option<(f64, u32)>)> {
    let ck = load_checkpoint(path)?;
    load_state_dict(&*model, &ck.model, true)?;
    if !a.no_resume_opt {
        optim.load_state_dict(&ck.optimizer)?;
    }
    with_global_generator(|g| *g = Generator::resume(a.seed, ck.meta.rng_offset));
    println!("Resumed from {} (epoch {})", path.display(), ck.meta.epoch);
    Ok((ck.meta.epoch + 1, ck.meta.scaler))
}
