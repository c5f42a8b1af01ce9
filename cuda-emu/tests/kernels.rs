//! Realistic kernels against CPU references: a block reduction and a tiled matmul.

mod common;

use cudarc::driver::{LaunchConfig, PushKernelArg};

const REDUCE: &str = r#"
extern "C" __global__ void reduce_sum(const float* in, float* out, int n) {
  __shared__ float partial[32];
  int t = threadIdx.x, lane = t & 31, warp = t >> 5;
  float s = 0.0f;
  for (int i = blockIdx.x * blockDim.x + t; i < n; i += gridDim.x * blockDim.x) s += in[i];
  for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffff, s, o);
  if (lane == 0) partial[warp] = s;
  __syncthreads();
  if (warp == 0) {
    s = lane < blockDim.x / 32 ? partial[lane] : 0.0f;
    for (int o = 16; o > 0; o >>= 1) s += __shfl_down_sync(0xffffffff, s, o);
    if (lane == 0) atomicAdd(out, s);
  }
}
"#;

#[test]
fn block_reduction_matches_cpu_sum() {
    let Some(gpu) = common::gpu() else { return };
    reduce_with(&gpu, &[]);
}

#[test]
fn debug_and_lineinfo_builds_run_too() {
    let Some(gpu) = common::gpu() else { return };
    reduce_with(&gpu, &["-lineinfo"]);
    reduce_with(&gpu, &["-G"]);
}

/// Sums 100003 values with `REDUCE` compiled with `options`, against an f64 sum.
fn reduce_with(gpu: &common::Gpu, options: &[&str]) {
    let f = gpu
        .module_with(REDUCE, options)
        .load_function("reduce_sum")
        .unwrap();
    let n = 100_003usize;
    let x = common::data(n, 7);
    let din = gpu.stream.clone_htod(&x).unwrap();
    let mut out = gpu.stream.alloc_zeros::<f32>(1).unwrap();
    let n32 = n as i32;
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&din).arg(&mut out).arg(&n32);
    // SAFETY: argument types match the kernel signature.
    unsafe { l.launch(common::blocks((24, 1, 1), 256)) }.unwrap();
    let got = gpu.stream.clone_dtoh(&out).unwrap()[0];
    let want: f64 = x.iter().map(|v| *v as f64).sum();
    let abs_sum: f64 = x.iter().map(|v| v.abs() as f64).sum();
    assert!(
        (got as f64 - want).abs() <= abs_sum * 1e-6,
        "got {got}, want {want}"
    );
}

#[test]
fn tiled_matmul_matches_cpu_on_odd_shapes() {
    let Some(gpu) = common::gpu() else { return };
    let (m, n, k) = (50, 37, 61);
    let (a, b) = (common::data(m * k, 1), common::data(k * n, 2));
    let c = common::matmul(&gpu, &a, &b, m, n, k);
    for i in 0..m {
        for j in 0..n {
            let want: f64 = (0..k)
                .map(|p| a[i * k + p] as f64 * b[p * n + j] as f64)
                .sum();
            let got = c[i * n + j] as f64;
            assert!(
                (got - want).abs() <= 1e-5 * (k as f64),
                "C[{i},{j}]: got {got}, want {want}"
            );
        }
    }
}

const DYN_SMEM: &str = r#"
extern __shared__ float dyn[];
extern "C" __global__ void dyn_reverse(const float* in, float* out, int n) {
  __shared__ float fixed[16];
  for (int i = threadIdx.x; i < n; i += blockDim.x) dyn[i] = in[i];
  if (threadIdx.x < 16) fixed[threadIdx.x] = 1.0f;
  __syncthreads();
  for (int i = threadIdx.x; i < n; i += blockDim.x) out[i] = dyn[n - 1 - i] + fixed[i % 16];
}
"#;

/// Dynamic shared memory as the driver API has it: up to 48 KiB less the static shared memory
/// by default, beyond that only after `cuFuncSetAttribute(MAX_DYNAMIC_SHARED_SIZE_BYTES)`
/// raises the function's limit (at most the 227 KiB opt-in less the static part).
#[test]
fn dynamic_shared_memory_above_48k_needs_the_attribute() {
    use cudarc::driver::sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES as MAX_DYN;
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(DYN_SMEM, "dyn_reverse");
    let fixed = 16 * 4;
    assert_eq!(f.get_attribute(MAX_DYN).unwrap(), (48 << 10) - fixed);
    let n = 20_000usize; // 80 000 bytes of dynamic shared memory
    let x = common::data(n, 3);
    let din = gpu.stream.clone_htod(&x).unwrap();
    let mut out = gpu.stream.alloc_zeros::<f32>(n).unwrap();
    let launch = |out: &mut cudarc::driver::CudaSlice<f32>, bytes: usize| {
        let n32 = n as i32;
        let mut l = gpu.stream.launch_builder(&f);
        l.arg(&din).arg(out).arg(&n32);
        let cfg = LaunchConfig {
            grid_dim: (1, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: bytes as u32,
        };
        // SAFETY: argument types match the kernel; the block's dynamic shared memory holds n
        // floats whenever the launch runs.
        unsafe { l.launch(cfg) }.map(|_| ())
    };
    let bytes = n * 4;
    assert!(common::failed_with(
        launch(&mut out, bytes),
        "CUDA_ERROR_INVALID_VALUE"
    ));
    let too_much = (227 << 10) - fixed + 4;
    assert!(f.set_attribute(MAX_DYN, too_much).is_err());
    f.set_attribute(MAX_DYN, bytes as i32).unwrap();
    assert_eq!(f.get_attribute(MAX_DYN).unwrap(), bytes as i32);
    launch(&mut out, bytes).unwrap();
    let got = gpu.stream.clone_dtoh(&out).unwrap();
    for (i, g) in got.iter().enumerate() {
        assert_eq!(*g, x[n - 1 - i] + 1.0, "element {i}");
    }
    assert!(common::failed_with(
        launch(&mut out, bytes + 4),
        "CUDA_ERROR_INVALID_VALUE"
    ));
}
