//! Loads and stores of every width and vector shape, shared memory, branches, atomics under
//! contention, and the driver's copies and memset.

mod common;

use cudarc::driver::{LaunchConfig, PushKernelArg};

const VECTORS: &str = r#"
struct __align__(8) Pair { short a; unsigned char b; signed char c; float d; };
extern "C" __global__ void vectors(const float4* in4, const double2* in2, const Pair* pairs, float* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float4 v = __ldg(in4 + i);
  double2 d = in2[i];
  Pair p = pairs[i];
  float2 w = make_float2(v.x + v.w, v.y * v.z);
  reinterpret_cast<float2*>(out)[i * 2] = w;
  out[i * 4 + 2] = (float)(d.x - d.y) + p.a;
  out[i * 4 + 3] = (float)p.b + (float)p.c + p.d;
}
"#;

const BRANCHES: &str = r#"
extern "C" __global__ void branches(const int* in, int* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  int v = in[i], acc = 0;
  switch (v & 3) {
    case 0: acc = v * 3; break;
    case 1: for (int k = 0; k < (v & 15); ++k) acc += k * v; break;
    case 2: acc = v > 100 ? -v : v / 3; break;
    default: while (v > 1) { v = (v & 1) ? 3 * v + 1 : v / 2; ++acc; }
  }
  out[i] = acc;
}
"#;

const SHARED_REVERSE: &str = r#"
extern "C" __global__ void reverse(const float* in, float* out) {
  extern __shared__ float tile[];
  __shared__ int flag;
  int t = threadIdx.x, n = blockDim.x;
  if (t == 0) flag = 7;
  tile[t] = in[blockIdx.x * n + t];
  __syncthreads();
  out[blockIdx.x * n + t] = tile[n - 1 - t] + flag;
}
"#;

const ATOMICS: &str = r#"
extern "C" __global__ void atomics(const int* in, int n, int* ints, unsigned long long* wide, float* f, double* d) {
  __shared__ int hist[8];
  int t = threadIdx.x, i = blockIdx.x * blockDim.x + t;
  if (t < 8) hist[t] = 0;
  __syncthreads();
  if (i < n) {
    int v = in[i];
    atomicAdd(&ints[0], v);
    atomicMax(&ints[1], v);
    atomicMin(&ints[2], v);
    atomicOr(&ints[3], 1 << (v & 31));
    atomicXor(&ints[4], v);
    atomicInc((unsigned*)&ints[5], 9u);
    atomicAdd(&wide[0], (unsigned long long)v);
    atomicAdd(&f[0], 0.5f);
    atomicAdd(&d[0], (double)v);
    atomicAdd(&hist[v & 7], 1);
    int old = atomicCAS(&ints[6], 0, i + 1);
    if (old == 0) atomicExch(&ints[7], i);
  }
  __syncthreads();
  if (t < 8) atomicAdd(&ints[8 + t], hist[t]);
}
"#;

#[test]
fn vector_and_narrow_loads_and_stores() {
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(VECTORS, "vectors");
    let n = 37usize;
    let in4: Vec<f32> = (0..n * 4).map(|i| i as f32 * 0.5).collect();
    let in2: Vec<f64> = (0..n * 2).map(|i| i as f64 * 1.25).collect();
    // Pair: i16 a, u8 b, i8 c, f32 d (8 bytes).
    let pairs: Vec<u8> = (0..n)
        .flat_map(|i| {
            let mut p = Vec::new();
            p.extend_from_slice(&(-(i as i16) * 3).to_le_bytes());
            p.push(200 + (i % 50) as u8);
            p.push((-(i as i8)) as u8);
            p.extend_from_slice(&(i as f32 * 0.25).to_le_bytes());
            p
        })
        .collect();
    let (d4, d2, dp) = (
        gpu.stream.clone_htod(&in4).unwrap(),
        gpu.stream.clone_htod(&in2).unwrap(),
        gpu.stream.clone_htod(&pairs).unwrap(),
    );
    let mut out = gpu.stream.alloc_zeros::<f32>(n * 4).unwrap();
    let n32 = n as i32;
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&d4).arg(&d2).arg(&dp).arg(&mut out).arg(&n32);
    // SAFETY: argument types match the kernel signature.
    unsafe { l.launch(common::blocks((2, 1, 1), 32)) }.unwrap();
    let out = gpu.stream.clone_dtoh(&out).unwrap();
    for i in 0..n {
        let v = &in4[i * 4..i * 4 + 4];
        assert_eq!(out[i * 4], v[0] + v[3]);
        assert_eq!(out[i * 4 + 1], v[1] * v[2]);
        assert_eq!(
            out[i * 4 + 2],
            (in2[i * 2] - in2[i * 2 + 1]) as f32 + (-(i as i16) * 3) as f32
        );
        assert_eq!(
            out[i * 4 + 3],
            (200 + i % 50) as f32 + (-(i as i8)) as f32 + i as f32 * 0.25
        );
    }
}

fn branch_ref(mut v: i32) -> i32 {
    let mut acc = 0;
    match v & 3 {
        0 => acc = v * 3,
        1 => (0..(v & 15)).for_each(|k| acc += k * v),
        2 => acc = if v > 100 { -v } else { v / 3 },
        _ => {
            while v > 1 {
                v = if v & 1 == 1 { 3 * v + 1 } else { v / 2 };
                acc += 1;
            }
        }
    }
    acc
}

#[test]
fn divergent_branches_and_loops() {
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(BRANCHES, "branches");
    let input: Vec<i32> = (0..500).map(|i| (i * 7919) % 1000 - 20).collect();
    // SAFETY: `branches` takes (const int*, int*, int) and writes a value a thread.
    let out: Vec<i32> = unsafe { common::map_elems(&gpu, &f, &input, 1) };
    let want: Vec<i32> = input.iter().map(|&v| branch_ref(v)).collect();
    assert_eq!(out, want);
}

#[test]
fn dynamic_and_static_shared_memory() {
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(SHARED_REVERSE, "reverse");
    let (blocks, threads) = (3usize, 96usize);
    let input: Vec<f32> = (0..blocks * threads).map(|i| i as f32).collect();
    let din = gpu.stream.clone_htod(&input).unwrap();
    let mut out = gpu.stream.alloc_zeros::<f32>(input.len()).unwrap();
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&din).arg(&mut out);
    let cfg = LaunchConfig {
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (threads as u32, 1, 1),
        shared_mem_bytes: (threads * 4) as u32,
    };
    // SAFETY: argument types match the kernel signature.
    unsafe { l.launch(cfg) }.unwrap();
    let out = gpu.stream.clone_dtoh(&out).unwrap();
    for b in 0..blocks {
        for t in 0..threads {
            assert_eq!(
                out[b * threads + t],
                input[b * threads + threads - 1 - t] + 7.0
            );
        }
    }
}

#[test]
fn atomics_under_contention() {
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(ATOMICS, "atomics");
    let input: Vec<i32> = (0..1000).map(|i| (i * 37) % 101 - 50).collect();
    let n = input.len() as i32;
    let din = gpu.stream.clone_htod(&input).unwrap();
    let init = [
        0,
        i32::MIN,
        i32::MAX,
        0,
        0,
        0,
        0,
        -1,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ];
    let mut ints = gpu.stream.clone_htod(&init).unwrap();
    let mut wide = gpu.stream.alloc_zeros::<u64>(1).unwrap();
    let mut fl = gpu.stream.alloc_zeros::<f32>(1).unwrap();
    let mut db = gpu.stream.alloc_zeros::<f64>(1).unwrap();
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&din)
        .arg(&n)
        .arg(&mut ints)
        .arg(&mut wide)
        .arg(&mut fl)
        .arg(&mut db);
    // SAFETY: argument types match the kernel signature.
    unsafe { l.launch(common::blocks((8, 1, 1), 128)) }.unwrap();
    let ints = gpu.stream.clone_dtoh(&ints).unwrap();
    let sum: i32 = input.iter().sum();
    assert_eq!(ints[0], sum);
    assert_eq!(ints[1], *input.iter().max().unwrap());
    assert_eq!(ints[2], *input.iter().min().unwrap());
    assert_eq!(ints[3], input.iter().fold(0, |a, v| a | 1 << (v & 31)));
    assert_eq!(ints[4], input.iter().fold(0, |a, v| a ^ v));
    assert_eq!(ints[5], (input.len() % 10) as i32, "atomicInc wraps at 9");
    assert!((1..=input.len() as i32).contains(&ints[6]), "one CAS wins");
    assert_eq!(ints[7], ints[6] - 1, "the CAS winner exchanged its index");
    for k in 0..8 {
        assert_eq!(
            ints[8 + k],
            input.iter().filter(|v| (**v & 7) as usize == k).count() as i32,
            "shared histogram bin {k}"
        );
    }
    assert_eq!(
        gpu.stream.clone_dtoh(&wide).unwrap()[0],
        input
            .iter()
            .map(|v| *v as i64 as u64)
            .fold(0u64, u64::wrapping_add)
    );
    assert_eq!(gpu.stream.clone_dtoh(&fl).unwrap()[0], 500.0);
    assert_eq!(gpu.stream.clone_dtoh(&db).unwrap()[0], sum as f64);
}

#[test]
fn copies_and_memset_through_the_driver() {
    let Some(gpu) = common::gpu() else { return };
    let host: Vec<u32> = (0..1000).collect();
    let a = gpu.stream.clone_htod(&host).unwrap();
    let mut b = gpu.stream.alloc_zeros::<u32>(1000).unwrap();
    gpu.stream.memcpy_dtod(&a, &mut b).unwrap();
    assert_eq!(gpu.stream.clone_dtoh(&b).unwrap(), host);
    gpu.stream.memset_zeros(&mut b).unwrap();
    assert!(gpu.stream.clone_dtoh(&b).unwrap().iter().all(|v| *v == 0));
    let mut back = vec![0u32; 1000];
    gpu.stream.memcpy_dtoh(&a, &mut back).unwrap();
    assert_eq!(back, host);
    let (free, total) = cudarc::driver::result::mem_get_info().unwrap();
    assert!(free < total);
}

#[test]
fn unimplemented_driver_calls_say_not_supported() {
    let Some(_gpu) = common::gpu() else { return };
    let r =
        cudarc::driver::result::ctx::get_limit(cudarc::driver::sys::CUlimit::CU_LIMIT_STACK_SIZE);
    assert!(
        format!("{r:?}").contains("CUDA_ERROR_NOT_SUPPORTED"),
        "{r:?}"
    );
}

const SPIN: &str = r#"
extern "C" __global__ void spin(int* out) {
  __shared__ volatile int flag;
  if (threadIdx.x == 0) flag = 0;
  __syncthreads();
  if (threadIdx.x == 0) {
    while (flag == 0) {}  // waits for thread 33, which runs after it
    out[0] = flag;
  }
  if (threadIdx.x == 33) flag = 42;
}

// Thread 40 spins on a flag that lane 0 sets only after a warp shuffle.
extern "C" __global__ void spin_shfl(int* out) {
  __shared__ volatile int flag;
  if (threadIdx.x == 0) flag = 0;
  __syncthreads();
  if (threadIdx.x == 40) {
    while (flag == 0) {}
    out[0] = flag;
  }
  if (threadIdx.x < 32) {
    int v = __shfl_sync(0xffffffff, (int)threadIdx.x + 1, 5);
    if (threadIdx.x == 0) flag = v;
  }
}
"#;

#[test]
fn spin_wait_on_a_later_thread_makes_progress() {
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(SPIN, "spin");
    let mut out = gpu.stream.alloc_zeros::<i32>(1).unwrap();
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&mut out);
    // SAFETY: argument types match the kernel signature.
    unsafe { l.launch(common::one_block(64)) }.unwrap();
    assert_eq!(gpu.stream.clone_dtoh(&out).unwrap(), vec![42]);
    let f = gpu.module(SPIN).load_function("spin_shfl").unwrap();
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&mut out);
    // SAFETY: argument types match the kernel signature.
    unsafe { l.launch(common::one_block(64)) }.unwrap();
    assert_eq!(gpu.stream.clone_dtoh(&out).unwrap(), vec![6]);
}

#[test]
fn streams_fork_join_and_timed_events() {
    let Some(gpu) = common::gpu() else { return };
    let side = gpu.stream.fork().unwrap();
    let host: Vec<u32> = (0..4096).collect();
    let start = gpu
        .stream
        .record_event(Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT))
        .unwrap();
    let a = side.clone_htod(&host).unwrap();
    gpu.stream.join(&side).unwrap();
    let back = gpu.stream.clone_dtoh(&a).unwrap();
    let end = gpu
        .stream
        .record_event(Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT))
        .unwrap();
    assert_eq!(back, host);
    let ms = start.elapsed_ms(&end).unwrap();
    assert!((0.0..10_000.0).contains(&ms), "{ms}");
    let other = gpu.ctx.new_stream().unwrap();
    other.synchronize().unwrap();
    gpu.ctx.synchronize().unwrap();
}
