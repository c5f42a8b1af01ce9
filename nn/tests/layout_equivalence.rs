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

fn run(model: &dyn Model, format: MemoryFormat, dtype: DType, device: Device, size: usize) -> Run {
    let x = Generator::new(3)
        .normal(&[4, 3, size, size], 0.0, 1.0, DType::F32)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
        .to_memory_format(format)
        .unwrap()
        .to_device(device)
        .unwrap();
    let y = Tensor::from_vec(vec![1i64, 7, 3, 0], &[4])
        .unwrap()
        .to_device(device)
        .unwrap();
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

/// A model of `name` in `format` and `dtype` on `device`, all built from the same weights.
fn model(
    name: &str,
    weights: &dyn Model,
    format: MemoryFormat,
    dtype: DType,
    device: Device,
) -> Box<dyn Model> {
    let args = ModelArgs {
        num_classes: 10,
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

/// `size`: the input's side (CUDA runs on the emulator in CI: a small one keeps it quick).
fn check(name: &str, device: Device, kiln_layout: MemoryFormat, size: usize) {
    manual_seed_thread(0);
    let args = ModelArgs {
        num_classes: 10,
        ..Default::default()
    };
    let weights = create_model(name, &args).unwrap();
    let build = |format, dtype| model(name, weights.as_ref(), format, dtype, device);
    // The float64 reference runs on the CPU (CUDA's float64 paths are not what is under test).
    let exact = run(
        model(
            name,
            weights.as_ref(),
            MemoryFormat::Contiguous,
            DType::F64,
            Device::Cpu,
        )
        .as_ref(),
        MemoryFormat::Contiguous,
        DType::F64,
        Device::Cpu,
        size,
    );
    let nchw = run(
        build(MemoryFormat::Contiguous, DType::F32).as_ref(),
        MemoryFormat::Contiguous,
        DType::F32,
        device,
        size,
    );
    // As the Trainer lays them out: the model and its batches in kiln's layout.
    let laid = run(
        build(kiln_layout, DType::F32).as_ref(),
        kiln_layout,
        DType::F32,
        device,
        size,
    );
    let what = format!("{name} on {device:?}, {kiln_layout:?} against NCHW");
    assert_eq!(
        laid.grads.len(),
        exact.grads.len(),
        "{what}: every parameter has a gradient"
    );
    // Each tensor's error against float64, NCHW's and kiln's layout's. Summation orders differ
    // between the layouts, so a tensor's two errors are two draws of float32 rounding: kiln's
    // layout is held to twice NCHW's largest over the model (its own float32 error level).
    // A gradient that vanishes analytically (a bias before a training BN) is rounding noise in
    // both runs: it is held to a thousandth of the model's largest gradient.
    let floor = 1e-3 * exact.grads.values().fold(0f64, |m, g| m.max(peak(g)));
    let scale = exact.logits.iter().fold(0f64, |m, x| m.max(x.abs()));
    let mut errs = vec![(
        "logits".to_string(),
        rel_err(&nchw.logits, &exact.logits, scale),
        rel_err(&laid.logits, &exact.logits, scale),
    )];
    for (p, want) in &exact.grads {
        let scale = peak(want).max(floor);
        errs.push((
            format!("{p} grad"),
            rel_err(&nchw.grads[p], want, scale),
            rel_err(&laid.grads[p], want, scale),
        ));
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
    check("resnet18", Device::Cpu, MemoryFormat::ChannelsLast, 64);
}

#[test]
fn an_nchw_mobilenet_and_the_cpus_layout_agree() {
    check(
        "mobilenetv3_small_050",
        Device::Cpu,
        MemoryFormat::ChannelsLast,
        64,
    );
}

#[test]
fn an_nchw_resnet_and_channels_last_agree_on_cuda() {
    if let Err(e) = kiln_engine::cuda::device(0) {
        let _ = writeln!(std::io::stderr(), "skipped: {e}");
        return;
    }
    check("resnet18", Device::Cuda(0), MemoryFormat::ChannelsLast, 32);
}
