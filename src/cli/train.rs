//! `kiln train`: timm's `train.py` loop over the engine, loader, optimizer and scheduler.

use super::args::TrainArgs;
use super::configs::{
    batch_size_reference, data_config, data_flags, optimizer_config, resolve_lr, scheduler_config,
    train_config, variable_batch_loss_scale,
};
use super::data_source::{open_split, DatasetFlags, SplitRequest};
use super::devices::{device_list, seed_rank};
use super::elastic::{check_same_start, dist_timeout, resume_point};
use super::hfds::is_hfds;
use super::limits::{self, Budget};
use super::model_flags::{apply_after_creation, apply_model_kwargs};
use super::model_record::{resolve_model, ModelRecord};
use super::pretrained::{pretrained_source, start_from};
use super::prune::{self, recorded_shapes};
use super::ranges::check_train_ranges;
use super::run_dir::experiment_name;
use super::setup::{
    data_cfg, note_cpu_layout, open_device, open_multi_label, print_data_config, resolve_device,
    DataRoot,
};
use super::teacher;
use super::unsupported::{check_input_img_mode, check_supported, notes, NOTED, REFUSED};
use super::wds::is_wds;
use kiln_engine::{DType, Device, MemoryFormat};
use kiln_nn::convert_splitbn_model;
use kiln_nn::prune::apply_pruned_shapes;
use kiln_nn::{load_state_dict, load_weights, Model, ModelArgs, ModelSpec};
use kiln_train::amp::{amp_dtype, model_dtype};
use kiln_train::callbacks::{
    CheckpointSaver, EarlyStopping, EmaDecay, LogLines, ModelEma, Plots, ProgressBar, SaveImages,
    SummaryCsv, TensorBoard,
};
use kiln_train::checkpoint::{newest_checkpoint, Checkpoint};
use kiln_train::data::Source;
use kiln_train::dist::{enable_sync_bn, on_device_threads, Communicator, DdpOptions, ProcessGroup};
use kiln_train::loader::resolve_data_config;
use kiln_train::trainer::{EvalOptions, TrainConfig, Trainer};
use kiln_train::{Error, Result};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Checks values clap cannot (ranges, pairs) and refuses the flags kiln cannot honour.
fn check_args(a: &TrainArgs) -> Result<()> {
    check_supported(a, REFUSED)?;
    check_train_ranges(a)?;
    if a.batch_size == 0 {
        return Err(Error::flag("--batch-size", "must be at least 1"));
    }
    if a.sched.epochs == 0 {
        return Err(Error::flag("--epochs", "must be at least 1"));
    }
    let multi_label_metric =
        a.multi_label.multi_label && matches!(a.eval_metric.as_str(), "map" | "f1");
    if !matches!(a.eval_metric.as_str(), "top1" | "top5" | "loss") && !multi_label_metric {
        let multi = match a.multi_label.multi_label {
            true => ", map, f1",
            false => " (map and f1 with --multi-label)",
        };
        return Err(Error::flag(
            "--eval-metric",
            format!("'{}' is not one of top1, top5, loss{multi}", a.eval_metric),
        ));
    }
    if a.amp {
        amp_dtype(&a.amp_dtype)?;
    }
    model_dtype(a.model_dtype.as_deref(), a.amp)?;
    if a.grad_accum_steps == 0 {
        return Err(Error::flag("--grad-accum-steps", "must be at least 1"));
    }
    if !(0.0..=1.0).contains(&a.model_ema_decay) {
        return Err(Error::flag(
            "--model-ema-decay",
            format!("must be in [0, 1], got {}", a.model_ema_decay),
        ));
    }
    open_device(&a.device).map(|_| ())
}

/// Refuses counts that must be positive (and channels images cannot be decoded to) and more
/// loader threads than a process should start.
fn check_counts(a: &TrainArgs, in_chans: usize, img_size: Option<usize>) -> Result<()> {
    limits::check_channels(in_chans)?;
    if let Some(size) = img_size {
        limits::at_least_one("--img-size", size)?;
    }
    if let Some(b) = a.validation_batch_size {
        limits::at_least_one("--validation-batch-size", b)?;
    }
    if let Some(n) = a.num_classes {
        limits::at_least_one("--num-classes", n)?;
    }
    // timm's train.py divides by the first and asserts the second.
    limits::at_least_one("--log-interval", a.log_interval)?;
    limits::at_least_one("--checkpoint-hist", a.checkpoint_hist)?;
    limits::check_workers(a.workers)
}

/// Refuses input batches that cannot fit: the largest batch the run loads (scheduled and
/// validation batches included) at the largest of `size` and the scheduled sizes.
fn check_input_batches(a: &TrainArgs, budget: &Budget, in_chans: usize, size: usize) -> Result<()> {
    let batch = (a.sizes.train_batch_sizes.iter().flatten())
        .chain(&a.validation_batch_size)
        .fold(a.batch_size, |m, &b| m.max(b));
    let scheduled = a.sizes.train_img_sizes.iter().flatten();
    let size = scheduled.fold(size, |m, &s| m.max(s));
    limits::check_input_batch(budget, batch, in_chans, size)
}

/// Runs `kiln train`: builds the Trainer and its callbacks from the flags and fits, on one
/// device, or on each of a `--device cuda:0,1,...` list from one thread per device.
pub fn train(mut a: TrainArgs) -> Result<()> {
    let mut group = ProcessGroup::from_env()?;
    group.timeout = dist_timeout(&a.dist_timeout)?;
    a.device = resolve_device(&a.device);
    if let Some(ordinals) = device_list(&a.device)? {
        if group.world_size > 1 {
            return Err(Error::flag(
                "--device",
                format!(
                    "a device list ('{}') runs one process on several devices; under a launcher \
                     ({} processes) give each process one device (--device cuda)",
                    a.device, group.world_size
                ),
            ));
        }
        // One thread per device, each the whole run on its device as rank r of the threads.
        return on_device_threads(&ordinals, group.timeout, |device, comm| {
            let mut rank_args = a.clone();
            rank_args.device = device.to_string();
            train_rank(rank_args, comm)
        })
        .map(|_| ());
    }
    // One device: the main thread computes its CPU ops itself (a device list above keeps
    // rayon's own threads, which the device threads share while the main thread waits).
    kiln_engine::cpu::threads::compute_on_calling_thread();
    if a.device == "cuda" && group.world_size > 1 {
        // torchrun's convention: each rank of a node drives the GPU of its local rank.
        a.device = format!("cuda:{}", group.local_rank);
    }
    let comm = Arc::new(Communicator::for_group_on(&group, open_device(&a.device)?)?);
    train_rank(a, comm)
}

/// One rank's training: the whole run on `a.device`, with `comm` over the ranks.
fn train_rank(a: TrainArgs, comm: Arc<Communicator>) -> Result<()> {
    check_args(&a)?;
    let a = with_checkpoint_model(a)?;
    let dir = a.source.root();
    let root = DataRoot::detect(&dir)?;
    let (in_chans, img_size) = a.input.dims()?;
    let in_chans = in_chans.unwrap_or(if root.is_idx() { 1 } else { 3 });
    check_counts(&a, in_chans, img_size)?;
    check_input_img_mode(a.input_img_mode.as_deref(), in_chans)?;
    let (wds, hfds) = (is_wds(&a.source.dataset), is_hfds(&a.source.dataset));
    let (train_ds, val_ds) = match wds || hfds {
        true if a.multi_label.multi_label => {
            return Err(Error::flag(
                "--multi-label",
                "reads image folders with a label file, not webdataset shards or hfds/ datasets",
            ))
        }
        false if a.multi_label.multi_label => {
            let splits = (a.train_split.as_str(), a.val_split.as_str());
            let class_map = a.class_map.as_deref();
            let (t, v) = open_multi_label(&root, splits, in_chans, class_map, &a.multi_label)?;
            (Source::Indexed(t), Source::Indexed(v))
        }
        true => (
            open_split(&dir, &split_request(&a, true, in_chans))?,
            open_split(&dir, &split_request(&a, false, in_chans))?,
        ),
        false => (
            Source::Indexed(root.open(&a.train_split, true, in_chans, a.class_map.as_deref())?),
            Source::Indexed(root.open(&a.val_split, false, in_chans, a.class_map.as_deref())?),
        ),
    };
    let num_classes = (a.num_classes.or(train_ds.num_classes())).ok_or_else(|| {
        Error::flag(
            "--num-classes",
            "needed: the wds/ dataset's info file gives no num_classes",
        )
    })?;
    if let Some(data) = train_ds.num_classes().filter(|&n| n > num_classes) {
        return Err(Error::flag(
            "--num-classes",
            format!("{num_classes} classes (the checkpoint's or given), but the data has {data}"),
        ));
    }
    if let Some(data) = train_ds
        .num_classes()
        .filter(|&n| a.multi_label.multi_label && n != num_classes)
    {
        return Err(Error::flag(
            "--num-classes",
            format!(
                "{num_classes} classes, but the multi-label data has {data} (its targets' width)"
            ),
        ));
    }
    let (rank, world) = (comm.rank(), comm.world_size());
    if let Source::Indexed(ds) = &train_ds {
        limits::check_batches(ds.len(), world, a.batch_size)?;
    }
    if rank == 0 {
        notes(&a, NOTED).iter().for_each(|n| println!("{n}"));
    }
    // timm's random_seed(seed, rank): each rank draws its own dropout and drop-path masks.
    seed_rank(&comm, a.seed);
    let device = open_device(&a.device)?;
    let mut model_args = ModelArgs {
        num_classes,
        in_chans,
        global_pool: a.global_pool.clone(),
        // Models whose parameters depend on the input size (ViT) are built for the one trained on.
        img_size,
        drop_rate: a.drop_rate,
        drop_path_rate: a.drop_path,
        ..Default::default()
    };
    apply_model_kwargs(&mut model_args, &a.model_kwargs)?;
    // `--model` is resolved once: the model, its EMA copy and the prune schedule's unpruned
    // reference are all built from this spec.
    let spec = ModelSpec::resolve(&a.model)?;
    let budget = Budget::of(device);
    if let Some(budget) = &budget {
        // A size given by flag is checked before the model (a ViT's position embedding grows
        // with it); the model's default size once it is resolved.
        if let Some(size) = img_size {
            check_input_batches(&a, budget, in_chans, size)?;
        }
        limits::check_classifier(budget, &spec, &model_args)?;
    }
    let shapes = pruned_shapes(&a)?;
    let mut model = build_model(&a, &spec, &model_args, device, shapes.as_deref())?;
    if a.sync_bn && world > 1 {
        enable_sync_bn(model.as_mut(), &comm);
    }
    let params: usize = model
        .named_parameters()
        .iter()
        .map(|p| p.tensor.numel())
        .sum();
    if rank == 0 {
        println!("Model {} created, param count: {params}", a.model);
        if model.param_dtype() == DType::F16 {
            println!("float16 is not recommended for training, for half precision bfloat16 is recommended.");
        }
        if !a.amp {
            let dtype = a.model_dtype.as_deref().unwrap_or("float32");
            println!("AMP not enabled. Training in torch.{dtype}.");
        }
    }
    let native = match (&train_ds, root.is_idx()) {
        (Source::Indexed(ds), true) => Some(ds.load(0)?.image.h),
        _ => None,
    };
    // timm's resolve_data_config(vars(args), model=model): flags, else the model's cfg.
    let model_cfg = data_cfg(model.pretrained_cfg(), native);
    let resolved = resolve_data_config(&data_flags(&a, in_chans), &model_cfg, false)?;
    if rank == 0 {
        print_data_config(&resolved);
    }
    let img_size = resolved.img_size;
    let input = [in_chans, img_size, img_size];
    let pruned = shapes.is_some();
    let prune = prune::train_schedule(
        &a,
        &spec,
        &model_args,
        model.as_mut(),
        pruned,
        input,
        rank == 0,
    )?;
    let cfg = data_config(&a, &resolved, root.is_idx());
    let amp = a.amp.then(|| amp_dtype(&a.amp_dtype)).transpose()?;
    if let Some(budget) = &budget {
        check_input_batches(&a, budget, in_chans, img_size)?;
        let bytes = amp.unwrap_or(model.param_dtype()).size_in_bytes();
        limits::check_activations(budget, model.as_ref(), a.batch_size, img_size, bytes)?;
    }
    let batch_reference = batch_size_reference(&a)?;
    let lr = resolve_lr(&a, world, batch_reference);
    let dist = (world > 1).then(|| (comm.clone(), ddp_options(&a)));
    // timm's argparse checks the --kd-* choices with or without a teacher.
    let distill = teacher::distillation(&a, &a.distill, model.as_ref(), in_chans)?;
    if let (0, Some(d)) = (rank, &distill) {
        let w = d.weights();
        println!(
            "Distilling from {} ({:?}): task weight {}, distill weight {}, temperature {}",
            a.kd_model_name.as_deref().unwrap_or_default(),
            d.kind(),
            w.task,
            w.distill,
            a.distill.temperature
        );
    }
    let builder = Trainer::builder_for(model, train_ds.clone())
        .arch(a.model.clone())
        .model_config(
            ModelRecord::of_run(&a.model, &a.model_kwargs, num_classes, &resolved).to_json(),
        )
        .data(cfg)
        .validation_for(val_ds.clone())
        .validation_batch_size(a.validation_batch_size.unwrap_or(a.batch_size))
        .optimizer(optimizer_config(&a, lr))
        .base_lr(lr)
        .scheduler(scheduler_config(&a))
        .loss(a.loss)
        .config(TrainConfig {
            dist,
            variable_batch_loss_scale: variable_batch_loss_scale(&a, batch_reference),
            record_shapes: shapes.is_some() || prune.is_some(),
            ..train_config(&a, amp)
        })
        .eval_options(EvalOptions {
            log_interval: a.log_interval,
            reduce_factor: a.tta,
            multi_label_thresh: Some(a.multi_label.multi_label_thresh),
            ..EvalOptions::default()
        });
    let builder = match prune {
        Some(schedule) => builder.prune(schedule),
        None => builder,
    };
    let mut trainer = match distill {
        Some(d) => builder.distillation(d),
        None => builder,
    }
    .build()?;
    let run_dir = run_path(&a, img_size);
    if rank == 0 {
        let out_dir = make_run_folder(&a, run_dir.clone())?;
        println!("Training {} images ({} classes, {img_size}x{img_size}x{in_chans}) from {} on {world} rank(s), validating on {}; lr {lr:e}; output {}", train_ds.num_samples(), num_classes, dir.display(), val_ds.num_samples(), out_dir.display());
        print_size_schedule(&a, trainer.state().batches_per_epoch, batch_reference);
        add_callbacks(
            &mut trainer,
            &a,
            &spec,
            &model_args,
            shapes.as_deref(),
            &out_dir,
        )?;
    } else if let Some(patience) = a.early_stop {
        // Every rank stops with rank 0 (the metric it reads is reduced over ranks).
        trainer.add_callback(Box::new(EarlyStopping::new(patience)));
    }
    let start = resume_point(a.resume.as_deref(), &run_dir, &comm)?;
    if world > 1 {
        check_same_start(start.as_deref(), &comm)?;
    }
    if let Some(path) = &start {
        trainer.resume(path, !a.no_resume_opt)?;
    } else if let Some(epoch) = a.sched.start_epoch.filter(|&e| e > 0) {
        trainer.start_at(epoch);
    }
    if let Some(reason) = trainer.fit()? {
        println!("Stopped: {reason}");
    }
    if let (0, Some(t)) = (rank, trainer.ddp_times()) {
        println!(
            "DDP over {world} ranks ({}): all-reduce waited {:.2} ms per update after backward ({} updates)",
            comm.path_name(),
            1e3 * t.waited / t.updates.max(1) as f64,
            t.updates
        );
    }
    Ok(())
}

/// Samples in a source: a dataset's count, or a webdataset split's (its info file's, or the one
/// given by flag).
impl DatasetFlags for TrainArgs {
    fn dataset(&self) -> &str {
        &self.source.dataset
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
        self.class_map.is_some()
    }
}

/// The train or validation split of a wds/ or hfds/ dataset as train.py asks for it.
fn split_request(a: &TrainArgs, train: bool, chans: usize) -> SplitRequest<'_> {
    SplitRequest {
        flags: a,
        split: if train { &a.train_split } else { &a.val_split },
        train,
        num_samples: if train {
            a.train_num_samples
        } else {
            a.val_num_samples
        },
        chans,
    }
}

/// timm's log lines for scheduled resolutions (and that `--train-batches-per-epoch` has no
/// effect without them, which timm passes over silently).
fn print_size_schedule(a: &TrainArgs, batches: usize, reference: f64) {
    let Some(sizes) = &a.sizes.train_img_sizes else {
        if let Some(n) = a.sizes.train_batches_per_epoch {
            println!("--train-batches-per-epoch {n} has no effect without --train-img-sizes (as in timm); an epoch is one pass over the train split");
        }
        return;
    };
    let batch_sizes =
        (a.sizes.train_batch_sizes.clone()).unwrap_or_else(|| vec![a.batch_size; sizes.len()]);
    println!("Using scheduled training resolutions {sizes:?} with batch sizes {batch_sizes:?}.");
    if a.sizes.train_size_schedule == "progressive" {
        println!(
            "Using progressive resolution schedule over {} epochs with spread={} and random_mix={}.",
            a.sched.epochs, a.sizes.train_size_schedule_spread, a.sizes.train_size_random_mix
        );
    }
    println!("Scheduled loader has {batches} batches/epoch using policy-average batch size {reference:.2}.");
}

/// DDP's settings from `--no-ddp-bb` and `--dist-bn` (`KILN_DDP_OVERLAP=0` reduces after
/// backward instead of during it: the bench's baseline).
fn ddp_options(a: &TrainArgs) -> DdpOptions {
    DdpOptions {
        broadcast_buffers: !a.no_ddp_bb,
        dist_bn: a.dist_bn,
        overlap: std::env::var("KILN_DDP_OVERLAP").map_or(true, |v| v != "0"),
        ..DdpOptions::default()
    }
}

/// The checkpoints the run starts from, with their flags: the one it resumes (`--resume`, a
/// file or the newest in a folder), then `--initial-checkpoint`.
fn start_checkpoints(a: &TrainArgs) -> Result<Vec<(&'static str, PathBuf)>> {
    let resumed = match &a.resume {
        Some(path) if path.is_dir() => Some(newest_checkpoint(path)?),
        other => other.clone(),
    };
    let resumed = resumed.map(|p| ("--resume", p));
    let initial = a
        .initial_checkpoint
        .clone()
        .map(|p| ("--initial-checkpoint", p));
    Ok(resumed.into_iter().chain(initial).collect())
}

/// `a` with its model flags resolved against the first checkpoint the run starts from (see
/// [`resolve_model`]): the model (unless `--model` was given), its arguments, channels, classes
/// and data settings, where no flag gives them.
fn with_checkpoint_model(mut a: TrainArgs) -> Result<TrainArgs> {
    let Some((_, path)) = start_checkpoints(&a)?.into_iter().next() else {
        return Ok(a);
    };
    let ck = Checkpoint::load(&path)?;
    let given = a.model_given.then(|| a.model.clone());
    let flags = a.input.record(given, &a.model_kwargs, a.num_classes)?;
    let record = resolve_model(flags, Some(&a.model), Some((&ck, &path)))?;
    a.input.apply(&record);
    if let Some(model) = record.model {
        a.model = model;
    }
    a.model_kwargs = record.model_kwargs;
    a.num_classes = record.num_classes;
    Ok(a)
}

/// The shapes a pruned checkpoint records, from the one the run resumes (`--resume`, a file or
/// the newest in a folder) or else `--initial-checkpoint`; None for an unpruned model.
fn pruned_shapes(a: &TrainArgs) -> Result<Option<String>> {
    for (flag, path) in start_checkpoints(a)? {
        let shapes = recorded_shapes(&path)
            .map_err(|e| Error::flag(flag, format!("{}: {e}", path.display())))?;
        if shapes.is_some() {
            return Ok(shapes);
        }
    }
    Ok(None)
}

/// The model on its device, from `--pretrained-path` or `--pretrained` (see
/// [`pretrained_source`]), given a pruned checkpoint's `shapes`, and then
/// `--initial-checkpoint` if given (timm's `load_checkpoint`: a checkpoint's EMA weights when
/// it has them), in the requested layout. Either file may be safetensors or one `torch.save`
/// wrote.
fn build_model(
    a: &TrainArgs,
    spec: &ModelSpec,
    args: &ModelArgs,
    device: Device,
    shapes: Option<&str>,
) -> Result<Box<dyn Model>> {
    let mut model = spec.create(args)?;
    let source = pretrained_source(
        spec,
        a.pretrained,
        a.pretrained_path.as_deref(),
        args.num_classes,
    )?;
    if let Some(source) = source {
        start_from(model.as_ref(), &source)?;
    }
    if let Some(shapes) = shapes {
        apply_pruned_shapes(model.as_mut(), shapes)?;
    }
    if let Some(path) = &a.initial_checkpoint {
        let weights = load_weights(path, true)?;
        load_state_dict(model.as_ref(), &weights.tensors, true)
            .map_err(|e| Error::flag("--initial-checkpoint", format!("{}: {e}", path.display())))?;
        match weights.source {
            "" => println!("Loaded initial weights from {}", path.display()),
            part => println!("Loaded initial weights from {} ({part})", path.display()),
        }
    }
    apply_after_creation(model.as_mut(), a)?;
    if a.split_bn {
        // timm's train.py: `assert num_aug_splits > 1 or args.resplit`.
        if a.loss.aug_splits < 2 && !a.mix.resplit {
            return Err(Error::flag(
                "--split-bn",
                "needs --aug-splits 2 or more (or --resplit): each split of the batch gets its own BatchNorm",
            ));
        }
        convert_splitbn_model(model.as_mut(), a.loss.aug_splits.max(2))?;
    }
    if a.channels_last {
        note_cpu_layout(device);
        model.set_memory_format(MemoryFormat::ChannelsLast)?;
    }
    model.to_device(device)?;
    if let Some(dtype) = model_dtype(a.model_dtype.as_deref(), a.amp)? {
        model.to_dtype(dtype)?;
    }
    Ok(model)
}

/// The run folder: timm's `output/train/<experiment>` (`--output`, `--experiment`).
fn run_path(a: &TrainArgs, img_size: usize) -> PathBuf {
    a.output
        .clone()
        .unwrap_or_else(|| PathBuf::from("output/train"))
        .join(
            a.experiment
                .clone()
                .unwrap_or_else(|| experiment_name(&a.model, img_size)),
        )
}

/// Creates the run folder `out_dir` and writes the flags to its `args.yaml`.
fn make_run_folder(a: &TrainArgs, out_dir: PathBuf) -> Result<PathBuf> {
    std::fs::create_dir_all(&out_dir).map_err(|e| Error::io(&out_dir, e))?;
    let yaml = a.args_yaml()?;
    let args_path = out_dir.join("args.yaml");
    std::fs::write(&args_path, yaml).map_err(|e| Error::io(&args_path, e))?;
    Ok(out_dir)
}

/// The callbacks the flags ask for, in the order they run.
fn add_callbacks(
    trainer: &mut Trainer,
    a: &TrainArgs,
    spec: &ModelSpec,
    model_args: &ModelArgs,
    shapes: Option<&str>,
    out_dir: &Path,
) -> Result<()> {
    if std::io::stdout().is_terminal() {
        trainer.add_callback(Box::new(ProgressBar::new()));
        trainer.add_callback(Box::new(LogLines::epochs_only()));
    } else {
        trainer.add_callback(Box::new(LogLines::new(a.log_interval)));
    }
    if a.model_ema {
        let device = if a.model_ema_force_cpu {
            Device::Cpu
        } else {
            open_device(&a.device)?
        };
        let ema = build_model(a, spec, model_args, device, shapes)?;
        let decay = EmaDecay::Scheduled {
            decay: a.model_ema_decay,
            warmup: a.model_ema_warmup,
        };
        trainer.add_callback(Box::new(ModelEma::new(ema, decay, !a.model_ema_force_cpu)));
    }
    trainer.add_callback(Box::new(SummaryCsv::new(&out_dir.join("summary.csv"))));
    if a.save_images {
        trainer.add_callback(Box::new(SaveImages::new(out_dir, a.log_interval)));
    }
    if a.log_tensorboard {
        trainer.add_callback(Box::new(TensorBoard::new(
            out_dir,
            a.save_images,
            a.log_interval,
        )));
    }
    if let Some(patience) = a.early_stop {
        trainer.add_callback(Box::new(EarlyStopping::new(patience)));
    }
    trainer.add_callback(Box::new(CheckpointSaver::new(
        out_dir,
        a.checkpoint_hist,
        a.recovery_interval,
    )));
    trainer.add_callback(Box::new(Plots::new(out_dir)));
    Ok(())
}
