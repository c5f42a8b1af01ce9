//! Training-step throughput of a timm model on random data, the kiln side of the comparison with
//! PyTorch in `scripts/gpu-check.sh` (`scripts/bench/torch_train_step.py` is the other side).
//! One step is what `kiln train` does per batch: forward under autocast, cross-entropy, backward
//! through the loss scaler, SGD (Nesterov, momentum 0.9, weight decay 1e-4). cuDNN's benchmark
//! mode is on, as timm's train.py turns it on. `--rounds N` times N rounds of `--steps` steps one
//! after the other and reports their median; `--profile` brackets them with `cuProfilerStart`/
//! `cuProfilerStop` for `ncu --profile-from-start off`. `--grad-checkpointing` recomputes every block in
//! backward (timm's `set_grad_checkpointing`). It prints the peak memory (the CUDA allocator's
//! peak, or the process's resident high-water mark `VmHWM` on the CPU, with the resident size
//! before the first step); the last line is `img/s: <number>`.
//!
//! ```sh
//! cargo run --release --example train_step -- [--model resnet50] [--batch 64] [--img-size 224]
//!     [--steps 30] [--rounds 1] [--warmup 10] [--device cuda] [--amp-dtype float16|bfloat16|none]
//!     [--no-channels-last] [--grad-checkpointing] [--profile]
//! ```

use kiln_engine::{manual_seed, DType, Device, Generator, MemoryFormat, Tensor};
use kiln_nn::{create_model, Model, ModelArgs};
use kiln_train::amp::GradScaler;
use kiln_train::optim::{create_optimizer, Optimizer, OptimizerConfig};
use std::error::Error;
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
    grad_checkpointing: bool,
    profile: bool,
}

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
        grad_checkpointing: false,
        profile: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if ["--no-channels-last", "--grad-checkpointing", "--profile"].contains(&flag.as_str()) {
            o.channels_last &= flag != "--no-channels-last";
            o.grad_checkpointing |= flag == "--grad-checkpointing";
            o.profile |= flag == "--profile";
            continue;
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--model" => o.model = value,
            "--batch" => o.batch = value.parse()?,
            "--img-size" => o.img_size = value.parse()?,
            "--steps" => o.steps = value.parse()?,
            "--rounds" => o.rounds = value.parse::<usize>()?.max(1),
            "--warmup" => o.warmup = value.parse()?,
            "--device" => {
                o.device = Device::parse(&value)
                    .ok_or(format!("--device {value}: not cpu, cuda or cuda:N"))?
            }
            "--amp-dtype" => {
                o.amp = match value.as_str() {
                    "float16" => Some(DType::F16),
                    "bfloat16" => Some(DType::BF16),
                    "none" => None,
                    _ => {
                        return Err(
                            format!("--amp-dtype {value}: not float16, bfloat16 or none").into(),
                        )
                    }
                }
            }
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    Ok(o)
}

/// One training step: forward under autocast, backward through the loss scaler, optimizer step.
fn step(
    model: &dyn Model,
    optim: &mut dyn Optimizer,
    scaler: Option<&mut GradScaler>,
    (x, y): (&Tensor, &Tensor),
    amp: Option<DType>,
) -> Result<(), Box<dyn Error>> {
    let loss = {
        let _autocast = amp.map(kiln_engine::amp::autocast).transpose()?;
        model.forward(x)?.cross_entropy(y, 0.0)?
    };
    optim.zero_grad();
    match scaler {
        Some(s) => {
            s.scale_loss(&loss)?.backward()?;
            let overflow = s.unscale(optim)?;
            if !overflow {
                optim.step(0.1)?;
            }
            s.update(overflow);
        }
        None => {
            loss.backward()?;
            optim.step(0.1)?;
        }
    }
    Ok(())
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

fn main() -> Result<(), Box<dyn Error>> {
    let o = options()?;
    if let Device::Cuda(n) = o.device {
        kiln_engine::cuda::device(n)?;
        kiln_engine::cuda::set_cudnn_benchmark(true);
    }
    kiln_engine::cpu::threads::compute_on_calling_thread();
    kiln_engine::cpu::heap::keep_freed_blocks();
    manual_seed(0);
    // ViT's position embedding is sized for the input; the other models ignore `img_size`.
    let margs = ModelArgs {
        img_size: Some(o.img_size),
        ..ModelArgs::default()
    };
    let mut model = create_model(&o.model, &margs)?;
    model.set_grad_checkpointing(o.grad_checkpointing)?;
    let format = if o.channels_last {
        MemoryFormat::ChannelsLast
    } else {
        MemoryFormat::Contiguous
    };
    model.set_memory_format(format)?;
    model.to_device(o.device)?;
    model.set_training(true);
    let mut optim = create_optimizer(
        &OptimizerConfig {
            opt: "sgd".into(),
            momentum: 0.9,
            weight_decay: 1e-4,
            ..OptimizerConfig::default()
        },
        model.named_parameters(),
    )?;
    let mut scaler = (o.amp == Some(DType::F16)).then(GradScaler::default);
    let (n, s) = (o.batch, o.img_size);
    let x = Generator::new(1)
        .normal(&[n, 3, s, s], 0.0, 1.0, DType::F32)?
        .to_memory_format(format)?
        .to_device(o.device)?;
    let labels: Vec<i64> = (0..n as i64).map(|i| i * 7 % 1000).collect();
    let y = Tensor::from_vec(labels, &[n])?.to_device(o.device)?;
    let resident_before = proc_status_mib("VmRSS");
    let mut steps = |count: usize| -> Result<(), Box<dyn Error>> {
        for _ in 0..count {
            let s = scaler.as_mut();
            step(model.as_ref(), optim.as_mut(), s, (&x, &y), o.amp)?;
        }
        sync(o.device)
    };
    steps(o.warmup)?;
    let profiled = match o.device {
        Device::Cuda(n) if o.profile => Some(kiln_engine::cuda::device(n)?),
        _ => None,
    };
    if let Some(dev) = &profiled {
        dev.set_profiling(true)?;
    }
    let mut rates = Vec::with_capacity(o.rounds);
    for _ in 0..o.rounds {
        let start = Instant::now();
        steps(o.steps)?;
        rates.push((o.steps * n) as f64 / start.elapsed().as_secs_f64());
    }
    if let Some(dev) = &profiled {
        dev.set_profiling(false)?;
    }
    let amp = match o.amp {
        Some(DType::F16) => "float16",
        Some(_) => "bfloat16",
        None => "none",
    };
    let on = match o.device {
        Device::Cuda(n) => format!("cuda:{n} ({})", kiln_engine::cuda::device(n)?.name()),
        d => d.to_string(),
    };
    println!(
        "kiln {} batch {n} {s}x{s} on {on} amp {amp} channels_last {}: {} round(s) of {} steps, img/s {}",
        o.model,
        o.channels_last,
        o.rounds,
        o.steps,
        rates
            .iter()
            .map(|r| format!("{r:.1}"))
            .collect::<Vec<_>>()
            .join(" ")
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
