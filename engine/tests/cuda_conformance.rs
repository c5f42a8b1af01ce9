//! The CUDA conformance suite: every op, forward and backward, on the CUDA backend against the CPU
//! backend, on odd shapes, strided and channels-last inputs, and each float dtype. In CI the CUDA
//! side runs on kiln-cuda-emu; on a machine with a GPU (scripts/gpu-check.sh) on the real device.

mod common;
use common::{conv2d_params, conv_case};
use kiln_engine::{AttnOptions, DType, Device, MemoryFormat, Result, Tensor};
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

/// Max |a-b| / (atol·max(1, max|b|) + rtol·|b|) over the elements; ≤ 1 passes. The absolute
/// part scales with the largest reference value, since sums that cancel keep the rounding
/// error of their largest terms.
fn worst(a: &Tensor, b: &Tensor, atol: f64, rtol: f64) -> (f64, usize) {
    let (a, b) = (a.to_vec_f32().unwrap(), b.to_vec_f32().unwrap());
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1.0f64, |m, &v| {
        if v.is_finite() {
            m.max(v.abs() as f64)
        } else {
            m
        }
    });
    let atol = atol * scale;
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

/// Tolerances per compute dtype: a few units in the last place of the storage type, since the
/// backends round f16/bf16 results at different points (CUDA GEMMs accumulate f16 in f32 once;
/// the CPU computes through f32 copies).
fn tol(dtype: DType) -> (f64, f64) {
    match dtype {
        DType::F16 => (1e-2, 1e-2),
        DType::BF16 => (5e-2, 5e-2),
        _ => (1e-5, 1e-4),
    }
}

/// Runs `f` on CPU and CUDA copies of `inputs` (all f32 leaves), seeds the backward with the same
/// random gradient, and compares outputs and input gradients.
fn conform(name: &str, inputs: &[Tensor], dtype: DType, f: impl Fn(&[Tensor]) -> Result<Tensor>) {
    conform_within(name, inputs, dtype, tol(dtype), f)
}

/// Tolerances for f32-accumulated products (GEMMs, convolutions) rounded to the dtype on both
/// backends: a result may round to the neighbouring value (one unit in the last place: 2^-10
/// relative for f16, 2^-7 for bf16; rtol is two), and where a gradient sums rounded products
/// (a broadcast operand's, summed over the batch) their roundings add up to about one unit of
/// the largest value (atol, relative to it). The f32 sums themselves differ in order only
/// (k·2^-24, far below either).
fn tol_product(dtype: DType) -> (f64, f64) {
    match dtype {
        DType::F16 => (1e-3, 2e-3),
        DType::BF16 => (8e-3, 1.6e-2),
        _ => tol(dtype),
    }
}

/// [`conform`] with explicit (atol, rtol).
fn conform_within(
    name: &str,
    inputs: &[Tensor],
    dtype: DType,
    tols: (f64, f64),
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
) {
    conform_each(name, inputs, &vec![dtype; inputs.len()], tols, f)
}

/// [`conform_within`] with each float input cast to its own dtype (`dtypes[i]`; the first names
/// the case), as autocast mixes f16/bf16 activations with f32 parameters.
fn conform_each(
    name: &str,
    inputs: &[Tensor],
    dtypes: &[DType],
    (atol, rtol): (f64, f64),
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
) {
    let dtype = dtypes[0];
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
            .zip(dtypes)
            .map(|(t, &dtype)| {
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
    let ops: [(&str, Op, bool); 19] = [
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
        ("gelu_tanh", |x| x.gelu_tanh(), false),
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
            conform(
                &format!("roll {layout}"),
                std::slice::from_ref(&x),
                dtype,
                |t| relayout(&t[0], layout)?.roll(&[-3, 2], &[2, 3]),
            );
            conform(
                &format!("pad2d {layout}"),
                std::slice::from_ref(&x),
                dtype,
                |t| relayout(&t[0], layout)?.pad2d([0, 1, 2, 1]),
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

#[test]
fn binary_compare_and_where_broadcast() {
    if !cuda_available() {
        return;
    }
    let a = input(&[3, 1, 5, 7], 3, false);
    let b = input(&[4, 1, 7], 4, true);
    type Op = fn(&Tensor, &Tensor) -> Result<Tensor>;
    let ops: [(&str, Op); 6] = [
        ("add", |x, y| x.add(y)),
        ("sub", |x, y| x.sub(y)),
        ("mul", |x, y| x.mul(y)),
        ("div", |x, y| x.div(y)),
        ("maximum", |x, y| x.maximum(y)),
        ("minimum", |x, y| x.minimum(y)),
    ];
    for (name, op) in ops {
        for layout in ["contiguous", "channels_last", "transposed"] {
            for dtype in FLOATS {
                conform(
                    &format!("{name} {layout}"),
                    &[a.clone(), b.clone()],
                    dtype,
                    |t| op(&relayout(&t[0], layout)?, &t[1]),
                );
            }
        }
    }
    for dtype in FLOATS {
        conform("where(a > b)", &[a.clone(), b.clone()], dtype, |t| {
            t[0].gt(&t[1])?.where_cond(&t[0], &t[1])
        });
        for layout in ["channels_last", "transposed"] {
            conform(
                &format!("where {layout}"),
                &[a.clone(), b.clone()],
                dtype,
                |t| {
                    let x = relayout(&t[0], layout)?;
                    x.lt(&t[1])?.where_cond(&t[1], &x)
                },
            );
        }
        conform("scalar ops", std::slice::from_ref(&a), dtype, |t| {
            (&(&t[0] * 3.0)? + 1.0)?.mul(&Tensor::scalar(0.5).to_dtype(t[0].dtype())?)
        });
    }
}

#[test]
fn reductions() {
    if !cuda_available() {
        return;
    }
    let x = input(&[3, 37, 5, 9], 5, false);
    for layout in ["contiguous", "channels_last", "transposed"] {
        for dtype in FLOATS {
            let l = layout;
            conform(
                &format!("sum all {l}"),
                std::slice::from_ref(&x),
                dtype,
                |t| relayout(&t[0], l)?.sum_all(),
            );
            conform(
                &format!("sum 0,2,3 {l}"),
                std::slice::from_ref(&x),
                dtype,
                |t| relayout(&t[0], l)?.sum_dims(&[0, 2, 3], true),
            );
            conform(
                &format!("mean 1 {l}"),
                std::slice::from_ref(&x),
                dtype,
                |t| relayout(&t[0], l)?.mean_dims(&[1], false),
            );
            conform(
                &format!("max -1 {l}"),
                std::slice::from_ref(&x),
                dtype,
                |t| relayout(&t[0], l)?.max(-1, false),
            );
            conform(
                &format!("min 2 {l}"),
                std::slice::from_ref(&x),
                dtype,
                |t| relayout(&t[0], l)?.min(2, true),
            );
            conform(
                &format!("var 0,3 {l}"),
                std::slice::from_ref(&x),
                dtype,
                |t| relayout(&t[0], l)?.var_dims(&[0, 3], true, false),
            );
        }
        let cpu = relayout(&x, layout).unwrap().argmax(1, false).unwrap();
        let gpu = relayout(&x.to_device(CUDA).unwrap(), layout)
            .unwrap()
            .argmax(1, false)
            .unwrap();
        assert_eq!(
            cpu.to_vec::<i64>().unwrap(),
            gpu.to_vec::<i64>().unwrap(),
            "argmax {layout}"
        );
    }
}

#[test]
fn matmul_and_linear() {
    if !cuda_available() {
        return;
    }
    let a = input(&[2, 3, 37, 19], 6, false);
    let b = input(&[3, 19, 45], 7, false);
    let w = input(&[13, 19], 8, false);
    let bias = input(&[13], 9, false);
    for dtype in FLOATS {
        conform(
            "batched matmul with broadcast",
            &[a.clone(), b.clone()],
            dtype,
            |t| t[0].matmul(&t[1]),
        );
        conform(
            "matmul of transposed views",
            &[a.clone(), b.clone()],
            dtype,
            |t| t[1].transpose(-2, -1)?.matmul(&t[0].transpose(-2, -1)?),
        );
        conform(
            "linear",
            &[a.clone(), w.clone(), bias.clone()],
            dtype,
            |t| t[0].linear(&t[1], Some(&t[2])),
        );
    }
}

/// Products for kiln's tensor-core GEMM (f16/bf16 on sm_80+ when cuBLAS does not serve; the
/// SIMT GEMM for f32): m, n and k off the 64×64×32 tile, 16-byte rows (copied by cp.async) and
/// odd ones or an odd start (gathered), a broadcast operand, transposed views, k over several
/// pipeline stages; the gradients multiply transposed views themselves.
#[test]
fn matmul_tensor_core_shapes() {
    if !cuda_available() {
        return;
    }
    type Op = fn(&[Tensor]) -> Result<Tensor>;
    let cases: [(&str, [usize; 3], Vec<usize>, Op); 6] = [
        ("aligned batched", [3, 70, 40], vec![3, 40, 72], |t| {
            t[0].matmul(&t[1])
        }),
        ("broadcast B, odd n", [3, 65, 24], vec![24, 33], |t| {
            t[0].matmul(&t[1])
        }),
        ("both transposed", [2, 40, 70], vec![2, 72, 40], |t| {
            t[0].transpose(-2, -1)?.matmul(&t[1].transpose(-2, -1)?)
        }),
        (
            "narrowed k, aligned start",
            [2, 33, 48],
            vec![2, 40, 17],
            |t| t[0].narrow(-1, 8, 40)?.matmul(&t[1]),
        ),
        ("narrowed k, odd start", [2, 33, 48], vec![2, 40, 17], |t| {
            t[0].narrow(-1, 1, 40)?.matmul(&t[1])
        }),
        ("long k", [1, 9, 130], vec![130, 16], |t| t[0].matmul(&t[1])),
    ];
    for (i, (name, a, b, op)) in cases.into_iter().enumerate() {
        let inputs = [
            input(&a, 40 + i as u64, false),
            input(&b, 50 + i as u64, false),
        ];
        for dtype in FLOATS {
            conform_within(name, &inputs, dtype, tol_product(dtype), op);
        }
    }
}

#[test]
fn conv2d() {
    if !cuda_available() {
        return;
    }
    let cases = [
        conv_case("3x3 pad 1", [2, 5, 9, 11], [7, 5, 3, 3], 1, 1, 1),
        conv_case("7x7/2 stem", [2, 3, 13, 13], [8, 3, 7, 7], 2, 3, 1),
        conv_case("1x1/2 downsample", [2, 6, 9, 9], [10, 6, 1, 1], 2, 0, 1),
        conv_case("grouped dilated", [2, 6, 11, 9], [9, 2, 3, 3], 1, 2, 2),
        conv_case("depthwise", [2, 5, 9, 9], [5, 1, 3, 3], 1, 1, 1),
        // 37 channels: a full and a partial 32-channel tile in NHWC; odd 11×13 and 9×7 sizes.
        conv_case("depthwise 5x5/2", [2, 37, 11, 13], [37, 1, 5, 5], 2, 2, 1),
        (
            "depthwise 7x7 dilated",
            [1, 6, 9, 7],
            [6, 1, 7, 7],
            conv2d_params([1, 1], [4, 3], [2, 1], 6),
        ),
    ];
    for (name, xs, ws, p) in cases {
        let (x, w, b) = (
            input(&xs, 10, false),
            input(&ws, 11, false),
            input(&[ws[0]], 12, false),
        );
        for layout in ["contiguous", "channels_last"] {
            for dtype in FLOATS {
                conform(
                    &format!("conv {name} {layout}"),
                    &[x.clone(), w.clone(), b.clone()],
                    dtype,
                    |t| relayout(&t[0], layout)?.conv2d(&t[1], Some(&t[2]), p),
                );
            }
        }
    }
}

/// Convolutions for kiln's tensor-core implicit GEMMs (f16/bf16 on sm_80+ when cuDNN does not
/// serve; the SIMT ones for f32), forward and both gradients in both layouts: channel counts that
/// are multiples of 8 (NHWC operands copied by cp.async), odd ones (gathered), a 3-channel stem
/// (gathered; its data gradient is narrow and runs direct), stride, padding, dilation, two
/// groups, pixel counts off the 64-row tile.
#[test]
fn conv2d_tensor_core_shapes() {
    if !cuda_available() {
        return;
    }
    let p = |stride, padding, dilation, groups| {
        conv2d_params([stride; 2], [padding; 2], [dilation; 2], groups)
    };
    let cases = [
        (
            "3x3 pad 1, 16 -> 24",
            [2, 16, 7, 9],
            [24, 16, 3, 3],
            p(1, 1, 1, 1),
        ),
        (
            "1x1/2, 20 -> 32",
            [2, 20, 9, 9],
            [32, 20, 1, 1],
            p(2, 0, 1, 1),
        ),
        (
            "5x5/2 stem, 3 -> 16",
            [2, 3, 11, 11],
            [16, 3, 5, 5],
            p(2, 2, 1, 1),
        ),
        (
            "2 groups of 16, dilated",
            [1, 32, 8, 8],
            [32, 16, 3, 3],
            p(1, 2, 2, 2),
        ),
    ];
    for (i, (name, xs, ws, p)) in cases.into_iter().enumerate() {
        let (x, w) = (
            input(&xs, 60 + i as u64, false),
            input(&ws, 70 + i as u64, false),
        );
        for layout in ["contiguous", "channels_last"] {
            for dtype in FLOATS {
                conform_within(
                    &format!("conv {name} {layout}"),
                    &[x.clone(), w.clone()],
                    dtype,
                    tol_product(dtype),
                    |t| relayout(&t[0], layout)?.conv2d(&t[1], None, p),
                );
            }
        }
    }
}

#[test]
fn batch_norm_fused() {
    if !cuda_available() {
        return;
    }
    use kiln_engine::BatchNormArgs;
    let x = input(&[4, 6, 5, 7], 13, false);
    let r = input(&[4, 6, 5, 7], 14, false);
    let (gamma, beta) = (input(&[6], 15, true), input(&[6], 16, false));
    for layout in ["contiguous", "channels_last"] {
        for training in [true, false] {
            for (name, relu, residual) in [
                ("bn", false, false),
                ("bn_relu", true, false),
                ("bn_add_relu", true, true),
            ] {
                for dtype in FLOATS {
                    let label = format!("{name} {layout} training={training}");
                    conform(
                        &label,
                        &[x.clone(), r.clone(), gamma.clone(), beta.clone()],
                        dtype,
                        |t| {
                            let device = t[0].device();
                            let rm = Tensor::full_on(&[6], 0.1, DType::F32, device)?;
                            let rv = Tensor::full_on(&[6], 0.9, DType::F32, device)?;
                            let nbt = Tensor::full_on(&[], 4.0, DType::I64, device)?;
                            let args = BatchNormArgs {
                                weight: Some(&t[2]),
                                bias: Some(&t[3]),
                                running_mean: Some(&rm),
                                running_var: Some(&rv),
                                num_batches_tracked: Some(&nbt),
                                training,
                                momentum: 0.1,
                                eps: 1e-5,
                            };
                            let xl = relayout(&t[0], layout)?;
                            let y = xl.batch_norm_act(args, residual.then_some(&t[1]), relu)?;
                            // The running statistics and the batch count must match too: fold
                            // them into the output.
                            let count = nbt.to_dtype(DType::F32)?;
                            let run = rm.add(&rv)?.add(&count.expand(&[6])?)?;
                            y.add(&run.reshape(&[1, 6, 1, 1])?.to_dtype(y.dtype())?)
                        },
                    );
                }
            }
        }
    }
}

#[test]
fn pooling() {
    if !cuda_available() {
        return;
    }
    use kiln_engine::Pool2d;
    let x = input(&[2, 5, 11, 9], 17, false);
    let wide = input(&[2, 16, 7, 6], 19, false);
    let max = Pool2d {
        kernel: [3, 3],
        stride: [2, 2],
        padding: [1, 1],
        ceil_mode: true,
        ..Pool2d::new(1, 1, 0)
    };
    let avg = Pool2d {
        kernel: [3, 2],
        stride: [2, 2],
        padding: [1, 1],
        count_include_pad: false,
        ..Pool2d::new(1, 1, 0)
    };
    for layout in ["contiguous", "channels_last"] {
        for dtype in FLOATS {
            let l = layout;
            conform(
                &format!("max_pool {l}"),
                std::slice::from_ref(&x),
                dtype,
                |t| relayout(&t[0], l)?.max_pool2d(max),
            );
            conform(
                &format!("avg_pool {l}"),
                std::slice::from_ref(&x),
                dtype,
                |t| relayout(&t[0], l)?.avg_pool2d(avg),
            );
            conform(
                &format!("adaptive avg {l}"),
                std::slice::from_ref(&x),
                dtype,
                |t| relayout(&t[0], l)?.adaptive_avg_pool2d([3, 4]),
            );
            conform(
                &format!("adaptive max {l}"),
                std::slice::from_ref(&x),
                dtype,
                |t| relayout(&t[0], l)?.adaptive_max_pool2d([1, 1]),
            );
            conform(
                &format!("max_pool {l}, 16 channels (16-byte packs when channels-last)"),
                std::slice::from_ref(&wide),
                dtype,
                |t| relayout(&t[0], l)?.max_pool2d(max),
            );
        }
    }
}

#[test]
fn softmax_cross_entropy_and_dropout() {
    if !cuda_available() {
        return;
    }
    let x = input(&[7, 37], 18, false);
    let labels = Tensor::from_vec((0..7).map(|i| (i * 5 % 37) as i64).collect(), &[7]).unwrap();
    let soft = input(&[7, 37], 19, true);
    let long = input(&[5, 1100], 24, false);
    for dtype in FLOATS {
        conform("softmax dim 0", std::slice::from_ref(&x), dtype, |t| {
            t[0].softmax(0)
        });
        conform("log_softmax", std::slice::from_ref(&x), dtype, |t| {
            t[0].log_softmax(-1)
        });
        // A block per row (1100 columns) over 5 rows, and rows of a strided (transposed) view.
        conform(
            "softmax block rows",
            std::slice::from_ref(&long),
            dtype,
            |t| t[0].softmax(-1),
        );
        conform(
            "log_softmax block rows",
            std::slice::from_ref(&long),
            dtype,
            |t| t[0].log_softmax(1),
        );
        conform("softmax transposed", std::slice::from_ref(&x), dtype, |t| {
            relayout(&t[0], "transposed")?.softmax(-1)
        });
        conform(
            "cross_entropy smoothing 0.1",
            &[x.clone(), labels.clone()],
            dtype,
            |t| t[0].cross_entropy(&t[1], 0.1),
        );
        conform(
            "cross_entropy soft",
            &[x.clone(), soft.clone()],
            dtype,
            |t| {
                let q = t[1].div(&t[1].sum_dims(&[1], true)?)?;
                t[0].cross_entropy(&q.detach(), 0.0)
            },
        );
        for (name, p) in [("dropout", 0.3), ("drop_path", 0.5)] {
            conform(name, std::slice::from_ref(&x), dtype, |t| {
                kiln_engine::manual_seed_thread(42);
                if name == "dropout" {
                    t[0].dropout(p, true)
                } else {
                    t[0].drop_path(p, true)
                }
            });
        }
    }
}

#[test]
fn u8_image_batches_upload_and_normalize_like_the_cpu() {
    if !cuda_available() {
        return;
    }
    let (mean, std) = ([0.485f32, 0.456, 0.406], [0.229f32, 0.224, 0.225]);
    // Several batches in a row reuse the page-locked staging buffer; each must arrive intact.
    for (i, n) in [3usize, 5, 2].into_iter().enumerate() {
        let bytes: Vec<u8> = (0..n * 7 * 9 * 3)
            .map(|j| ((j * 31 + i * 7) % 256) as u8)
            .collect();
        for dtype in FLOATS {
            let shape = [n, 7, 9, 3];
            let cpu =
                Tensor::from_u8_images(&bytes, shape, &mean, &std, dtype, Device::Cpu).unwrap();
            let gpu = Tensor::from_u8_images(&bytes, shape, &mean, &std, dtype, CUDA).unwrap();
            assert_eq!(gpu.shape(), &[n, 3, 7, 9]);
            assert_eq!(gpu.memory_format(), Some(MemoryFormat::ChannelsLast));
            assert_eq!(
                cpu.to_vec_f32().unwrap(),
                gpu.to_vec_f32().unwrap(),
                "batch {i} {dtype:?}"
            );
        }
    }
}

#[test]
fn bce_with_logits_for_index_and_soft_targets() {
    if !cuda_available() {
        return;
    }
    use kiln_engine::BceOpts;
    let x = input(&[7, 37], 20, false).mul_scalar(2.0).unwrap();
    let wide = input(&[3, 1301], 21, false);
    let tall = input(&[300, 37], 23, false);
    let labels = Tensor::from_vec((0..7).map(|i| (i * 5 % 37) as i64).collect(), &[7]).unwrap();
    let wide_labels = Tensor::from_vec(vec![0i64, 1300, 650], &[3]).unwrap();
    let soft = input(&[7, 37], 22, true).mul_scalar(0.45).unwrap();
    let opts = BceOpts {
        threshold: Some(0.5),
        pos_weight: Some(2.0),
    };
    for dtype in FLOATS {
        conform(
            "bce smoothing 0.1",
            &[x.clone(), labels.clone()],
            dtype,
            |t| t[0].bce_with_logits_rows(&t[1], 0.1, BceOpts::default()),
        );
        conform(
            "bce block rows",
            &[wide.clone(), wide_labels.clone()],
            dtype,
            |t| t[0].bce_with_logits_rows(&t[1], 0.2, opts),
        );
        conform("bce soft", &[x.clone(), soft.clone()], dtype, |t| {
            t[0].bce_with_logits_rows(&t[1].detach(), 0.0, opts)
        });
        // Leading rows of a larger buffer (JSD's clean split) through both fused losses.
        conform(
            "bce leading rows",
            &[x.clone(), labels.clone()],
            dtype,
            |t| {
                let rows = t[0].narrow(0, 0, 4)?;
                rows.bce_with_logits_rows(&t[1].narrow(0, 0, 4)?, 0.1, opts)
            },
        );
        conform(
            "xent leading rows",
            &[x.clone(), labels.clone()],
            dtype,
            |t| {
                t[0].narrow(0, 0, 4)?
                    .cross_entropy(&t[1].narrow(0, 0, 4)?, 0.1)
            },
        );
        conform(
            "softmax leading rows",
            std::slice::from_ref(&tall),
            dtype,
            |t| t[0].narrow(0, 0, 4)?.log_softmax(-1),
        );
    }
}

#[test]
fn layer_norm_rows_and_channels() {
    if !cuda_available() {
        return;
    }
    // A warp per row (37), a block per row (1100); 2d over NCHW and channels-last.
    for (shape, len) in [(&[3usize, 5, 37][..], 37), (&[2, 1100][..], 1100)] {
        let x = input(shape, 17, false);
        let (gamma, beta) = (input(&[len], 18, true), input(&[len], 19, false));
        for dtype in FLOATS {
            conform(
                "layer_norm",
                &[x.clone(), gamma.clone(), beta.clone()],
                dtype,
                |t| t[0].layer_norm(Some(&t[1]), Some(&t[2]), 1e-5),
            );
            conform(
                "layer_norm no affine",
                std::slice::from_ref(&x),
                dtype,
                |t| t[0].layer_norm(None, None, 1e-5),
            );
            conform(
                "layer_norm transposed",
                &[x.clone(), gamma.clone(), beta.clone()],
                dtype,
                |t| relayout(&t[0], "transposed")?.layer_norm(Some(&t[1]), Some(&t[2]), 1e-5),
            );
        }
        // Autocast's mix: f16/bf16 rows with f32 γ and β (read as they are on CUDA; dγ and dβ
        // come back in f32), and γ alone.
        for dtype in [DType::F16, DType::BF16] {
            let dtypes = [dtype, DType::F32, DType::F32];
            conform_each(
                "layer_norm f32 params",
                &[x.clone(), gamma.clone(), beta.clone()],
                &dtypes,
                tol(dtype),
                |t| t[0].layer_norm(Some(&t[1]), Some(&t[2]), 1e-5),
            );
            conform_each(
                "layer_norm f32 weight only",
                &[x.clone(), gamma.clone()],
                &dtypes[..2],
                tol(dtype),
                |t| t[0].layer_norm(Some(&t[1]), None, 1e-5),
            );
        }
    }
    let x = input(&[2, 6, 5, 3], 20, false);
    let (gamma, beta) = (input(&[6], 21, true), input(&[6], 22, false));
    for layout in ["contiguous", "channels_last"] {
        for dtype in FLOATS {
            let label = format!("layer_norm2d {layout}");
            conform(
                &label,
                &[x.clone(), gamma.clone(), beta.clone()],
                dtype,
                |t| relayout(&t[0], layout)?.layer_norm2d(Some(&t[1]), Some(&t[2]), 1e-6),
            );
        }
        for dtype in [DType::F16, DType::BF16] {
            conform_each(
                &format!("layer_norm2d {layout} f32 params"),
                &[x.clone(), gamma.clone(), beta.clone()],
                &[dtype, DType::F32, DType::F32],
                tol(dtype),
                |t| relayout(&t[0], layout)?.layer_norm2d(Some(&t[1]), Some(&t[2]), 1e-6),
            );
        }
    }
}

#[test]
fn squeeze_excite_fused() {
    if !cuda_available() {
        return;
    }
    use kiln_engine::{SqueezeExcite, UnaryOp};
    // 37 channels: one full and one partial 32-channel tile in NHWC; 5×7 pixels.
    let (n, c, r) = (3, 37, 6);
    let inputs = [
        input(&[n, c, 5, 7], 30, false),
        input(&[r, c, 1, 1], 31, false),
        input(&[r], 32, false),
        input(&[c, r, 1, 1], 33, false),
        input(&[c], 34, false),
    ];
    let pairs = [
        (UnaryOp::Silu, UnaryOp::Sigmoid),
        (UnaryOp::Relu, UnaryOp::HardSigmoid),
    ];
    for (act, gate) in pairs {
        let se = |t: &[Tensor], layout: &str| {
            relayout(&t[0], layout)?.squeeze_excite(SqueezeExcite {
                w1: &t[1],
                b1: &t[2],
                w2: &t[3],
                b2: &t[4],
                act,
                gate,
            })
        };
        for layout in ["contiguous", "channels_last"] {
            for dtype in FLOATS {
                let label = format!("squeeze_excite {act:?}/{gate:?} {layout}");
                conform(&label, &inputs, dtype, |t| se(t, layout));
            }
            // f16/bf16 activations with f32 parameters inside autocast (EfficientNet's and
            // MobileNetV3's AMP step): the FC layers stay in f32 on the channel means, so the
            // gate the apply pass reads is f32 whatever autocast would do to a matmul.
            for dtype in [DType::F16, DType::BF16] {
                let mut dtypes = [DType::F32; 5];
                dtypes[0] = dtype;
                let label = format!("squeeze_excite {act:?}/{gate:?} {layout} autocast");
                conform_each(&label, &inputs, &dtypes, tol(dtype), |t| {
                    let _amp = kiln_engine::amp::autocast(dtype)?;
                    se(t, layout)
                });
            }
        }
    }
}

#[test]
fn scaled_dot_product_attention_odd_shapes() {
    if !cuda_available() {
        return;
    }
    // [B, H, N, D]: N past one query block (64) and off the key tile (32), B·H > 1, odd head
    // dims in both buckets, L ≠ S, causal; head dims past the kernels' 64 (80, 96) take the
    // composed path. The f16/bf16 tolerances (1e-2, 5e-2) cover one rounding of O and of each
    // gradient to the storage type: both backends accumulate in f32.
    let cases: [([usize; 4], usize, bool); 6] = [
        ([2, 2, 70, 64], 70, false),
        ([1, 3, 17, 40], 45, true),
        ([2, 1, 33, 24], 20, false),
        ([1, 2, 45, 32], 45, true),
        ([1, 2, 19, 80], 23, true),
        ([2, 1, 9, 96], 9, false),
    ];
    for (qs, s, causal) in cases {
        let ks = [qs[0], qs[1], s, qs[3]];
        let inputs = [
            input(&qs, 31, false),
            input(&ks, 32, false),
            input(&ks, 33, false),
        ];
        for dtype in FLOATS {
            conform(
                &format!("sdpa q {qs:?} S {s} causal={causal}"),
                &inputs,
                dtype,
                |t| Tensor::scaled_dot_product_attention(&t[0], &t[1], &t[2], None, causal),
            );
        }
    }
}

#[test]
fn scaled_dot_product_attention_with_bias() {
    if !cuda_available() {
        return;
    }
    // Swin's windows [B, nW, H, N, D] with a learnable [H, N, N] bias plus a constant [nW, 1, N, N]
    // 0/−100 shift mask (dB summed over B and nW), a per-batch [B, 1, 1, S] key bias under the
    // causal mask, and head dim 80 on the composed path. Tolerances as the unbiased cases.
    type Case = ([usize; 5], usize, [usize; 5], bool, bool);
    let cases: [Case; 3] = [
        ([2, 2, 2, 49, 32], 49, [1, 1, 2, 49, 49], true, false),
        ([2, 1, 2, 70, 24], 45, [2, 1, 1, 1, 45], false, true),
        ([1, 1, 2, 19, 80], 23, [1, 1, 2, 19, 23], false, false),
    ];
    for (qs, s, bs, masked, causal) in cases {
        let ks = [qs[0], qs[1], qs[2], s, qs[4]];
        let inputs = [
            input(&qs, 34, false),
            input(&ks, 35, false),
            input(&ks, 36, false),
            input(&bs, 37, false),
        ];
        let (nw, n) = (qs[1], qs[3]);
        let mask: Vec<f32> = (0..nw * n * n)
            .map(|x| {
                let (w, i, j) = (x / (n * n), x / n % n, x % n);
                if (i + w) / 20 == (j + w) / 20 {
                    0.0
                } else {
                    -100.0
                }
            })
            .collect();
        let mask = Tensor::from_vec(mask, &[nw, 1, n, n]).unwrap();
        for dtype in FLOATS {
            conform(
                &format!("sdpa bias q {qs:?} bias {bs:?} mask={masked} causal={causal}"),
                &inputs,
                dtype,
                |t| {
                    let bias = if masked {
                        let m = mask.to_device(t[3].device())?.to_dtype(t[3].dtype())?;
                        t[3].add(&m)?
                    } else {
                        t[3].clone()
                    };
                    let opts = AttnOptions {
                        causal,
                        bias: Some(&bias),
                        ..Default::default()
                    };
                    Tensor::scaled_dot_product_attention_with(&t[0], &t[1], &t[2], opts)
                },
            );
        }
    }
}
