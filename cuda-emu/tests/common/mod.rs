//! Shared test harness: compiles CUDA C++ with NVRTC and runs it through cudarc on the
//! emulator; returns `None` (after printing "skipped: ...") when either library is missing.
#![allow(dead_code)]

use std::ffi::{c_char, CStr};
use std::io::Write;
use std::sync::Arc;

use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaStream, DeviceRepr, DriverError, LaunchConfig,
    PushKernelArg, ValidAsZeroBits,
};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions};

/// A context and stream on the emulated device.
pub struct Gpu {
    /// The primary context.
    pub ctx: Arc<CudaContext>,
    /// Its default stream.
    pub stream: Arc<CudaStream>,
}

type LastError = unsafe extern "C" fn() -> *const c_char;

/// The emulator, or `None` with a "skipped" line saying why.
pub fn gpu() -> Option<Gpu> {
    // SAFETY: these only try to dlopen the libraries.
    let (cuda, nvrtc) = unsafe {
        (
            cudarc::driver::sys::is_culib_present(),
            cudarc::nvrtc::sys::is_culib_present(),
        )
    };
    let why = if !cuda {
        Some("libcuda.so not found (run scripts/test.sh, which builds kiln-cuda-emu and sets LD_LIBRARY_PATH)")
    } else if !nvrtc {
        Some("libnvrtc.so not found (run scripts/install-nvrtc.sh and put its folders on LD_LIBRARY_PATH)")
    } else if last_error_fn().is_none() {
        Some("the libcuda.so on LD_LIBRARY_PATH is not kiln-cuda-emu")
    } else {
        None
    };
    if let Some(why) = why {
        // Written straight to stderr so the test harness does not capture it.
        let _ = writeln!(std::io::stderr(), "skipped: {why}");
        return None;
    }
    let ctx = CudaContext::new(0).expect("context on the emulator");
    let stream = ctx.default_stream();
    Some(Gpu { ctx, stream })
}

fn last_error_fn() -> Option<LastError> {
    // SAFETY: culib only opens the library; the symbol has the declared signature.
    unsafe {
        let lib = cudarc::driver::sys::culib();
        lib.get::<LastError>(b"kiln_emu_last_error\0")
            .ok()
            .map(|s| *s)
    }
}

/// The emulator's message about the last failed load or launch.
pub fn last_error() -> String {
    let f = last_error_fn().expect("emulator loaded");
    // SAFETY: the emulator returns null or a NUL-terminated string valid until the next failure.
    unsafe {
        let p = f();
        if p.is_null() {
            String::new()
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

/// Folder of the CUDA headers (cuda_fp16.h) from the NVRTC wheels.
fn include_dir() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../.cache/nvidia/nvidia/cu13/include"
    )
    .to_string()
}

impl Gpu {
    /// Compiles `src` for compute_90 and loads it.
    pub fn module(&self, src: &str) -> Arc<CudaModule> {
        self.module_with(src, &[])
    }

    /// Compiles `src` for compute_90 with extra NVRTC options (`-G`, `-lineinfo`) and loads it.
    pub fn module_with(&self, src: &str, options: &[&str]) -> Arc<CudaModule> {
        let opts = CompileOptions {
            arch: Some("compute_90"),
            include_paths: vec![include_dir()],
            name: Some("kernel.cu".into()),
            options: options.iter().map(|o| o.to_string()).collect(),
            ..Default::default()
        };
        let ptx = compile_ptx_with_opts(src, opts).expect("NVRTC compiles the test kernel");
        self.ctx
            .load_module(ptx)
            .expect("the emulator loads the PTX")
    }

    /// Compiles `src` and returns its function `name`.
    pub fn func(&self, src: &str, name: &str) -> CudaFunction {
        self.module(src)
            .load_function(name)
            .expect("function exists")
    }
}

/// One block of `threads` threads, no dynamic shared memory.
pub const fn one_block(threads: u32) -> LaunchConfig {
    blocks((1, 1, 1), threads)
}

/// A `grid` of blocks of `threads` threads each (along x), no dynamic shared memory.
pub const fn blocks(grid: (u32, u32, u32), threads: u32) -> LaunchConfig {
    LaunchConfig {
        grid_dim: grid,
        block_dim: (threads, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// Whether a launch failed with the given CUDA error name.
pub fn failed_with<T>(r: Result<T, DriverError>, name: &str) -> bool {
    match r {
        Ok(_) => false,
        Err(e) => format!("{e:?}").contains(name),
    }
}

/// Asserts that a launch failed with the given CUDA error name; returns the emulator's message.
pub fn failure<T>(r: Result<T, DriverError>, name: &str) -> String {
    assert!(failed_with(r, name), "the launch did not fail with {name}");
    last_error()
}

/// Runs `f(in, out, n)` with a thread per element of `input`; returns `out`, `per` values an
/// element.
///
/// # Safety
/// `f` must take `(const I* in, O* out, int n)` and write at most `per` values an element.
pub unsafe fn map_elems<I, O>(gpu: &Gpu, f: &CudaFunction, input: &[I], per: usize) -> Vec<O>
where
    I: DeviceRepr,
    O: DeviceRepr + ValidAsZeroBits + Default + Clone,
{
    let n = input.len();
    let din = gpu.stream.clone_htod(input).unwrap();
    let mut out = gpu.stream.alloc_zeros::<O>(n * per).unwrap();
    let n32 = n as i32;
    let mut l = gpu.stream.launch_builder(f);
    l.arg(&din).arg(&mut out).arg(&n32);
    // SAFETY: the caller vouches for the signature and the output size.
    unsafe { l.launch(LaunchConfig::for_num_elems(n as u32)) }.unwrap();
    gpu.stream.clone_dtoh(&out).unwrap()
}

/// Runs `f(in, a, b, n)` with a thread per element of `input`; returns `a` and `b`, `per.0` and
/// `per.1` values an element.
///
/// # Safety
/// `f` must take `(const I* in, A* a, B* b, int n)` and write at most `per` values an element.
pub unsafe fn map_elems2<I, A, B>(
    gpu: &Gpu,
    f: &CudaFunction,
    input: &[I],
    per: (usize, usize),
) -> (Vec<A>, Vec<B>)
where
    I: DeviceRepr,
    A: DeviceRepr + ValidAsZeroBits + Default + Clone,
    B: DeviceRepr + ValidAsZeroBits + Default + Clone,
{
    let n = input.len();
    let din = gpu.stream.clone_htod(input).unwrap();
    let mut a = gpu.stream.alloc_zeros::<A>(n * per.0).unwrap();
    let mut b = gpu.stream.alloc_zeros::<B>(n * per.1).unwrap();
    let n32 = n as i32;
    let mut l = gpu.stream.launch_builder(f);
    l.arg(&din).arg(&mut a).arg(&mut b).arg(&n32);
    // SAFETY: the caller vouches for the signature and the output sizes.
    unsafe { l.launch(LaunchConfig::for_num_elems(n as u32)) }.unwrap();
    (
        gpu.stream.clone_dtoh(&a).unwrap(),
        gpu.stream.clone_dtoh(&b).unwrap(),
    )
}

/// Runs `f(in, out)` as one block of `threads` threads; returns `out` (`out_len` values).
///
/// # Safety
/// `f` must take `(const I* in, O* out)` and write at most `out_len` values.
pub unsafe fn block_in_out<I, O>(
    gpu: &Gpu,
    f: &CudaFunction,
    input: &[I],
    threads: u32,
    out_len: usize,
) -> Vec<O>
where
    I: DeviceRepr,
    O: DeviceRepr + ValidAsZeroBits + Default + Clone,
{
    let din = gpu.stream.clone_htod(input).unwrap();
    let mut out = gpu.stream.alloc_zeros::<O>(out_len).unwrap();
    let mut l = gpu.stream.launch_builder(f);
    l.arg(&din).arg(&mut out);
    // SAFETY: the caller vouches for the signature and the output size.
    unsafe { l.launch(one_block(threads)) }.unwrap();
    gpu.stream.clone_dtoh(&out).unwrap()
}

/// Launches `f(out)` as one block of `threads` threads over `out_len` zeros; returns `out`, or
/// the launch's error.
///
/// # Safety
/// `f` must take `(O* out)` and write at most `out_len` values.
pub unsafe fn block_out<O>(
    gpu: &Gpu,
    f: &CudaFunction,
    threads: u32,
    out_len: usize,
) -> Result<Vec<O>, DriverError>
where
    O: DeviceRepr + ValidAsZeroBits + Default + Clone,
{
    let mut out = gpu.stream.alloc_zeros::<O>(out_len).unwrap();
    let mut l = gpu.stream.launch_builder(f);
    l.arg(&mut out);
    // SAFETY: the caller vouches for the signature and the output size.
    unsafe { l.launch(one_block(threads)) }?;
    Ok(gpu.stream.clone_dtoh(&out).unwrap())
}

/// A tiled matmul kernel (used by the matmul and the counters tests).
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
pub fn matmul(gpu: &Gpu, a: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
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
