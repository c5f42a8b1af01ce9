//! Which kernels serve matrix products and convolutions when cuBLAS and cuDNN do not (the
//! emulator, or a GPU under `KILN_CUBLAS=0 KILN_CUDNN=0`): tensor cores (`gemm_tc_*`,
//! `conv_tc_*`) for f16/bf16 on sm_80+, the SIMT tiles (`gemm_t64_*`, `conv_*_t64_*`, ...) for f32
//! and f64, for any dtype below sm_80, and with `set_tensor_cores_enabled(false)`. Counted launch
//! by launch with `KILN_EMU_STATS` on the emulator (which reports sm_90); on a GPU the names are
//! not recorded and only the results are checked. The emulator's counters also compare the two
//! f16 paths' instructions and traffic.

use kiln_engine::{Conv2dParams, DType, Device, Generator, MemoryFormat, Tensor};
use std::io::Write;

const CUDA: Device = Device::Cuda(0);

mod common;
use common::{field, global_bytes, kernel, launches};

/// Instructions and global bytes (loaded + stored) of `lines`.
fn cost(lines: &[String]) -> (u64, u64) {
    let instructions = lines.iter().map(|l| field(l, "instructions")).sum();
    (instructions, global_bytes(lines))
}

fn tensor(shape: &[usize], seed: u64, dtype: DType) -> Tensor {
    Generator::new(seed)
        .uniform(shape, -1.0, 1.0, DType::F32)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
        .to_device(CUDA)
        .unwrap()
}

#[test]
fn half_products_run_on_tensor_cores_and_the_rest_on_simt_tiles() {
    let dev = match kiln_engine::cuda::device(0) {
        Ok(d) => d,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "skipped: {e}");
            return;
        }
    };
    // Set before any kernel runs; this binary's only test reads it (and sets the switches).
    let stats = std::env::temp_dir().join(format!("kiln-tc-{}.jsonl", std::process::id()));
    std::env::set_var("KILN_EMU_STATS", &stats);
    kiln_engine::cuda::set_cublas_enabled(false);
    kiln_engine::cuda::set_cudnn_enabled(false);
    let tc = dev.kernels().arch() >= 80;
    let family = |names: &[String]| -> Vec<String> {
        names
            .iter()
            .map(|l| kernel(l).rsplit_once('_').map_or("", |(f, _)| f))
            // Either tensor-core tile (`_t128`: the 128×128 one).
            .map(|f| match f.contains("_tc_") {
                true => f.replace("_t128", ""),
                false => f.to_owned(),
            })
            .collect()
    };

    // A batched product with a transposed operand, and its f32 result for reference.
    let (a, b) = (
        tensor(&[2, 70, 40], 1, DType::F32),
        tensor(&[2, 33, 40], 2, DType::F32),
    );
    let want = a.matmul(&b.transpose(-2, -1).unwrap()).unwrap();
    let mut got = Vec::new();
    for dtype in [DType::F16, DType::BF16, DType::F32] {
        let (a, b) = (a.to_dtype(dtype).unwrap(), b.to_dtype(dtype).unwrap());
        let mut y = None;
        let lines = launches(&stats, || {
            y = Some(a.matmul(&b.transpose(-2, -1).unwrap()).unwrap())
        });
        let names = family(&lines);
        println!("{dtype:?} matmul: {names:?}");
        if !lines.is_empty() {
            let expect = if tc && dtype != DType::F32 {
                "gemm_tc_nt"
            } else {
                "gemm_t64"
            };
            assert_eq!(names, [expect], "{dtype:?}");
        }
        got.push((dtype, y.unwrap(), lines));
    }

    // The switch sends f16 back to the SIMT tiles.
    kiln_engine::cuda::set_tensor_cores_enabled(false);
    let (a16, b16) = (
        a.to_dtype(DType::F16).unwrap(),
        b.to_dtype(DType::F16).unwrap(),
    );
    let mut simt = None;
    let simt_lines = launches(&stats, || {
        simt = Some(a16.matmul(&b16.transpose(-2, -1).unwrap()).unwrap())
    });
    kiln_engine::cuda::set_tensor_cores_enabled(true);
    if !simt_lines.is_empty() {
        assert_eq!(family(&simt_lines), ["gemm_t64"], "switched off");
    }

    let reference = want.to_vec_f32().unwrap();
    let scale = reference.iter().fold(1f32, |m, v| m.max(v.abs()));
    let simt = (DType::F16, simt.unwrap(), simt_lines);
    for (dtype, y, _) in got.iter().chain([&simt]) {
        let tol = match dtype {
            DType::F16 => 2e-3,
            DType::BF16 => 1.6e-2,
            _ => 1e-5,
        } * scale;
        for (i, (g, w)) in y.to_vec_f32().unwrap().iter().zip(&reference).enumerate() {
            assert!((g - w).abs() <= tol, "{dtype:?} [{i}]: {g}, f32 {w}");
        }
    }
    let (tc_cost, simt_cost) = (cost(&got[0].2), cost(&simt.2));
    if tc && tc_cost.0 > 0 {
        println!(
            "f16 [2,70,40]·[2,40,33]ᵀ: tensor cores {} instructions, {} global bytes; SIMT {} \
             instructions, {} global bytes",
            tc_cost.0, tc_cost.1, simt_cost.0, simt_cost.1
        );
        assert!(tc_cost.0 < simt_cost.0, "{tc_cost:?} vs {simt_cost:?}");
    }

    // A 3×3 convolution, 16 -> 24 channels, forward and backward, in both layouts.
    let x = tensor(&[2, 16, 7, 9], 3, DType::F32);
    let w = tensor(&[24, 16, 3, 3], 4, DType::F32);
    let pad = Conv2dParams {
        padding: [1, 1],
        ..Default::default()
    };
    let seed = tensor(&[2, 24, 7, 9], 5, DType::F32);
    for cl in [false, true] {
        let layout = if cl { "nhwc" } else { "nchw" };
        let mut runs = Vec::new();
        for (dtype, on) in [(DType::F16, true), (DType::F16, false), (DType::F32, true)] {
            kiln_engine::cuda::set_tensor_cores_enabled(on);
            let mut x = x.to_dtype(dtype).unwrap().detach();
            if cl {
                x = x.to_memory_format(MemoryFormat::ChannelsLast).unwrap();
            }
            let w = w.to_dtype(dtype).unwrap().detach();
            x.requires_grad_(true);
            w.requires_grad_(true);
            let seed = seed.to_dtype(dtype).unwrap();
            let lines = launches(&stats, || {
                x.conv2d(&w, None, pad)
                    .unwrap()
                    .backward_with(&seed)
                    .unwrap()
            });
            let convs: Vec<String> = lines
                .into_iter()
                .filter(|l| kernel(l).starts_with("conv"))
                .collect();
            let mut names = family(&convs);
            names.sort();
            println!("{dtype:?} conv {layout} tensor cores {on}: {names:?}");
            if !convs.is_empty() {
                let mut want: Vec<String> = if tc && on && dtype == DType::F16 {
                    vec![
                        "conv_reduce_splits".into(),
                        format!("conv_tc_bwd_data_{layout}"),
                        format!("conv_tc_bwd_filter_{layout}"),
                        format!("conv_tc_fwd_{layout}"),
                    ]
                } else {
                    let mut v = vec![
                        format!("conv_bwd_data_t64_{layout}"),
                        format!("conv_bwd_filter_t64_{layout}"),
                        format!("conv_fwd_t64_{layout}"),
                    ];
                    if dtype == DType::F16 {
                        v.push("conv_reduce_splits".into());
                    }
                    v
                };
                want.sort();
                assert_eq!(names, want, "{dtype:?} {layout} tensor cores {on}");
            }
            let grads = [x.grad().unwrap(), w.grad().unwrap()];
            runs.push((dtype, on, grads, convs));
        }
        kiln_engine::cuda::set_tensor_cores_enabled(true);
        // Both f16 paths agree with f32 within f16's rounding of the largest gradient.
        let want: Vec<Vec<f32>> = runs[2].2.iter().map(|g| g.to_vec_f32().unwrap()).collect();
        for (dtype, on, grads, _) in &runs[..2] {
            for (g, w) in grads.iter().zip(&want) {
                let scale = w.iter().fold(1f32, |m, v| m.max(v.abs()));
                for (i, (a, b)) in g.to_vec_f32().unwrap().iter().zip(w).enumerate() {
                    assert!(
                        (a - b).abs() <= 4e-3 * scale,
                        "{dtype:?} {layout} tensor cores {on} grad [{i}]: {a}, f32 {b}"
                    );
                }
            }
        }
        let (tc_cost, simt_cost) = (cost(&runs[0].3), cost(&runs[1].3));
        if tc && tc_cost.0 > 0 {
            println!(
                "f16 conv 3x3 [2,16,7,9] -> 24 {layout}, forward + both gradients: tensor cores {} \
                 instructions, {} global bytes; SIMT {} instructions, {} global bytes",
                tc_cost.0, tc_cost.1, simt_cost.0, simt_cost.1
            );
            assert!(tc_cost.0 < simt_cost.0, "{tc_cost:?} vs {simt_cost:?}");
        }
    }
    let _ = std::fs::remove_file(&stats);
}
