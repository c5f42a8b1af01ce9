//! The CUDA conformance suite: every op, forward and backward, on the CUDA backend against the CPU
//! backend, on odd shapes, strided and channels-last inputs, and each float dtype. In CI the CUDA
//! side runs on kiln-cuda-emu; on a machine with a GPU (scripts/gpu-check.sh) on the real device.

use kiln_engine::{DType, Device, MemoryFormat, Result, Tensor};
use std::io::Write;

const CUDA: Device = Device::Cuda(0);

/// Whether a CUDA device (or the emulator) is usable; prints why not.
fn cuda_available() -> bool {
    match kiln_engine::cuda::device(0) {
        Ok(_) => true,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "skipped: {e}");
            false
        }
    }
}

/// Deterministic inputs in [-2, 2) (or [0.1, 2.1) when `positive`).
fn input(shape: &[usize], seed: u64, positive: bool) -> Tensor {
    let lo = if positive { 0.1 } else { -2.0 };
    kiln_engine::Generator::new(seed)
        .uniform(
            shape,
            lo,
            lo + 4.0 - 2.0 * positive as u8 as f64,
            DType::F32,
        )
        .expect("uniform")
}

/// Max |a-b| / (atol + rtol·|b|) over the elements; ≤ 1 passes.
fn worst(a: &Tensor, b: &Tensor, atol: f64, rtol: f64) -> (f64, usize) {
    let (a, b) = (a.to_vec_f32().unwrap(), b.to_vec_f32().unwrap());
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(&b)
        .enumerate()
        .map(|(i, (&x, &y))| {
            let (x, y) = (x as f64, y as f64);
            let err = if x == y || (x.is_nan() && y.is_nan()) {
                0.0
            } else {
                (x - y).abs() / (atol + rtol * y.abs())
            };
            (err, i)
        })
        .fold((0.0, 0), |acc, e| if e.0 > acc.0 { e } else { acc })
}

/// Tolerances per compute dtype.
fn tol(dtype: DType) -> (f64, f64) {
    match dtype {
        DType::F16 => (2e-3, 2e-3),
        DType::BF16 => (2e-2, 2e-2),
        _ => (1e-5, 1e-4),
    }
}

/// Runs `f` on CPU and CUDA copies of `inputs` (all f32 leaves), seeds the backward with the same
/// random gradient, and compares outputs and input gradients.
fn conform(name: &str, inputs: &[Tensor], dtype: DType, f: impl Fn(&[Tensor]) -> Result<Tensor>) {
    let run = |device: Device| -> (Tensor, Vec<Option<Tensor>>) {
        let leaves: Vec<Tensor> = inputs
            .iter()
            .map(|t| {
                let l = t.to_device(device).unwrap().detach();
                if l.dtype().is_float() {
                    l.requires_grad_(true);
                }
                l
            })
            .collect();
        let cast: Vec<Tensor> = leaves
            .iter()
            .map(|t| {
                if t.dtype().is_float() {
                    t.to_dtype(dtype).unwrap()
                } else {
                    t.clone()
                }
            })
            .collect();
        let y = f(&cast).unwrap_or_else(|e| panic!("{name} on {device}: {e}"));
        if y.dtype().is_float() && leaves.iter().any(|l| l.requires_grad()) {
            let seed = input(y.shape(), 99, false).to_dtype(y.dtype()).unwrap();
            y.backward_with(&seed.to_device(device).unwrap())
                .unwrap_or_else(|e| panic!("{name} backward on {device}: {e}"));
        }
        (y, leaves.iter().map(|l| l.grad()).collect())
    };
    let (y_cpu, g_cpu) = run(Device::Cpu);
    let (y_gpu, g_gpu) = run(CUDA);
    assert_eq!(y_gpu.device(), CUDA, "{name}: output left the device");
    assert_eq!(y_cpu.shape(), y_gpu.shape(), "{name}: shapes differ");
    assert_eq!(y_cpu.dtype(), y_gpu.dtype(), "{name}: dtypes differ");
    let (atol, rtol) = tol(dtype);
    let (err, i) = worst(&y_gpu, &y_cpu, atol, rtol);
    assert!(
        err <= 1.0,
        "{name} {dtype:?}: output element {i} off by {err:.1}× tolerance"
    );
    for (k, (a, b)) in g_gpu.iter().zip(&g_cpu).enumerate() {
        match (a, b) {
            (Some(a), Some(b)) => {
                assert_eq!(a.device(), CUDA, "{name}: gradient {k} left the device");
                let (err, i) = worst(a, b, atol, rtol);
                assert!(
                    err <= 1.0,
                    "{name} {dtype:?}: grad {k} element {i} off by {err:.1}× tolerance"
                );
            }
            (None, None) => {}
            _ => panic!("{name}: gradient {k} present on one backend only"),
        }
    }
}

const FLOATS: [DType; 3] = [DType::F32, DType::F16, DType::BF16];

/// The layouts an input is fed in: as made, channels-last, and a strided (transposed) view.
fn layouts(t: &Tensor) -> Vec<(&'static str, Tensor)> {
    let mut out = vec![("contiguous", t.clone())];
    if t.rank() == 4 {
        out.push((
            "channels_last",
            t.to_memory_format(MemoryFormat::ChannelsLast).unwrap(),
        ));
    }
    if t.rank() >= 2 {
        out.push((
            "transposed",
            t.transpose(0, 1)
                .unwrap()
                .contiguous()
                .unwrap()
                .transpose(0, 1)
                .unwrap(),
        ));
    }
    out
}

#[test]
fn unary_ops() {
    if !cuda_available() {
        return;
    }
    type Op = fn(&Tensor) -> Result<Tensor>;
    let ops: [(&str, Op, bool); 18] = [
        ("neg", |x| x.neg(), false),
        ("exp", |x| x.exp(), false),
        ("log", |x| x.log(), true),
        ("sqrt", |x| x.sqrt(), true),
        ("rsqrt", |x| x.rsqrt(), true),
        ("abs", |x| x.abs(), false),
        ("relu", |x| x.relu(), false),
        ("sigmoid", |x| x.sigmoid(), false),
        ("tanh", |x| x.tanh(), false),
        ("silu", |x| x.silu(), false),
        ("gelu", |x| x.gelu(), false),
        ("hardswish", |x| x.hardswish(), false),
        ("hardsigmoid", |x| x.hardsigmoid(), false),
        ("recip", |x| x.recip(), true),
        ("sqr", |x| x.sqr(), false),
        ("powf", |x| x.powf(1.7), true),
        ("clamp", |x| x.clamp(-0.6, 0.9), false),
        ("affine", |x| x.affine(-1.5, 0.25), false),
    ];
    for (name, op, positive) in ops {
        let x = input(&[3, 5, 7, 9], 1, positive);
        for (layout, xl) in layouts(&x) {
            for dtype in FLOATS {
                let label = format!("{name} {layout}");
                conform(&label, std::slice::from_ref(&xl), dtype, |t| {
                    // The layout of the leaf is applied on each device, so the op sees it.
                    op(&relayout(&t[0], layout)?)
                });
            }
        }
    }
}

/// Gives `t` the layout named `layout` (a copy on its device).
fn relayout(t: &Tensor, layout: &str) -> Result<Tensor> {
    match layout {
        "channels_last" => t.to_memory_format(MemoryFormat::ChannelsLast),
        "transposed" => t.transpose(0, 1)?.contiguous()?.transpose(0, 1),
        _ => Ok(t.clone()),
    }
}

#[test]
fn casts_and_copies() {
    if !cuda_available() {
        return;
    }
    let x = input(&[4, 3, 5, 7], 2, false);
    for layout in ["contiguous", "channels_last", "transposed"] {
        for dtype in FLOATS {
            conform(
                &format!("cast {layout}"),
                std::slice::from_ref(&x),
                dtype,
                |t| {
                    relayout(&t[0], layout)?
                        .to_dtype(DType::F64)?
                        .to_dtype(DType::F32)
                },
            );
            conform(
                &format!("narrow+cat {layout}"),
                std::slice::from_ref(&x),
                dtype,
                |t| {
                    let v = relayout(&t[0], layout)?;
                    Tensor::cat(&[v.narrow(1, 1, 2)?, v.narrow(1, 0, 1)?], 1)
                },
            );
        }
    }
    let gpu = x.to_device(CUDA).unwrap();
    for dtype in [
        DType::I64,
        DType::I32,
        DType::U8,
        DType::Bool,
        DType::F16,
        DType::BF16,
    ] {
        let a = x.to_dtype(dtype).unwrap().to_vec_f32().unwrap();
        let b = gpu.to_dtype(dtype).unwrap().to_vec_f32().unwrap();
        assert_eq!(a, b, "cast to {dtype:?}");
    }
}
