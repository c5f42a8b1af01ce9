//! `--cuda-graph` (on kiln-cuda-emu in CI): a tiny conv + BN + linear model trained with its
//! updates captured and replayed ends with the same bits as the same run with eager updates:
//! parameters, BN buffers, optimizer state, every batch's loss, and the loss scaler, for SGD and
//! AdamW, with an lr that changes every update, clipping, channels-last f16 AMP, poisoned batches
//! whose updates the device skips (a non-finite loss, an f16 overflow; with AMP the warm-up
//! updates all overflow, so the optimizer state is first made for the capture), and the epoch's
//! short last batch run eagerly beside the graph. On a GPU with cuBLAS and cuDNN (on by default)
//! the captured update holds their calls (the conv and the linear layer), and the bits must still
//! match. Where a graph cannot serve, the run says why and trains eagerly (the CPU, gradient
//! accumulation, a cautious optimizer, dropout's host draw, scheduled sizes).

use kiln_engine::{DType, Device, MemoryFormat, Tensor};
use kiln_nn::layers::{BatchNorm2d, Conv2d, Linear};
use kiln_nn::{Children, FeatureInfo, Model, Module, PretrainedCfg};
use kiln_train::augment::{small_train, Pipeline};
use kiln_train::clip::ClipMode;
use kiln_train::data::{Dataset, Image, Sample};
use kiln_train::loader::{
    BatchPlan, DataConfig, DistributedSampler, Layout, Loader, LoaderOptions, Normalize,
    SizeScheduleConfig,
};
use kiln_train::loss::CrossEntropy;
use kiln_train::optim::{create_optimizer_for_model, OptimizerConfig};
use kiln_train::sched::{create_scheduler, SchedulerConfig};
use kiln_train::trainer::{
    BatchStages, Callback, Context, CudaGraphMode, CudaGraphStats, NanPolicy, TrainConfig, Trainer,
    TrainerParts,
};
use std::io::Write;
use std::sync::{Arc, Mutex};

const SIDE: usize = 6;
const CLASSES: usize = 3;

/// `len` gray 6×6 images of three classes (a bright row band per class, over a pattern); the
/// samples in `poisoned` are all 255, which the model turns into an infinite logit.
#[derive(Debug)]
struct Bands {
    len: usize,
    poisoned: Vec<usize>,
}

impl Dataset for Bands {
    fn len(&self) -> usize {
        self.len
    }
    fn label(&self, i: usize) -> usize {
        i % CLASSES
    }
    fn filename(&self, i: usize) -> String {
        format!("band{i}")
    }
    fn load(&self, i: usize) -> kiln_train::Result<Sample> {
        let data = (0..SIDE * SIDE)
            .map(|p| match self.poisoned.contains(&i) {
                true => 255,
                false if p / SIDE / 2 == self.label(i) => 200,
                false => ((p * 37 + i * 11) % 90) as u8,
            })
            .collect();
        Ok(Sample {
            image: Image::new(SIDE, SIDE, 1, data),
            label: self.label(i),
            filename: self.filename(i),
        })
    }
    fn num_classes(&self) -> usize {
        CLASSES
    }
}

/// conv 3×3 (1 → 8) + BN + ReLU + global mean + linear; optionally dropout before the head, and
/// a poison: a logit of +inf when any normalized input exceeds 1.9 (only an image of 255s does),
/// computed on the device without a host decision.
#[derive(Children)]
struct Tiny {
    #[child]
    conv: Conv2d,
    #[child]
    bn: BatchNorm2d,
    #[child]
    fc: Linear,
    dropout: f64,
    #[training]
    training: bool,
    info: Vec<FeatureInfo>,
    cfg: PretrainedCfg,
}

impl Tiny {
    fn new(seed: u64, dropout: f64) -> Tiny {
        kiln_engine::manual_seed_thread(seed);
        Tiny {
            conv: Conv2d::new(1, 8, 3, 1, 1, false).unwrap(),
            bn: BatchNorm2d::new(8).unwrap(),
            fc: Linear::new(8, CLASSES, true).unwrap(),
            dropout,
            training: true,
            info: vec![FeatureInfo {
                num_chs: 8,
                reduction: 1,
                module: "bn".into(),
            }],
            cfg: PretrainedCfg {
                name: "tiny".into(),
                hf_hub_id: None,
                input_size: [1, SIDE, SIDE],
                test_input_size: None,
                pool_size: [SIDE, SIDE],
                crop_pct: 1.0,
                test_crop_pct: None,
                crop_mode: "center".into(),
                interpolation: "bilinear".into(),
                mean: [0.0; 3],
                std: [1.0; 3],
                first_conv: "conv".into(),
                classifier: "fc".into(),
                num_classes: CLASSES,
            },
        }
    }
}

impl Module for Tiny {
    fn forward(&self, x: &Tensor) -> kiln_nn::Result<Tensor> {
        let logits = self.forward_head(&self.forward_features(x)?, false)?;
        let _guard = kiln_engine::no_grad();
        let poison = x
            .add_scalar(-1.9)?
            .relu()?
            .sum_all()?
            .mul_scalar(f32::MAX as f64)?
            .mul_scalar(4.0)?;
        drop(_guard);
        Ok(logits.add(&poison)?)
    }
    /// Not prunable: kiln's pruning has no rule for this layer.
    fn tensors_resizable(&self) -> bool {
        false
    }
}

impl Model for Tiny {
    fn forward_features(&self, x: &Tensor) -> kiln_nn::Result<Tensor> {
        self.bn.forward_act(&self.conv.forward(x)?, None, true)
    }
    fn forward_head(&self, x: &Tensor, pre_logits: bool) -> kiln_nn::Result<Tensor> {
        let pooled = x
            .mean_dims(&[2, 3], false)?
            .dropout(self.dropout, self.training)?;
        match pre_logits {
            true => Ok(pooled),
            false => self.fc.forward(&pooled),
        }
    }
    fn forward_intermediates(&self, x: &Tensor) -> kiln_nn::Result<Vec<Tensor>> {
        Ok(vec![self.forward_features(x)?])
    }
    fn feature_info(&self) -> &[FeatureInfo] {
        &self.info
    }
    fn get_classifier(&self) -> Option<&Linear> {
        Some(&self.fc)
    }
    fn reset_classifier(&mut self, _: usize, _: Option<&str>) -> kiln_nn::Result<()> {
        Ok(())
    }
    fn num_classes(&self) -> usize {
        CLASSES
    }
    fn num_features(&self) -> usize {
        8
    }
    fn pretrained_cfg(&self) -> &PretrainedCfg {
        &self.cfg
    }
}

/// One batch's loss (as bits), the loss scale after it and its lr.
type Seen = (u64, Option<u64>, u64);

/// Every batch, as it ended.
struct Record(Arc<Mutex<Vec<Seen>>>);

impl Callback for Record {
    fn name(&self) -> &str {
        "record"
    }
    fn batch_end(&mut self, ctx: &mut Context) -> kiln_train::Result<()> {
        let scale = ctx.scaler.map(|s| s.scale.to_bits());
        let (loss, lr) = (ctx.state.batch.loss, ctx.state.lr);
        self.0
            .lock()
            .unwrap()
            .push((loss.to_bits(), scale, lr.to_bits()));
        Ok(())
    }
}

/// One run's setup.
#[derive(Clone)]
struct Run {
    device: Device,
    opt: &'static str,
    mode: CudaGraphMode,
    samples: usize,
    epochs: usize,
    amp: Option<DType>,
    clip: Option<(ClipMode, f64)>,
    channels_last: bool,
    accum: usize,
    dropout: f64,
    poisoned: Vec<usize>,
    /// Scheduled sizes (`--train-img-sizes`): batches of 4 at each side, drawn per batch.
    sizes: Option<Vec<usize>>,
}

impl Run {
    fn cuda(opt: &'static str, mode: CudaGraphMode) -> Run {
        Run {
            device: Device::Cuda(0),
            opt,
            mode,
            // Batches of 4: six full ones and a short one of 2 per epoch.
            samples: 26,
            epochs: 2,
            amp: None,
            clip: None,
            channels_last: false,
            accum: 1,
            dropout: 0.0,
            poisoned: Vec::new(),
            sizes: None,
        }
    }
}

/// What a run ends with.
#[derive(Debug, PartialEq)]
struct Outcome {
    /// Parameters and buffers by name, as bits.
    model: Vec<(String, Vec<u64>)>,
    /// The optimizer's state by name, as bits.
    optimizer: Vec<(String, Vec<u64>)>,
    batches: Vec<Seen>,
    updates: usize,
}

fn bits(t: &Tensor) -> Vec<u64> {
    t.to_dtype(DType::F64)
        .unwrap()
        .to_vec::<f64>()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

fn train(r: &Run) -> (Outcome, CudaGraphStats) {
    let mut model = Tiny::new(7, r.dropout);
    let layout = match r.channels_last {
        true => {
            model.set_memory_format(MemoryFormat::ChannelsLast).unwrap();
            Layout::Nhwc
        }
        false => Layout::Nchw,
    };
    model.to_device(r.device).unwrap();
    let ds = Arc::new(Bands {
        len: r.samples,
        poisoned: r.poisoned.clone(),
    });
    let opts = LoaderOptions {
        batch_size: 4,
        workers: 0,
        // The short last batch stays: it runs eagerly beside the graph.
        drop_last: false,
        prefetch: 0,
        seed: 1,
        rank: 0,
        shape: (SIDE, SIDE, 1),
    };
    let sampler = Box::new(DistributedSampler::single(r.samples, false, 0));
    let loader = match &r.sizes {
        None => Loader::new(ds, Pipeline::new(vec![], vec![]), sampler, opts).unwrap(),
        Some(sizes) => {
            let cfg = DataConfig::default()
                .batch_size(4)
                .sizes(SizeScheduleConfig::default().train_img_sizes(sizes.clone()));
            let schedule = cfg.size_schedule().unwrap().unwrap();
            let plan = BatchPlan::new(schedule, r.samples, 1).unwrap();
            let crops = sizes.iter().map(|&s| small_train(s, 0, 0.0)).collect();
            Loader::scheduled(ds, crops, sampler, plan, opts).unwrap()
        }
    };
    let lr = 0.05;
    let opt = OptimizerConfig::new(r.opt).lr(lr).weight_decay(1e-3);
    let optimizer = create_optimizer_for_model(&opt, &model).unwrap();
    // A warmup then cosine decay, stepped every update: every update has its own lr.
    let sched = SchedulerConfig::new("cosine", r.epochs)
        .warmup_epochs(1)
        .warmup_lr(0.01)
        .sched_on_updates(true);
    let updates = loader.len().div_ceil(r.accum);
    let (scheduler, _) = create_scheduler(&sched, lr, updates).unwrap();
    let mut trainer = Trainer::new(TrainerParts {
        distill: None,
        model: Box::new(model),
        arch: "tiny".into(),
        optimizer,
        clip: r.clip,
        scheduler,
        loss: Box::new(CrossEntropy::default()),
        train_loader: loader,
        stages: BatchStages {
            normalize: Normalize::new(&[0.4], &[0.3], layout),
            erasing: None,
            mixup: None,
            seed: 1,
            device: r.device,
            dtype: DType::F32,
        },
        evaluator: None,
        config: TrainConfig {
            epochs: r.epochs,
            amp: r.amp,
            grad_accum_steps: r.accum,
            nan_policy: NanPolicy::Skip,
            cuda_graph: r.mode,
            ..TrainConfig::default()
        },
    })
    .unwrap();
    let batches = Arc::new(Mutex::new(Vec::new()));
    trainer.add_callback(Box::new(Record(batches.clone())));
    assert_eq!(trainer.fit().unwrap(), None);
    let model: Vec<_> = trainer
        .model()
        .named_tensors()
        .iter()
        .map(|t| (t.name.clone(), bits(&t.tensor)))
        .collect();
    let optimizer = trainer
        .optimizer()
        .state_dict()
        .into_iter()
        .map(|(k, t)| (k, bits(&t)))
        .collect();
    let batches = batches.lock().unwrap().clone();
    let outcome = Outcome {
        model,
        optimizer,
        batches,
        updates: trainer.state().position.num_updates,
    };
    (outcome, trainer.cuda_graph_stats().clone())
}

fn cuda_present() -> bool {
    match kiln_engine::cuda::device(0) {
        Ok(_) => true,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "skipped: {e}");
            false
        }
    }
}

/// Whether cuBLAS or cuDNN serve on cuda:0 (loaded and switched on): never on the emulator.
fn vendor_libraries_serve() -> bool {
    use kiln_engine::cuda;
    let dev = cuda::device(0).unwrap();
    (cuda::cublas_enabled() && cuda::cublas_loaded(&dev).is_ok())
        || (cuda::cudnn_enabled() && cuda::cudnn_loaded(&dev).is_ok())
}

/// Trains `r` with replayed and with eager updates; both must end with the same bits. Returns
/// the replayed run's batches.
fn replay_matches_eager(r: Run) -> Vec<Seen> {
    let (eager, eager_stats) = train(&Run {
        mode: CudaGraphMode::Off,
        ..r.clone()
    });
    assert_eq!(eager_stats.replays, 0);
    let (graphed, stats) = train(&r);
    assert_eq!(stats.fallback, None, "{stats:?}");
    // cuBLAS and cuDNN serve where they load (a GPU): their calls are then in the graph.
    let vendor = vendor_libraries_serve();
    assert_eq!(stats.vendor_calls > 0, vendor, "{stats:?}");
    eprintln!(
        "captured update: {} cuBLAS/cuDNN calls (libraries serve: {vendor})",
        stats.vendor_calls
    );
    // Three eager updates warm the shape up, a fourth makes what the graph keeps, the fifth is
    // captured; the short batches run eagerly.
    assert_eq!(
        stats,
        CudaGraphStats {
            captures: 1,
            replays: 6 * r.epochs - kiln_train::trainer::CUDA_GRAPH_WARMUP - 1,
            eager_beside: r.epochs,
            vendor_calls: stats.vendor_calls,
            fallback: None,
        }
    );
    assert_eq!(graphed.updates, 7 * r.epochs);
    for (i, (g, e)) in graphed.batches.iter().zip(&eager.batches).enumerate() {
        assert_eq!(g, e, "batch {i}: loss and loss scale");
    }
    for ((name, g), (_, e)) in graphed.model.iter().zip(&eager.model) {
        assert_eq!(g, e, "{name}");
    }
    assert_eq!(graphed, eager);
    let mut lrs: Vec<u64> = graphed.batches.iter().map(|b| b.2).collect();
    lrs.dedup();
    assert_eq!(lrs.len(), graphed.batches.len(), "a new lr every update");
    graphed.batches
}

/// The losses of `batches` that were not finite, by index.
fn nonfinite(batches: &[Seen]) -> Vec<usize> {
    (0..batches.len())
        .filter(|&i| !f64::from_bits(batches[i].0).is_finite())
        .collect()
}

#[test]
fn sgd_with_clipping_and_a_skipped_update_replays_to_the_eager_bits() {
    if !cuda_present() {
        return;
    }
    // Batch 5 of each epoch is poisoned (an infinite logit): without a loss scaler its update is
    // skipped (--nan-policy skip) on the device, as eagerly.
    let batches = replay_matches_eager(Run {
        clip: Some((ClipMode::Norm, 0.05)),
        poisoned: vec![21],
        ..Run::cuda("sgd", CudaGraphMode::Auto)
    });
    // Batch 5 of each epoch (the first one replayed, and the fifth) had an infinite loss.
    assert_eq!(nonfinite(&batches), [5, 12]);
}

#[test]
fn adamw_with_f16_amp_channels_last_and_an_overflow_replays_to_the_eager_bits() {
    if !cuda_present() {
        return;
    }
    // Poisoned batches overflow: the loss scaler skips their updates (on the device once the
    // update is captured) and backs off, as eagerly. The three warm-up batches overflow too, so
    // the optimizer had made no state when the graph's tensors are made.
    let batches = replay_matches_eager(Run {
        amp: Some(DType::F16),
        channels_last: true,
        poisoned: vec![1, 5, 9, 21],
        ..Run::cuda("adamw", CudaGraphMode::Auto)
    });
    assert_eq!(nonfinite(&batches), [0, 1, 2, 5, 7, 8, 9, 12]);
    let scale = |i: usize| f64::from_bits(batches[i].1.unwrap());
    let scales = [2, 4, 5, 12].map(scale);
    assert_eq!(scales, [8192.0, 8192.0, 4096.0, 256.0]);
}

#[test]
fn where_a_graph_cannot_serve_the_run_says_why_and_trains_eagerly() {
    // Five batches: the fifth would be captured.
    let short = |r: Run| Run {
        samples: 20,
        epochs: 1,
        ..r
    };
    let cpu = |mode| {
        train(&short(Run {
            device: Device::Cpu,
            ..Run::cuda("sgd", mode)
        }))
        .1
    };
    let on_cpu = cpu(CudaGraphMode::On).fallback.unwrap();
    assert!(on_cpu.contains("the device is the CPU"), "{on_cpu}");
    assert_eq!(cpu(CudaGraphMode::Off).fallback, None);
    // Scheduled sizes change the batch shape from batch to batch: no graph is ever made.
    let scheduled = |device| Run {
        device,
        sizes: Some(vec![SIDE, SIDE - 2]),
        ..Run::cuda("sgd", CudaGraphMode::On)
    };
    let sched_cpu = train(&short(scheduled(Device::Cpu))).1.fallback.unwrap();
    assert!(
        sched_cpu.contains("scheduled training sizes"),
        "{sched_cpu}"
    );
    if !cuda_present() {
        return;
    }
    let why = |r: Run| {
        let accum = r.accum;
        let (outcome, stats) = train(&short(r));
        assert_eq!(
            outcome.updates,
            5usize.div_ceil(accum),
            "every batch trained"
        );
        assert_eq!((stats.captures, stats.replays), (0, 0), "{stats:?}");
        stats.fallback.unwrap()
    };
    let accum = why(Run {
        accum: 2,
        ..Run::cuda("sgd", CudaGraphMode::Auto)
    });
    assert!(accum.contains("--grad-accum-steps 2"), "{accum}");
    let sched = why(scheduled(Device::Cuda(0)));
    assert!(sched.contains("--train-img-sizes"), "{sched}");
    let cautious = why(Run::cuda("cadamw", CudaGraphMode::Auto));
    assert!(cautious.contains("cautious"), "{cautious}");
    // Dropout draws its mask on the host: the capture refuses it, and the run goes on eagerly.
    let dropout = why(Run {
        dropout: 0.25,
        ..Run::cuda("sgd", CudaGraphMode::Auto)
    });
    assert!(
        dropout.contains("could not be captured") && dropout.contains("dropout"),
        "{dropout}"
    );
}

#[test]
fn a_capture_failing_part_way_is_discarded_and_its_update_runs_eagerly_once() {
    if !cuda_present() {
        return;
    }
    // Dropout's host draw comes after the conv and BN (on a GPU, cuDNN calls) were captured: the
    // capture fails part-way and is discarded; that update and the later ones run eagerly, and
    // the run ends with the eager run's bits (no update lost, none applied twice).
    let r = Run {
        dropout: 0.25,
        samples: 26,
        epochs: 1,
        ..Run::cuda("sgd", CudaGraphMode::Auto)
    };
    let (eager, _) = train(&Run {
        mode: CudaGraphMode::Off,
        ..r.clone()
    });
    let (fell_back, stats) = train(&r);
    assert_eq!((stats.captures, stats.replays), (0, 0), "{stats:?}");
    let why = stats.fallback.unwrap();
    assert!(why.contains("could not be captured"), "{why}");
    assert_eq!(fell_back.updates, 7);
    assert_eq!(fell_back, eager);
}
