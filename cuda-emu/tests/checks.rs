//! Planted bugs the emulator must catch, naming kernel, block, thread and address.

mod common;

use std::sync::{Mutex, MutexGuard};

use cudarc::driver::{DevicePtr, PushKernelArg};

const OOB: &str = r#"
extern "C" __global__ void oob_write(int* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= n) out[i] = i;  // off by one: thread n writes past the end
}
"#;

const RACE: &str = r#"
extern "C" __global__ void shift_left(const float* in, float* out, int sync) {
  __shared__ float s[64];
  int t = threadIdx.x;
  s[t] = in[t];
  if (sync) __syncthreads();  // the fixed kernel passes sync = 1
  out[t] = s[(t + 1) % 64];
}
"#;

const WARP_TREE: &str = r#"
extern "C" __global__ void warp_tree(const float* in, float* out) {
  __shared__ float s[32];
  int t = threadIdx.x;
  s[t] = in[t];
  __syncwarp();
  for (int o = 16; o > 0; o >>= 1) {
    float v = t < o ? s[t + o] : 0.0f;
    __syncwarp();
    if (t < o) s[t] += v;
    __syncwarp();
  }
  if (t == 0) out[0] = s[0];
}
"#;

const DIVERGENT_BARRIER: &str = r#"
extern "C" __global__ void divergent_barrier(float* out) {
  __shared__ float s[64];
  int t = threadIdx.x;
  s[t] = t;
  if (t < 32) {
    __syncthreads();  // only the first warp reaches this barrier
    out[t] = s[63 - t];
  } else {
    out[t] = 0.0f;
  }
}
"#;

const MISSING_LANES: &str = r#"
extern "C" __global__ void missing_lanes(int* out) {
  int t = threadIdx.x;
  if (t < 20) out[t] = __shfl_sync(0xffffffff, t, 0);  // lanes 20..31 never arrive
}
"#;

/// The last-error message is process-wide: these tests take turns.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn out_of_bounds_write_names_kernel_thread_and_address() {
    let _turn = serial();
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(OOB, "oob_write");
    let n = 100i32;
    let mut out = gpu.stream.alloc_zeros::<i32>(n as usize).unwrap();
    let base = out.device_ptr(&gpu.stream).0;
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&mut out).arg(&n);
    // SAFETY: argument types match the kernel signature.
    let r = unsafe { l.launch(common::one_block(128)) };
    let msg = common::failure(r, "CUDA_ERROR_ILLEGAL_ADDRESS");
    assert!(msg.contains("out-of-bounds"), "{msg}");
    assert!(msg.contains("`oob_write`"), "{msg}");
    assert!(msg.contains("block (0,0,0) thread (100,0,0)"), "{msg}");
    assert!(msg.contains(&format!("{:#x}", base + 400)), "{msg}");
}

#[test]
fn missing_syncthreads_is_a_shared_memory_race() {
    let _turn = serial();
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(RACE, "shift_left");
    let input: Vec<f32> = (0..64).map(|i| i as f32).collect();
    let din = gpu.stream.clone_htod(&input).unwrap();
    let mut out = gpu.stream.alloc_zeros::<f32>(64).unwrap();
    // SAFETY: the only test in this binary that sets the variable; launches read it each time.
    unsafe { std::env::set_var("KILN_EMU_RACECHECK", "1") };
    let fixed = 1i32;
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&din).arg(&mut out).arg(&fixed);
    // SAFETY: argument types match the kernel signature.
    unsafe { l.launch(common::one_block(64)) }.expect("the synchronized kernel has no race");
    let racy = 0i32;
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&din).arg(&mut out).arg(&racy);
    // SAFETY: argument types match the kernel signature.
    let r = unsafe { l.launch(common::one_block(64)) };
    let msg = common::failure(r, "CUDA_ERROR_LAUNCH_FAILED");
    assert!(
        msg.contains("shared-memory race in kernel `shift_left` block (0,0,0) thread (1,0,0)"),
        "{msg}"
    );
    assert!(
        msg.contains("shared byte 0x4") && msg.contains("thread 0"),
        "{msg}"
    );
    // Warp-synchronous code ordered by __syncwarp is not a race.
    let tree = gpu.func(WARP_TREE, "warp_tree");
    let mut sum = gpu.stream.alloc_zeros::<f32>(1).unwrap();
    let mut l = gpu.stream.launch_builder(&tree);
    l.arg(&din).arg(&mut sum);
    // SAFETY: argument types match the kernel signature.
    unsafe { l.launch(common::one_block(32)) }
        .expect("__syncwarp orders the warp's shared accesses");
    assert_eq!(
        gpu.stream.clone_dtoh(&sum).unwrap()[0],
        (0..32).sum::<i32>() as f32
    );
}

#[test]
fn barrier_in_divergent_branch_is_reported() {
    let _turn = serial();
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(DIVERGENT_BARRIER, "divergent_barrier");
    // SAFETY: `divergent_barrier` takes (float*) and writes a value a thread.
    let r = unsafe { common::block_out::<f32>(&gpu, &f, 64, 64) };
    let msg = common::failure(r, "CUDA_ERROR_LAUNCH_FAILED");
    assert!(
        msg.contains(
            "barrier divergence in kernel `divergent_barrier` block (0,0,0) thread (0,0,0)"
        ),
        "{msg}"
    );
    assert!(msg.contains("thread (32,0,0) has exited"), "{msg}");
}

#[test]
fn warp_collective_with_missing_lanes_is_reported() {
    let _turn = serial();
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(MISSING_LANES, "missing_lanes");
    // SAFETY: `missing_lanes` takes (int*) and writes a value a thread.
    let r = unsafe { common::block_out::<i32>(&gpu, &f, 32, 32) };
    let msg = common::failure(r, "CUDA_ERROR_LAUNCH_FAILED");
    assert!(
        msg.contains("warp collective with missing lanes in kernel `missing_lanes`"),
        "{msg}"
    );
    assert!(msg.contains("lane 20"), "{msg}");
}

const MISALIGNED: &str = r#"
extern "C" __global__ void misaligned(const char* bytes, float* out, int offset) {
  out[threadIdx.x] = *reinterpret_cast<const float*>(bytes + offset + 4 * threadIdx.x);
}
"#;

const SHARED_OOB: &str = r#"
extern "C" __global__ void shared_oob(float* out, int stride) {
  __shared__ float s[64];
  s[threadIdx.x * stride] = 1.0f;  // stride 2 runs past the 256-byte array
  __syncthreads();
  out[threadIdx.x] = s[threadIdx.x];
}
"#;

#[test]
fn misaligned_global_load_is_reported() {
    let _turn = serial();
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(MISALIGNED, "misaligned");
    let bytes = gpu.stream.alloc_zeros::<u8>(256).unwrap();
    let mut out = gpu.stream.alloc_zeros::<f32>(32).unwrap();
    let offset = 2i32;
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&bytes).arg(&mut out).arg(&offset);
    // SAFETY: argument types match the kernel signature.
    let r = unsafe { l.launch(common::one_block(32)) };
    let msg = common::failure(r, "CUDA_ERROR_MISALIGNED_ADDRESS");
    assert!(
        msg.contains("misaligned access in kernel `misaligned`") && msg.contains("4-byte access"),
        "{msg}"
    );
}

#[test]
fn shared_out_of_bounds_is_reported() {
    let _turn = serial();
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(SHARED_OOB, "shared_oob");
    let mut out = gpu.stream.alloc_zeros::<f32>(64).unwrap();
    let stride = 2i32;
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&mut out).arg(&stride);
    // SAFETY: argument types match the kernel signature.
    let r = unsafe { l.launch(common::one_block(64)) };
    let msg = common::failure(r, "CUDA_ERROR_ILLEGAL_ADDRESS");
    assert!(
        msg.contains("kernel `shared_oob` block (0,0,0) thread (32,0,0)")
            && msg.contains("shared address 0x100, 4-byte access, shared size 256"),
        "{msg}"
    );
}
