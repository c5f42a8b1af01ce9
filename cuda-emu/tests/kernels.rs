//! Realistic kernels against CPU references: a block reduction and a tiled matmul.

mod common;

use cudarc::driver::{LaunchConfig, PushKernelArg};

pub const REDUCE: &str = r#"
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

pub const MATMUL: &str = r#"
#define TILE 16
// C[M,N] = A[M,K] * B[K,N], row-major; one 16x16 tile of C per block.
extern "C" __global__ void matmul(const float* A, const float* B, float* C, int M, int N, int K) {
  __shared__ float As[TILE][TILE];
  __shared__ float Bs[TILE][TILE + 1];
  int tx = threadIdx.x, ty = threadIdx.y;
  int row = blockIdx.y * TILE + ty, col = blockIdx.x * TILE + tx;
  float acc = 0.0f;
  for (int k0 = 0; k0 < K; k0 += TILE) {
    As[ty][tx] = (row < M && k0 + tx < K) ? A[row * K + k0 + tx] : 0.0f;
    Bs[ty][tx] = (col < N && k0 + ty < K) ? B[(k0 + ty) * N + col] : 0.0f;
    __syncthreads();
    #pragma unroll
    for (int k = 0; k < TILE; ++k) acc += As[ty][k] * Bs[k][tx];
    __syncthreads();
  }
  if (row < M && col < N) C[row * N + col] = acc;
}
"#;

/// Runs the tiled matmul on the emulator; returns C.
pub fn matmul(gpu: &common::Gpu, a: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
    let f = gpu.func(MATMUL, "matmul");
    let (da, db) = (
        gpu.stream.clone_htod(a).unwrap(),
        gpu.stream.clone_htod(b).unwrap(),
    );
    let mut dc = gpu.stream.alloc_zeros::<f32>(m * n).unwrap();
    let (mi, ni, ki) = (m as i32, n as i32, k as i32);
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&da).arg(&db).arg(&mut dc).arg(&mi).arg(&ni).arg(&ki);
    let cfg = LaunchConfig {
        grid_dim: (n.div_ceil(16) as u32, m.div_ceil(16) as u32, 1),
        block_dim: (16, 16, 1),
        shared_mem_bytes: 0,
    };
    // SAFETY: argument types match the kernel signature.
    unsafe { l.launch(cfg) }.unwrap();
    gpu.stream.clone_dtoh(&dc).unwrap()
}

/// Deterministic test data in [-1, 1).
pub fn data(len: usize, seed: u32) -> Vec<f32> {
    (0..len)
        .map(|i| {
            ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 / (1 << 23) as f32
                - 1.0
        })
        .collect()
}

#[test]
fn block_reduction_matches_cpu_sum() {
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(REDUCE, "reduce_sum");
    let n = 100_003usize;
    let x = data(n, 7);
    let din = gpu.stream.clone_htod(&x).unwrap();
    let mut out = gpu.stream.alloc_zeros::<f32>(1).unwrap();
    let n32 = n as i32;
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&din).arg(&mut out).arg(&n32);
    // SAFETY: argument types match the kernel signature.
    unsafe {
        l.launch(LaunchConfig {
            grid_dim: (24, 1, 1),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        })
    }
    .unwrap();
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
    let (a, b) = (data(m * k, 1), data(k * n, 2));
    let c = matmul(&gpu, &a, &b, m, n, k);
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
