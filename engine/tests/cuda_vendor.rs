//! cuBLAS and cuDNN against kiln's built-in CUDA kernels: matrix products and convolutions,
//! forward and backward, NCHW and NHWC, f32 and f16, each run once with the vendor library and
//! once with it switched off. Where a library does not load (CI, the emulator) its comparison
//! prints "skipped: <why>"; scripts/gpu-check.sh runs this on a GPU. cuDNN's graph API is
//! compared with its legacy API the same way.

mod common;
use common::{conv2d_params, conv_case, ConvCase};
use kiln_engine::cuda::{
    cublas_loaded, cudnn_graph_enabled, cudnn_graph_loaded, cudnn_loaded, parse_switch,
    set_cublas_enabled, set_cudnn_benchmark, set_cudnn_enabled, set_cudnn_graph_enabled,
    CudaDevice,
};
use kiln_engine::{DType, Device, MemoryFormat, Result, Tensor};
use std::io::Write;
use std::sync::{Arc, Mutex};

const CUDA: Device = Device::Cuda(0);

/// The switches are process-wide: tests that flip them take turns.
static SWITCHES: Mutex<()> = Mutex::new(());

fn skip(why: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

/// Whether cuBLAS (or cuDNN) serves on cuda:0; prints why not.
fn vendor_loaded(check: fn(&CudaDevice) -> Result<()>) -> bool {
    match kiln_engine::cuda::device(0).and_then(|d| check(&d).map(|()| d)) {
        Ok(d) => {
            let _ = writeln!(std::io::stderr(), "comparing on {}", d.name());
            true
        }
        Err(e) => {
            skip(e);
            false
        }
    }
}

/// The device with cuDNN switched on, and the graph API switch's value to restore; `None` (and
/// "skipped") without a device.
fn cudnn_on() -> Option<(Arc<CudaDevice>, bool)> {
    let dev = kiln_engine::cuda::device(0).map_err(skip).ok()?;
    let was = cudnn_graph_enabled();
    set_cudnn_enabled(true);
    Some((dev, was))
}

fn input(shape: &[usize], seed: u64) -> Tensor {
    kiln_engine::Generator::new(seed)
        .uniform(shape, -2.0, 2.0, DType::F32)
        .expect("uniform")
}

/// Runs `f` on device copies of `inputs` cast to `dtype`, backward with a fixed gradient;
/// returns the output and the inputs' gradients as f32 host vectors.
fn run(
    what: &str,
    inputs: &[Tensor],
    dtype: DType,
    f: &dyn Fn(&[Tensor]) -> Result<Tensor>,
) -> Vec<Vec<f32>> {
    let leaves: Vec<Tensor> = inputs
        .iter()
        .map(|t| {
            let l = t.to_device(CUDA).unwrap().detach();
            l.requires_grad_(true);
            l
        })
        .collect();
    let cast: Vec<Tensor> = leaves.iter().map(|t| t.to_dtype(dtype).unwrap()).collect();
    let y = f(&cast).unwrap_or_else(|e| panic!("{what} {dtype:?} forward: {e}"));
    let seed = input(y.shape(), 99).to_dtype(dtype).unwrap();
    y.backward_with(&seed.to_device(CUDA).unwrap())
        .unwrap_or_else(|e| panic!("{what} {dtype:?} backward: {e}"));
    std::iter::once(y)
        .chain(leaves.iter().map(|l| l.grad().expect("gradient")))
        .map(|t| t.to_vec_f32().unwrap())
        .collect()
}

/// Asserts |a - b| ≤ tol · max(1, max|b|) elementwise.
fn assert_close(what: &str, a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * scale,
            "{what}: element {i}: vendor {x} vs built-in {y} (scale {scale})"
        );
    }
}

fn tol(dtype: DType) -> f32 {
    match dtype {
        DType::F32 => 1e-4,
        _ => 1e-2,
    }
}

/// Compares `f` with the vendor library on and off (`set(on)` flips it).
fn compare(
    name: &str,
    inputs: &[Tensor],
    dtype: DType,
    set: fn(bool),
    f: &dyn Fn(&[Tensor]) -> Result<Tensor>,
) {
    set(true);
    let vendor = run(&format!("{name} (vendor)"), inputs, dtype, f);
    set(false);
    let builtin = run(&format!("{name} (built-in)"), inputs, dtype, f);
    set(true);
    let parts = ["output"].into_iter().chain(["grad 0", "grad 1", "grad 2"]);
    for ((v, b), part) in vendor.iter().zip(&builtin).zip(parts) {
        assert_close(&format!("{name} {dtype:?} {part}"), v, b, tol(dtype));
    }
}

#[test]
fn switch_values_select_the_built_in_kernels() {
    // KILN_CUBLAS=0 / KILN_CUDNN=0 (and their spellings) select the built-in kernels.
    for off in ["0", "false", "off", "no", "OFF", " 0 "] {
        assert!(!parse_switch(Some(off), true), "{off:?}");
    }
    // Unset, on, or unrecognized keeps the vendor library (the default).
    for on in [
        None,
        Some("1"),
        Some("true"),
        Some("yes"),
        Some(""),
        Some("maybe"),
    ] {
        assert!(parse_switch(on, true), "{on:?}");
    }
    // KILN_CUDNN_BENCHMARK defaults to off and turns on with 1.
    assert!(!parse_switch(None, false));
    assert!(parse_switch(Some("1"), false));
}

#[test]
fn cublas_matches_the_built_in_gemm() {
    let _turn = SWITCHES.lock().unwrap_or_else(|e| e.into_inner());
    if !vendor_loaded(cublas_loaded) {
        return;
    }
    let a = input(&[2, 3, 37, 19], 1);
    let b = input(&[3, 19, 45], 2);
    let w = input(&[13, 19], 3);
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        compare(
            "batched matmul with broadcast",
            &[a.clone(), b.clone()],
            dtype,
            set_cublas_enabled,
            &|t| t[0].matmul(&t[1]),
        );
        compare(
            "matmul of transposed views",
            &[a.clone(), b.clone()],
            dtype,
            set_cublas_enabled,
            &|t| t[1].transpose(-2, -1)?.matmul(&t[0].transpose(-2, -1)?),
        );
        compare(
            "linear",
            &[a.clone(), w.clone()],
            dtype,
            set_cublas_enabled,
            &|t| t[0].linear(&t[1], None),
        );
    }
}

fn conv_cases() -> Vec<ConvCase> {
    vec![
        conv_case("3x3 pad 1", [2, 8, 9, 11], [16, 8, 3, 3], 1, 1, 1),
        conv_case("7x7/2 stem", [2, 3, 15, 15], [8, 3, 7, 7], 2, 3, 1),
        conv_case("1x1/2 downsample", [2, 8, 9, 9], [16, 8, 1, 1], 2, 0, 1),
        conv_case("grouped dilated", [2, 8, 11, 9], [12, 2, 3, 3], 1, 2, 2),
        conv_case("depthwise", [2, 8, 9, 9], [8, 1, 3, 3], 1, 1, 1),
    ]
}

/// Compares the convolutions of `cases` with `set(true)` and `set(false)`.
fn conv_against(set: fn(bool), benchmark: bool, cases: &[ConvCase]) {
    set_cudnn_benchmark(benchmark);
    for &(name, xs, ws, p) in cases {
        let (x, w) = (input(&xs, 10), input(&ws, 11));
        for format in [MemoryFormat::Contiguous, MemoryFormat::ChannelsLast] {
            for dtype in [DType::F32, DType::F16] {
                compare(
                    &format!("conv {name} {format:?} benchmark={benchmark}"),
                    &[x.clone(), w.clone()],
                    dtype,
                    set,
                    &|t| t[0].to_memory_format(format)?.conv2d(&t[1], None, p),
                );
            }
        }
    }
    set_cudnn_benchmark(false);
}

#[test]
fn cudnn_matches_the_built_in_conv() {
    let _turn = SWITCHES.lock().unwrap_or_else(|e| e.into_inner());
    if !vendor_loaded(cudnn_loaded) {
        return;
    }
    conv_against(set_cudnn_enabled, false, &conv_cases());
    conv_against(set_cudnn_enabled, true, &conv_cases());
}

/// cuDNN's graph API against its legacy API, with heuristics and with benchmarking. Where the
/// graph path cannot serve (the emulator: cuDNN not loaded), it says why and convolutions fall
/// back: one case then runs with it switched on and off.
#[test]
fn cudnn_graph_matches_the_legacy_api() {
    let _turn = SWITCHES.lock().unwrap_or_else(|e| e.into_inner());
    let Some((dev, was)) = cudnn_on() else { return };
    match cudnn_graph_loaded(&dev) {
        Ok(()) => {
            let _ = writeln!(std::io::stderr(), "comparing on {}", dev.name());
            conv_against(set_cudnn_graph_enabled, false, &conv_cases());
            conv_against(set_cudnn_graph_enabled, true, &conv_cases());
        }
        Err(why) => {
            if cudnn_loaded(&dev).is_err() {
                assert!(why.to_string().contains("cuDNN not loaded"), "{why}");
            }
            skip(&why);
            conv_against(set_cudnn_graph_enabled, false, &conv_cases()[..1]);
        }
    }
    set_cudnn_graph_enabled(was);
}

/// cuDNN's conv+genstats graph (graph API on, f16/bf16 NHWC) hands a training BN the per-channel
/// Σy and Σy² of the convolution's output: the BN through them matches kiln's own statistics
/// pass (bn_partials) over the same y, in its running buffers (momentum 1: the batch mean and
/// unbiased variance) and its output, and y matches the plain forward. Where the graph API does
/// not load it says why and checks that no statistics come from cuDNN's legacy path.
#[test]
fn cudnn_graph_genstats_match_kiln_bn() {
    let _turn = SWITCHES.lock().unwrap_or_else(|e| e.into_inner());
    let Some((dev, was)) = cudnn_on() else { return };
    let graph = cudnn_graph_loaded(&dev);
    set_cudnn_graph_enabled(graph.is_ok());
    let cases = [
        ([2, 16, 9, 11], [24, 16, 3, 3], 1, 1),
        ([2, 32, 10, 10], [64, 32, 1, 1], 2, 0),
    ];
    for (xs, ws, stride, pad) in cases {
        let p = conv2d_params([stride; 2], [pad; 2], [1, 1], 1);
        for dtype in [DType::F16, DType::BF16] {
            let what = format!("conv {xs:?} * {ws:?} {dtype:?} NHWC");
            let on_gpu = |t: Tensor| {
                t.to_dtype(dtype)
                    .and_then(|t| t.to_device(CUDA))
                    .and_then(|t| t.to_memory_format(MemoryFormat::ChannelsLast))
                    .unwrap()
            };
            let (x, w) = (on_gpu(input(&xs, 20)), on_gpu(input(&ws, 21)));
            let (y, stats) = x.conv2d_with_stats(&w, p).unwrap();
            if cudnn_loaded(&dev).is_ok() && graph.is_err() {
                assert!(stats.is_none(), "{what}: statistics from the legacy API");
            }
            if let Err(why) = &graph {
                skip(why);
                continue;
            }
            let stats = stats.unwrap_or_else(|| panic!("{what}: cuDNN returned no statistics"));
            let _ = writeln!(std::io::stderr(), "{what}: statistics from cuDNN genstats");
            let plain = x.conv2d(&w, None, p).unwrap();
            let as_f32 = |t: &Tensor| t.to_dtype(DType::F32).unwrap().to_vec_f32().unwrap();
            assert_close(
                &format!("{what} y"),
                &as_f32(&y),
                &as_f32(&plain),
                tol(dtype),
            );
            let c = ws[0];
            let buffers = || {
                let f = |v| Tensor::full_on(&[c], v, DType::F32, CUDA).unwrap();
                (f(0.0), f(1.0))
            };
            let ((m1, v1), (m2, v2)) = (buffers(), buffers());
            let args = |m, v| kiln_engine::BatchNormArgs {
                weight: None,
                bias: None,
                running_mean: Some(m),
                running_var: Some(v),
                num_batches_tracked: None,
                training: true,
                momentum: 1.0,
                eps: 1e-5,
            };
            let fused = y
                .batch_norm_act_with_stats(args(&m1, &v1), None, false, None, Some(&stats))
                .unwrap();
            let own = y.batch_norm(args(&m2, &v2)).unwrap();
            // cuDNN may sum its f32 accumulators where kiln sums y as stored.
            let t = if dtype == DType::F16 { 5e-3 } else { 3e-2 };
            assert_close(&format!("{what} mean"), &as_f32(&m1), &as_f32(&m2), t);
            assert_close(&format!("{what} var"), &as_f32(&v1), &as_f32(&v2), t);
            assert_close(&format!("{what} BN(y)"), &as_f32(&fused), &as_f32(&own), t);
        }
    }
    set_cudnn_graph_enabled(was);
}
