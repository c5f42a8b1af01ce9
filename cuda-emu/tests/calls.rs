//! Non-inlined device functions (inlined by the decoder), per-thread local arrays, and module
//! variables in constant and global memory.

mod common;

use cudarc::driver::PushKernelArg;

const CALLS: &str = r#"
__device__ __noinline__ float poly(float x, int k) {
  float acc = 0.0f;
  for (int i = 0; i <= k; ++i) acc = acc * x + (float)(i + 1);
  return acc;
}
__device__ __noinline__ int collatz(int v) {
  int steps = 0;
  while (v > 1) { v = (v & 1) ? 3 * v + 1 : v / 2; ++steps; if (steps > 1000) return -1; }
  return steps;
}
extern "C" __global__ void calls(const int* in, float* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  int local[24];
  for (int k = 0; k < 24; ++k) local[k] = in[(i + k) % n] * (k + 1);
  int idx = in[i] & 15;
  out[i * 3] = poly(0.5f, idx);
  out[i * 3 + 1] = (float)collatz(in[i] + 1);
  out[i * 3 + 2] = (float)(local[idx] + local[23 - idx]);
}
"#;

#[test]
fn device_function_calls_and_local_arrays() {
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(CALLS, "calls");
    let input: Vec<i32> = (0..77).map(|i| (i * 53) % 91).collect();
    let n = input.len();
    // SAFETY: `calls` takes (const int*, float*, int) and writes 3 values a thread.
    let out: Vec<f32> = unsafe { common::map_elems(&gpu, &f, &input, 3) };
    for i in 0..n {
        let idx = (input[i] & 15) as usize;
        let poly = (0..=idx).fold(0.0f32, |acc, k| acc * 0.5 + (k + 1) as f32);
        let mut v = input[i] + 1;
        let mut steps = 0;
        while v > 1 {
            v = if v & 1 == 1 { 3 * v + 1 } else { v / 2 };
            steps += 1;
        }
        let local = |k: usize| input[(i + k) % n] * (k as i32 + 1);
        assert_eq!(out[i * 3], poly, "poly at {i}");
        assert_eq!(out[i * 3 + 1], steps as f32, "collatz at {i}");
        assert_eq!(
            out[i * 3 + 2],
            (local(idx) + local(23 - idx)) as f32,
            "local array at {i}"
        );
    }
}

const VARS: &str = r#"
__constant__ float coeffs[4] = {0.5f, -1.0f, 2.0f, 0.25f};
__device__ int hits;
__device__ unsigned table[3] = {7u, 11u, 13u};
extern "C" __global__ void vars(float* out) {
  int t = threadIdx.x;
  out[t] = coeffs[t & 3] * table[t % 3];
  atomicAdd(&hits, 1);
}
"#;

#[test]
fn constant_and_global_module_variables() {
    let Some(gpu) = common::gpu() else { return };
    let m = gpu.module(VARS);
    let f = m.load_function("vars").unwrap();
    // SAFETY: `vars` takes (float*) and writes a value a thread.
    let out: Vec<f32> = unsafe { common::block_out(&gpu, &f, 40, 40) }.unwrap();
    let (coeffs, table) = ([0.5f32, -1.0, 2.0, 0.25], [7.0f32, 11.0, 13.0]);
    for (t, v) in out.iter().enumerate() {
        assert_eq!(*v, coeffs[t & 3] * table[t % 3], "thread {t}");
    }
    let hits = m.get_global("hits", &gpu.stream).unwrap();
    assert_eq!(gpu.stream.clone_dtoh(&hits).unwrap(), 40i32.to_le_bytes());
}

const MULTI_TENSOR: &str = r#"
struct TensorList { float* ptrs[8]; int sizes[8]; int n; };
extern "C" __global__ void scale_all(TensorList tl, float s) {
  int t = blockIdx.y;
  if (t >= tl.n) return;
  float* p = tl.ptrs[t];
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < tl.sizes[t]; i += gridDim.x * blockDim.x) p[i] *= s;
}
"#;

/// The kernel's `TensorList`, passed by value (a multi-tensor optimizer step's argument).
#[repr(C)]
#[derive(Clone, Copy)]
struct TensorList {
    ptrs: [u64; 8],
    sizes: [i32; 8],
    n: i32,
}

// SAFETY: plain old data with the kernel's layout (104 bytes, 8-aligned).
unsafe impl cudarc::driver::DeviceRepr for TensorList {}

#[test]
fn struct_parameters_by_value() {
    use cudarc::driver::DevicePtr;
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(MULTI_TENSOR, "scale_all");
    let sizes = [5usize, 300, 77];
    let host: Vec<Vec<f32>> = sizes
        .iter()
        .map(|&n| (0..n).map(|i| i as f32).collect())
        .collect();
    let bufs: Vec<_> = host
        .iter()
        .map(|h| gpu.stream.clone_htod(h).unwrap())
        .collect();
    let mut tl = TensorList {
        ptrs: [0; 8],
        sizes: [0; 8],
        n: 3,
    };
    for (k, b) in bufs.iter().enumerate() {
        tl.ptrs[k] = b.device_ptr(&gpu.stream).0;
        tl.sizes[k] = sizes[k] as i32;
    }
    let s = 2.5f32;
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&tl).arg(&s);
    // SAFETY: argument types match the kernel signature; the pointers are live allocations.
    unsafe { l.launch(common::blocks((2, 4, 1), 64)) }.unwrap();
    for (b, h) in bufs.iter().zip(&host) {
        let got = gpu.stream.clone_dtoh(b).unwrap();
        assert_eq!(got, h.iter().map(|v| v * 2.5).collect::<Vec<_>>());
    }
}
