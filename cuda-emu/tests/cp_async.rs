//! `cp.async` (cp-size 4, 8, 16; `.ca`, `.cg`; src-size and ignore-src zero fill; cache hints)
//! in a three-stage pipeline against plain loads, and the group semantics of `commit_group`,
//! `wait_group N` and `wait_all`.

mod common;

use cudarc::driver::{LaunchConfig, PushKernelArg};

/// One block of one thread.
const ONE_THREAD: LaunchConfig = common::one_block(1);

/// Floats per tile: 32 threads × 16 bytes.
const TILE: usize = 128;

const PIPELINE: &str = r#"
#define STAGES 3
#define TILE 128

__device__ void commit() { asm volatile("cp.async.commit_group;"); }

// Thread t copies floats [4t, 4t + 4) of tile `tile` into `stage`; floats at or past n read as 0.
__device__ void issue(float* stage, const float* src, int tile, int n, int mode) {
  int t = threadIdx.x, first = tile * TILE + t * 4;
  int valid = min(max(n - first, 0), 4);
  const float* g = src + (valid > 0 ? first : 0);
  unsigned dst = (unsigned)__cvta_generic_to_shared(stage + t * 4);
  if (mode == 0) {
    asm volatile("cp.async.cg.shared.global.L2::128B [%0], [%1], 16, %2;" :: "r"(dst), "l"(g), "r"(valid * 4));
  } else if (mode == 1) {
    for (int h = 0; h < 2; h++) {
      int bytes = min(max(valid - 2 * h, 0), 2) * 4;
      asm volatile("cp.async.ca.shared::cta.global [%0], [%1], 8, %2;" :: "r"(dst + 8 * h), "l"(g + (bytes ? 2 * h : 0)), "r"(bytes));
    }
  } else {
    for (int e = 0; e < 4; e++) {
      asm volatile("{\n\t.reg .pred p;\n\tsetp.ge.s32 p, %2, %3;\n\t"
                   "cp.async.ca.shared.global.L2::cache_hint [%0], [%1], 4, p, %4;\n\t}"
                   :: "r"(dst + 4 * e), "l"(e < valid ? g + e : g), "r"(e), "r"(valid), "l"(0ull));
    }
  }
}

extern "C" __global__ void pipeline(const float* src, float* out, int n, int mode) {
  __shared__ __align__(16) float buf[STAGES][TILE];
  int ntiles = (n + TILE - 1) / TILE;
  for (int s = 0; s < STAGES - 1; s++) {
    if (s < ntiles) issue(buf[s], src, s, n, mode);
    commit();
  }
  for (int i = 0; i < ntiles; i++) {
    int next = i + STAGES - 1;
    if (next < ntiles) issue(buf[next % STAGES], src, next, n, mode);
    commit();
    asm volatile("cp.async.wait_group 2;");
    __syncthreads();
    for (int j = threadIdx.x; j < TILE; j += 32) {
      out[i * TILE + j] = buf[i % STAGES][(j * 5) % TILE] * 2.0f + 1.0f;
    }
    __syncthreads();
  }
}

// One thread, two groups: what the thread sees before and after each wait.
extern "C" __global__ void groups(const float* src, float* out) {
  __shared__ __align__(16) float s[8];
  for (int i = 0; i < 8; i++) s[i] = -1.0f;
  unsigned d = (unsigned)__cvta_generic_to_shared(s);
  asm volatile("cp.async.ca.shared.global [%0], [%1], 16;" :: "r"(d), "l"(src));
  commit();
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" :: "r"(d + 16), "l"(src + 4));
  out[0] = s[0];
  commit();
  asm volatile("cp.async.wait_group 1;");
  out[1] = s[0];
  out[2] = s[4];
  asm volatile("cp.async.wait_all;");
  out[3] = s[4];
  out[4] = s[7];
}
"#;

/// The pipeline's output from plain loads: tile i's float j is src[i*TILE + (5j mod TILE)]
/// (0 past n), times 2 plus 1.
fn pipeline_reference(src: &[f32]) -> Vec<f32> {
    let tiles = src.len().div_ceil(TILE);
    (0..tiles * TILE)
        .map(|e| {
            let (i, j) = (e / TILE, e % TILE);
            let k = i * TILE + (j * 5) % TILE;
            src.get(k).copied().unwrap_or(0.0) * 2.0 + 1.0
        })
        .collect()
}

#[test]
fn three_stage_pipelines_with_zero_fill_match_plain_loads() {
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(PIPELINE, "pipeline");
    for n in [TILE * 5 + 37, TILE * 4 + 2, TILE * 3 + 1, 7] {
        let src: Vec<f32> = (0..n).map(|i| (i as f32 * 0.61).sin() + 2.0).collect();
        let want = pipeline_reference(&src);
        let dsrc = gpu.stream.clone_htod(&src).unwrap();
        for mode in 0..3i32 {
            let mut out = gpu.stream.alloc_zeros::<f32>(want.len()).unwrap();
            let n32 = n as i32;
            let mut l = gpu.stream.launch_builder(&f);
            l.arg(&dsrc).arg(&mut out).arg(&n32).arg(&mode);
            let cfg = common::one_block(32);
            // SAFETY: argument types match the kernel signature.
            unsafe { l.launch(cfg) }.unwrap();
            let got = gpu.stream.clone_dtoh(&out).unwrap();
            assert_eq!(got, want, "n={n} mode={mode}");
        }
    }
}

#[test]
fn groups_complete_at_their_wait_in_commit_order() {
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(PIPELINE, "groups");
    let src: Vec<f32> = (0..8).map(|i| i as f32 + 10.0).collect();
    let dsrc = gpu.stream.clone_htod(&src).unwrap();
    let mut out = gpu.stream.alloc_zeros::<f32>(5).unwrap();
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&dsrc).arg(&mut out);
    // SAFETY: argument types match the kernel signature.
    unsafe { l.launch(ONE_THREAD) }.unwrap();
    let got = gpu.stream.clone_dtoh(&out).unwrap();
    // Before any wait the destination keeps its old bytes (the emulator's documented choice);
    // wait_group 1 completes the older group only; wait_all the rest.
    assert_eq!(got, [-1.0, 10.0, -1.0, 14.0, 17.0]);
}

const BAD: &str = r#"
extern "C" __global__ void bad(const float* src, int offset, int src_size) {
  __shared__ __align__(16) float s[8];
  unsigned d = (unsigned)__cvta_generic_to_shared(s);
  asm volatile("cp.async.ca.shared.global [%0], [%1], 16, %2;" :: "r"(d + offset), "l"(src), "r"(src_size));
  asm volatile("cp.async.wait_all;");
}
"#;

#[test]
fn bad_copies_fault_at_the_cp_async() {
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(BAD, "bad");
    let src = gpu.stream.alloc_zeros::<f32>(4).unwrap();
    for (offset, src_size, code, text) in [
        (8i32, 16i32, "MISALIGNED_ADDRESS", "cp.async shared address"),
        (32, 16, "ILLEGAL_ADDRESS", "shared size 32"),
        (0, 17, "ASSERT", "src-size 17 exceeds cp-size 16"),
    ] {
        let mut l = gpu.stream.launch_builder(&f);
        l.arg(&src).arg(&offset).arg(&src_size);
        // SAFETY: argument types match the kernel signature.
        let r = unsafe { l.launch(ONE_THREAD) }.map(|_| ());
        assert!(
            common::failed_with(r, code),
            "offset {offset} src-size {src_size}"
        );
        let msg = common::last_error();
        assert!(msg.contains(text), "{msg}");
    }
}
