//! Training-step throughput of a timm model on random data, the kiln side of the GPU table
//! (`scripts/bench/pairs.py` pairs it with `scripts/bench/torch_train_step.py`). One step is
//! `Trainer::train_step`, what `kiln train` runs per batch: forward under autocast, cross-entropy,
//! backward through the loss scaler, SGD (Nesterov, momentum 0.9, weight decay 1e-4), the loss
//! read back; with `--cuda-graph` the whole update is captured once and replayed (`kiln train
//! --cuda-graph on`). cuDNN's benchmark mode is on, as timm's train.py turns it on.
//!
//! Two ways to time it:
//! - `--rounds N` times N rounds of `--steps` steps and prints every round and their median as
//!   the last line, `img/s: <number>`;
//! - `--serve` builds and warms the model, prints `ready setup_s=<s>`, then answers each line
//!   `round <seconds>` on stdin with one round of whole steps lasting at least that long:
//!   `round steps=<n> img_s=<x> wall_s=<s> gpu_s=<s>` (GPU time from CUDA events; 0 on the
//!   CPU), and `quit` with `final skipped=<n> loss_scale=<x> peak_mib=<x> replays=<n>` (the
//!   loss scaler's skipped updates, the CUDA graph's replays). A driver interleaves such servers.
//!
//! `--profile` brackets the timed steps with `cuProfilerStart`/`cuProfilerStop` for
//! `ncu --profile-from-start off`; `--grad-checkpointing` recomputes every block in backward
//! (timm's `set_grad_checkpointing`). The peak memory is the CUDA allocator's peak, or the
//! process's resident high-water mark `VmHWM` on the CPU.
//!
//! ```sh
//! cargo run --release --example train_step -- [--model resnet50] [--batch 64] [--img-size 224]
//!     [--steps 30] [--rounds 1] [--warmup 10] [--device cuda] [--amp-dtype float16|bfloat16|none]
//!     [--no-channels-last] [--cuda-graph] [--grad-checkpointing] [--profile] [--serve]
//! ```

use kiln_engine::{manual_seed, DType, Device, Generator, MemoryFormat, Tensor};
use kiln_nn::{create_model, ModelArgs};
use kiln_train::data::{Dataset, Image, Sample};
use kiln_train::loader::DataConfig;
use kiln_train::optim::OptimizerConfig;
use kiln_train::trainer::{CudaGraphMode, TrainConfig, Trainer, CUDA_GRAPH_WARMUP};
use std::error::Error;
use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::Instant;

/// The command line.
struct Options {
    model: String,
    batch: usize,
    img_size: usize,
    steps: usize,
    rounds: usize,
    warmup: usize,
    device: Device,
    amp: Option<DType>,
    channels_last: bool,
    cuda_graph: bool,
    grad_checkpointing: bool,
    profile: bool,
    serve: bool,
}

const SWITCHES: [&str; 5] = [
    "--no-channels-last",
    "--cuda-graph",
    "--grad-checkpointing",
    "--profile",
    "--serve",
];

fn options() -> Result<Options, Box<dyn Error>> {
    let mut o = Options {
        model: "resnet50".into(),
        batch: 64,
        img_size: 224,
        steps: 30,
        rounds: 1,
        warmup: 10,
        device: Device::Cuda(0),
        amp: Some(DType::F16),
        channels_last: true,
        cuda_graph: false,
        grad_checkpointing: false,
        profile: false,
        serve: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if SWITCHES.contains(&flag.as_str()) {
            o.channels_last &= flag != "--no-channels-last";
            o.cuda_graph |= flag == "--cuda-graph";
            o.grad_checkpointing |= flag == "--grad-checkpointing";
            o.profile |= flag == "--profile";
            o.serve |= flag == "--serve";
            continue;
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--model" => o.model = value,
            "--batch" => o.batch = value.parse()?,
            "--img-size" => o.img_size = value.parse()?,
            "--steps" => o.steps = value.parse::<usize>()?.max(1),
            "--rounds" => o.rounds = value.parse::<usize>()?.max(1),
            "--warmup" => o.warmup = value.parse()?,
            "--device" => {
                o.device = Device::parse(&value)
                    .ok_or(format!("--device {value}: not cpu, cuda or cuda:N"))?
            }
            "--amp-dtype" => o.amp = amp_dtype(&value)?,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    if o.cuda_graph {
        // The graph captures after its eager warm-up updates and one more that makes its state.
        o.warmup = o.warmup.max(CUDA_GRAPH_WARMUP + 2);
    }
    Ok(o)
}

fn amp_dtype(name: &str) -> Result<Option<DType>, Box<dyn Error>> {
    match name {
        "float16" => Ok(Some(DType::F16)),
        "bfloat16" => Ok(Some(DType::BF16)),
        "none" => Ok(None),
        _ => Err(format!("--amp-dtype {name}: not float16, bfloat16 or none").into()),
    }
}

/// The training set the Trainer is built with: it is never iterated (the steps take the random
/// batch made below), so its images are blank.
#[derive(Debug)]
struct Blank {
    len: usize,
    side: usize,
}

impl Dataset for Blank {
    fn len(&self) -> usize {
        self.len
    }

    fn label(&self, i: usize) -> usize {
        i % 1000
    }

    fn filename(&self, i: usize) -> String {
        format!("blank#{i}")
    }

    fn load(&self, i: usize) -> kiln_train::Result<Sample> {
        Ok(Sample {
            image: Image::new(self.side, self.side, 3, vec![0; self.side * self.side * 3]),
            label: self.label(i),
            filename: self.filename(i),
        })
    }

    fn num_classes(&self) -> usize {
        1000
    }
}

/// The model on its device in training mode, and the Trainer that steps it.
fn trainer(o: &Options) -> Result<Trainer, Box<dyn Error>> {
    // ViT's position embedding is sized for the input; the other models ignore `img_size`.
    let margs = ModelArgs {
        img_size: Some(o.img_size),
        ..ModelArgs::default()
    };
    let mut model = create_model(&o.model, &margs)?;
    model.set_grad_checkpointing(o.grad_checkpointing)?;
    model.set_memory_format(memory_format(o))?;
    model.to_device(o.device)?;
    let mut data = DataConfig::default()
        .img_size(o.img_size)
        .batch_size(o.batch);
    // Plain cross-entropy, as the PyTorch side computes it.
    data.mix.smoothing = 0.0;
    let mut optim = OptimizerConfig::new("sgd").lr(0.1);
    (optim.momentum, optim.weight_decay) = (0.9, 1e-4);
    let config = TrainConfig {
        amp: o.amp,
        cuda_graph: match o.cuda_graph {
            true => CudaGraphMode::On,
            false => CudaGraphMode::Off,
        },
        ..TrainConfig::default()
    };
    let blank = Blank {
        len: o.batch,
        side: o.img_size,
    };
    Ok(Trainer::builder(model, Arc::new(blank))
        .data(data)
        .optimizer(optim)
        .memory_format(memory_format(o))
        .config(config)
        .build()?)
}

fn memory_format(o: &Options) -> MemoryFormat {
    match o.channels_last {
        true => MemoryFormat::ChannelsLast,
        false => MemoryFormat::Contiguous,
    }
}

/// Steps on one random batch, counting the updates the loss scaler skipped.
struct Stepper {
    trainer: Trainer,
    batch: (Tensor, Tensor),
    device: Device,
    skipped: usize,
}

/// One timed round.
struct Round {
    steps: usize,
    wall_s: f64,
    gpu_s: f64,
}

impl Stepper {
    fn new(o: &Options) -> Result<Stepper, Box<dyn Error>> {
        let (n, s) = (o.batch, o.img_size);
        let x = Generator::new(1)
            .normal(&[n, 3, s, s], 0.0, 1.0, DType::F32)?
            .to_memory_format(memory_format(o))?
            .to_device(o.device)?;
        let labels: Vec<i64> = (0..n as i64).map(|i| i * 7 % 1000).collect();
        let y = Tensor::from_vec(labels, &[n])?.to_device(o.device)?;
        Ok(Stepper {
            trainer: trainer(o)?,
            batch: (x, y),
            device: o.device,
            skipped: 0,
        })
    }

    fn step(&mut self) -> Result<(), Box<dyn Error>> {
        let before = self.trainer.loss_scale();
        self.trainer.train_step(&self.batch.0, &self.batch.1)?;
        // GradScaler backs off exactly when it skips an update.
        self.skipped += usize::from(self.trainer.loss_scale() < before);
        Ok(())
    }

    /// Whole steps until `steps` are done and `seconds` have passed, then the device drained.
    fn round(&mut self, steps: usize, seconds: f64) -> Result<Round, Box<dyn Error>> {
        let timer = match self.device {
            Device::Cuda(n) => Some(kiln_engine::cuda::device(n)?.start_timer()?),
            _ => None,
        };
        let start = Instant::now();
        let mut done = 0;
        while done < steps || start.elapsed().as_secs_f64() < seconds {
            self.step()?;
            done += 1;
        }
        sync(self.device)?;
        let wall_s = start.elapsed().as_secs_f64();
        let gpu_s = match timer {
            Some(t) => t.elapsed_ms()? / 1000.0,
            None => 0.0,
        };
        Ok(Round {
            steps: done,
            wall_s,
            gpu_s,
        })
    }
}

/// A `/proc/self/status` field in MiB (`VmRSS`, `VmHWM`); 0 where the file is missing.
fn proc_status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kib.unwrap_or(0.0) / 1024.0
}

/// The peak memory of the run so far in MiB, and what measured it.
fn peak_memory(device: Device) -> Result<(f64, &'static str), Box<dyn Error>> {
    Ok(match device {
        Device::Cuda(n) => {
            let peak = kiln_engine::cuda::device(n)?.memory_stats().peak_allocated;
            (peak as f64 / (1024.0 * 1024.0), "CUDA allocator peak")
        }
        _ => (proc_status_mib("VmHWM"), "VmHWM"),
    })
}

/// Waits for the device's queued work.
fn sync(device: Device) -> Result<(), Box<dyn Error>> {
    if let Device::Cuda(n) = device {
        kiln_engine::cuda::device(n)?.synchronize()?;
    }
    Ok(())
}

/// Answers the driver's `round <seconds>` and `quit` lines on stdin.
fn serve(stepper: &mut Stepper, o: &Options, setup_s: f64) -> Result<(), Box<dyn Error>> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready setup_s={setup_s:.2}")?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("round"), Some(secs)) => {
                let seconds: f64 =
                    (secs.parse()).map_err(|_| format!("round {secs}: not a number of seconds"))?;
                let r = stepper.round(1, seconds)?;
                let img_s = (r.steps * o.batch) as f64 / r.wall_s;
                writeln!(
                    out,
                    "round steps={} img_s={img_s:.1} wall_s={:.4} gpu_s={:.4}",
                    r.steps, r.wall_s, r.gpu_s
                )?;
            }
            (Some("quit"), None) => break,
            _ => return Err(format!("unknown request {line:?} (round <seconds> | quit)").into()),
        }
        out.flush()?;
    }
    let (peak, _) = peak_memory(o.device)?;
    let scale = (stepper.trainer.loss_scale()).map_or("none".into(), |s| format!("{s}"));
    let replays = stepper.trainer.cuda_graph_stats().replays;
    writeln!(
        out,
        "final skipped={} loss_scale={scale} peak_mib={peak:.0} replays={replays}",
        stepper.skipped
    )?;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let o = options()?;
    let setup = Instant::now();
    if let Device::Cuda(n) = o.device {
        kiln_engine::cuda::device(n)?;
        kiln_engine::cuda::set_cudnn_benchmark(true);
    }
    kiln_engine::cpu::threads::compute_on_calling_thread();
    kiln_engine::cpu::heap::keep_freed_blocks();
    manual_seed(0);
    let mut stepper = Stepper::new(&o)?;
    let resident_before = proc_status_mib("VmRSS");
    stepper.round(o.warmup, 0.0)?;
    if o.serve {
        return serve(&mut stepper, &o, setup.elapsed().as_secs_f64());
    }
    let profiled = match o.device {
        Device::Cuda(n) if o.profile => Some(kiln_engine::cuda::device(n)?),
        _ => None,
    };
    if let Some(dev) = &profiled {
        dev.set_profiling(true)?;
    }
    let mut rates = Vec::with_capacity(o.rounds);
    for _ in 0..o.rounds {
        let r = stepper.round(o.steps, 0.0)?;
        rates.push((r.steps * o.batch) as f64 / r.wall_s);
    }
    if let Some(dev) = &profiled {
        dev.set_profiling(false)?;
    }
    report(&o, &mut rates, resident_before)
}

/// Prints the rounds, the peak memory and, last, the median img/s.
fn report(o: &Options, rates: &mut [f64], resident_before: f64) -> Result<(), Box<dyn Error>> {
    let amp = match o.amp {
        Some(DType::F16) => "float16",
        Some(_) => "bfloat16",
        None => "none",
    };
    let on = match o.device {
        Device::Cuda(n) => format!("cuda:{n} ({})", kiln_engine::cuda::device(n)?.name()),
        d => d.to_string(),
    };
    let (n, s) = (o.batch, o.img_size);
    let shown: Vec<String> = rates.iter().map(|r| format!("{r:.1}")).collect();
    println!(
        "kiln {} batch {n} {s}x{s} on {on} amp {amp} channels_last {} cuda_graph {}: {} round(s) of {} steps, img/s {}",
        o.model,
        o.channels_last,
        o.cuda_graph,
        o.rounds,
        o.steps,
        shown.join(" ")
    );
    let (peak, source) = peak_memory(o.device)?;
    println!(
        "grad_checkpointing {}: peak memory {peak:.0} MiB ({source}; resident before the first step {resident_before:.0} MiB)",
        o.grad_checkpointing
    );
    rates.sort_by(f64::total_cmp);
    println!("img/s: {:.1}", rates[rates.len() / 2]);
    Ok(())
}
