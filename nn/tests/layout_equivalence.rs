//! The layout is kiln's business: a model built NCHW and the same model laid out as kiln runs it
//! (channels-last, `MemoryFormat::preferred_on` the CPU; on CUDA, what `--channels-last` asks
//! for) give the same logits and gradients. "The same" is float32's own error: each float32 run
//! is compared with the float64 model (NCHW), and no tensor of the channels-last run may differ
//! from it by more than twice the largest error of the NCHW run.
//! On the CPU, and on CUDA where a device is present (the emulator in CI).

use kiln_engine::{manual_seed_thread, DType, Device, Generator, MemoryFormat, Tensor};
use kiln_nn::{create_model, load_state_dict, state_dict, Model, ModelArgs};
use std::collections::BTreeMap;
use std::io::Write;

/// Logits and parameter gradients of one training step, in float64.
struct Run {
    logits: Vec<f64>,
    grads: BTreeMap<String, Vec<f64>>,
}

/// Input draw `seed` of `[4, c, size, size]`.
fn input(
    format: MemoryFormat,
    dtype: DType,
    device: Device,
    [c, size, seed]: [usize; 3],
) -> Tensor {
    Generator::new(seed as u64)
        .normal(&[4, c, size, size], 0.0, 1.0, DType::F32)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
        .to_memory_format(format)
        .unwrap()
        .to_device(device)
        .unwrap()
}

fn run(
    model: &dyn Model,
    format: MemoryFormat,
    dtype: DType,
    device: Device,
    dims: [usize; 3],
) -> Run {
    let x = input(format, dtype, device, dims);
    let y = Tensor::from_vec(vec![1i64, 7, 3, 0], &[4])
        .unwrap()
        .to_device(device)
        .unwrap();
    for p in model.named_parameters() {
        p.tensor.set_grad(None);
    }
    let logits = model.forward(&x).unwrap();
    logits.cross_entropy(&y, 0.0).unwrap().backward().unwrap();
    let grads = model
        .named_parameters()
        .into_iter()
        .map(|p| (p.name.clone(), f64s(&p.tensor.grad().unwrap())))
        .collect();
    Run {
        logits: f64s(&logits),
        grads,
    }
}

fn f64s(t: &Tensor) -> Vec<f64> {
    t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap()
}

/// The largest |a - b| over `scale`.
fn rel_err(a: &[f64], b: &[f64], scale: f64) -> f64 {
    a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// The largest |v| of `v`.
fn peak(v: &[f64]) -> f64 {
    v.iter().fold(0f64, |m, x| m.max(x.abs()))
}

/// A model of `name` (`weights`' architecture, `in_chans` input channels) in `format` and
/// `dtype` on `device`, all built from the same weights.
fn model(
    (name, in_chans): (&str, usize),
    weights: &dyn Model,
    format: MemoryFormat,
    dtype: DType,
    device: Device,
) -> Box<dyn Model> {
    let args = ModelArgs {
        num_classes: 10,
        in_chans,
        ..Default::default()
    };
    let mut m = create_model(name, &args).unwrap();
    load_state_dict(m.as_ref(), &state_dict(weights), true).unwrap();
    m.to_dtype(dtype).unwrap();
    m.set_memory_format(format).unwrap();
    m.to_device(device).unwrap();
    m.set_training(true);
    m
}

/// `[in_chans, size, draws]`: the input's channels and side, and how many inputs are drawn
/// (CUDA runs on the emulator in CI: a small side and one draw keep it quick). For each draw,
/// each tensor's error against float64, NCHW's and kiln's layout's. Summation orders differ
/// between the layouts, so a tensor's two errors are two draws of float32 rounding: kiln's layout
/// is held to twice NCHW's largest over the model and the draws (its own float32 error level;
/// more draws estimate it better). A gradient that vanishes analytically (a bias before a
/// training BN) is rounding noise in both runs: it is held to a thousandth of the model's largest
/// gradient.
fn check(name: &str, device: Device, kiln_layout: MemoryFormat, [c, size, draws]: [usize; 3]) {
    manual_seed_thread(0);
    let args = ModelArgs {
        num_classes: 10,
        in_chans: c,
        ..Default::default()
    };
    let weights = create_model(name, &args).unwrap();
    let build = |format, dtype, device| model((name, c), weights.as_ref(), format, dtype, device);
    // The float64 reference runs on the CPU (CUDA's float64 paths are not what is under test).
    let exact = build(MemoryFormat::Contiguous, DType::F64, Device::Cpu);
    let nchw = build(MemoryFormat::Contiguous, DType::F32, device);
    // As the Trainer lays them out: the model and its batches in kiln's layout.
    let laid = build(kiln_layout, DType::F32, device);
    let what = format!("{name} on {device:?}, {kiln_layout:?} against NCHW");
    let mut errs = Vec::new();
    for seed in 3..3 + draws {
        let dims = [c, size, seed];
        let exact = run(
            exact.as_ref(),
            MemoryFormat::Contiguous,
            DType::F64,
            Device::Cpu,
            dims,
        );
        let nchw = run(
            nchw.as_ref(),
            MemoryFormat::Contiguous,
            DType::F32,
            device,
            dims,
        );
        let laid = run(laid.as_ref(), kiln_layout, DType::F32, device, dims);
        assert_eq!(
            laid.grads.len(),
            exact.grads.len(),
            "{what}: every parameter has a gradient"
        );
        let floor = 1e-3 * exact.grads.values().fold(0f64, |m, g| m.max(peak(g)));
        let scale = exact.logits.iter().fold(0f64, |m, x| m.max(x.abs()));
        errs.push((
            format!("logits (input {seed})"),
            rel_err(&nchw.logits, &exact.logits, scale),
            rel_err(&laid.logits, &exact.logits, scale),
        ));
        for (p, want) in &exact.grads {
            let scale = peak(want).max(floor);
            errs.push((
                format!("{p} grad (input {seed})"),
                rel_err(&nchw.grads[p], want, scale),
                rel_err(&laid.grads[p], want, scale),
            ));
        }
    }
    let level = errs.iter().fold(0f64, |m, e| m.max(e.1));
    let worst = errs.iter().fold(0f64, |m, e| m.max(e.2));
    println!("{what}: largest error {worst:e}, NCHW's {level:e}");
    for (t, e_nchw, e_laid) in &errs {
        assert!(
            *e_laid <= 2.0 * level,
            "{what}: {t} {e_laid:e} (NCHW {e_nchw:e}, level {level:e})"
        );
    }
}

#[test]
fn an_nchw_resnet_and_the_cpus_layout_agree() {
    let layout = MemoryFormat::preferred_on(Device::Cpu);
    assert_eq!(
        layout,
        Some(MemoryFormat::ChannelsLast),
        "the CPU runs channels-last"
    );
    check(
        "resnet18",
        Device::Cpu,
        MemoryFormat::ChannelsLast,
        [3, 64, 3],
    );
}

#[test]
fn an_nchw_mobilenet_and_the_cpus_layout_agree() {
    check(
        "mobilenetv3_small_050",
        Device::Cpu,
        MemoryFormat::ChannelsLast,
        [3, 64, 3],
    );
}

/// One input channel is ambiguous (NCHW and NHWC lie alike in memory): the stem follows its
/// channels-last weights, as PyTorch's convolution does, so the whole network runs channels-last
/// (before, it ran NCHW from the stem on, three times slower on the CPU), and agrees with NCHW.
#[test]
fn a_one_channel_mobilenet_runs_channels_last_and_agrees() {
    let layout = MemoryFormat::ChannelsLast;
    check("mobilenetv3_small_050", Device::Cpu, layout, [1, 64, 3]);
    let args = ModelArgs {
        num_classes: 10,
        in_chans: 1,
        ..Default::default()
    };
    let mut m = create_model("mobilenetv3_small_050", &args).unwrap();
    m.set_memory_format(layout).unwrap();
    let x = input(
        MemoryFormat::Contiguous,
        DType::F32,
        Device::Cpu,
        [1, 32, 3],
    );
    let features = m.forward_features(&x).unwrap();
    assert!(
        features.layout().prefers_channels_last(),
        "features run NHWC"
    );
}

#[test]
fn an_nchw_resnet_and_channels_last_agree_on_cuda() {
    if let Err(e) = kiln_engine::cuda::device(0) {
        let _ = writeln!(std::io::stderr(), "skipped: {e}");
        return;
    }
    check(
        "resnet18",
        Device::Cuda(0),
        MemoryFormat::ChannelsLast,
        [3, 32, 1],
    );
}
