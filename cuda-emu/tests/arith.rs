//! Integer and float arithmetic, conversions, comparisons and halves, against Rust references.

mod common;

use cudarc::driver::{LaunchConfig, PushKernelArg};

const ARITH: &str = r#"
extern "C" __global__ void arith(const float* a, const float* b, float* out, int* iout, unsigned n) {
  unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float x = a[i], y = b[i];
  out[i*8+0] = x + y * 2.0f;
  out[i*8+1] = x / y;
  out[i*8+2] = sqrtf(fabsf(x)) + rsqrtf(fabsf(y) + 1.0f);
  out[i*8+3] = __expf(x) + __logf(fabsf(y)+1.0f) + __sinf(x) + __cosf(y);
  out[i*8+4] = expf(x * 0.1f) + tanhf(y);
  out[i*8+5] = fminf(x, y) - fmaxf(x, y) + floorf(x) + ceilf(y) + truncf(x) + rintf(y);
  out[i*8+6] = (float)((int)x) + (float)(unsigned)(fabsf(y));
  out[i*8+7] = fmaf(x, y, 1.0f);
  int ix = (int)(x * 100.0f), iy = (int)(y * 100.0f) | 1;
  iout[i*8+0] = ix * iy + (ix >> 3) - (iy << 2);
  iout[i*8+1] = ix / iy + ix % iy;
  iout[i*8+2] = (unsigned)ix / (unsigned)(iy & 0xff | 1) ^ (ix & iy);
  iout[i*8+3] = __popc(ix) + __clz(iy) + __ffs(ix) + __brev(ix);
  iout[i*8+4] = __mulhi(ix, iy) + __umulhi(ix, iy) + max(ix, iy) - min(ix, iy);
  iout[i*8+5] = abs(ix) + (ix > iy ? 7 : 3);
  long long l = (long long)ix * 123456789LL;
  iout[i*8+6] = (int)(l >> 20) + (int)(l / 1000);
  iout[i*8+7] = __funnelshift_l(ix, iy, 5) + __byte_perm(ix, iy, 0x5140);
}
"#;

fn ffs(v: i32) -> i32 {
    if v == 0 {
        0
    } else {
        v.trailing_zeros() as i32 + 1
    }
}

fn byte_perm(x: i32, y: i32, s: u32) -> i32 {
    let bytes = ((y as u32 as u64) << 32) | x as u32 as u64;
    (0..4).fold(0u32, |acc, k| {
        acc | (((bytes >> (8 * ((s >> (4 * k)) & 7))) & 0xff) as u32) << (8 * k)
    }) as i32
}

fn int_ref(x: f32, y: f32) -> [i32; 8] {
    let ix = (x * 100.0) as i32;
    let iy = (y * 100.0) as i32 | 1;
    let l = ix as i64 * 123456789;
    let funnel = (((iy as u32 as u64) << 32 | ix as u32 as u64) << 5 >> 32) as i32;
    [
        ix.wrapping_mul(iy) + (ix >> 3) - (iy << 2),
        ix / iy + ix % iy,
        ((ix as u32 / ((iy & 0xff) | 1) as u32) ^ (ix & iy) as u32) as i32,
        (ix.count_ones() as i32) + iy.leading_zeros() as i32 + ffs(ix) + ix.reverse_bits(),
        ((ix as i64 * iy as i64) >> 32) as i32
            + ((ix as u32 as u64 * iy as u32 as u64) >> 32) as i32
            + ix.max(iy)
            - ix.min(iy),
        ix.abs() + if ix > iy { 7 } else { 3 },
        ((l >> 20) as i32).wrapping_add((l / 1000) as i32),
        funnel.wrapping_add(byte_perm(ix, iy, 0x5140)),
    ]
}

fn float_ref(x: f32, y: f32) -> [f32; 8] {
    [
        x + y * 2.0,
        x / y,
        x.abs().sqrt() + 1.0 / (y.abs() + 1.0).sqrt(),
        x.exp() + (y.abs() + 1.0).ln() + x.sin() + y.cos(),
        (x * 0.1).exp() + y.tanh(),
        x.min(y) - x.max(y) + x.floor() + y.ceil() + x.trunc() + y.round_ties_even(),
        (x as i32) as f32 + (y.abs() as u32) as f32,
        x.mul_add(y, 1.0),
    ]
}

#[test]
fn int_and_float_arithmetic_match_rust() {
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(ARITH, "arith");
    let n = 300usize;
    let a: Vec<f32> = (0..n)
        .map(|i| (i as f32 * 0.37).sin() * 5.0 - 0.3)
        .collect();
    let b: Vec<f32> = (0..n)
        .map(|i| (i as f32 * 0.11).cos() * 3.0 + 0.05)
        .collect();
    let (da, db) = (
        gpu.stream.clone_htod(&a).unwrap(),
        gpu.stream.clone_htod(&b).unwrap(),
    );
    let mut out = gpu.stream.alloc_zeros::<f32>(n * 8).unwrap();
    let mut iout = gpu.stream.alloc_zeros::<i32>(n * 8).unwrap();
    let n32 = n as u32;
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&da).arg(&db).arg(&mut out).arg(&mut iout).arg(&n32);
    // SAFETY: argument types match the kernel signature.
    unsafe { l.launch(LaunchConfig::for_num_elems(n as u32)) }.unwrap();
    let out = gpu.stream.clone_dtoh(&out).unwrap();
    let iout = gpu.stream.clone_dtoh(&iout).unwrap();
    for i in 0..n {
        let fr = float_ref(a[i], b[i]);
        for k in 0..8 {
            let (got, want) = (out[i * 8 + k], fr[k]);
            let tol = if k == 3 || k == 4 { 1e-4 } else { 1e-6 } * want.abs().max(1.0);
            assert!(
                (got - want).abs() <= tol,
                "float {k} at {i}: got {got}, want {want} (x={}, y={})",
                a[i],
                b[i]
            );
        }
        assert_eq!(
            &iout[i * 8..i * 8 + 8],
            &int_ref(a[i], b[i]),
            "ints at {i} (x={}, y={})",
            a[i],
            b[i]
        );
    }
}

const BITS: &str = r#"
extern "C" __global__ void bits(const int* in, int* out) {
  int t = threadIdx.x;
  int a = in[t], b = in[t + 1], c = in[t + 2];
  int x;
  asm("lop3.b32 %0, %1, %2, %3, 0x96;" : "=r"(x) : "r"(a), "r"(b), "r"(c));
  out[t * 4] = x;
  out[t * 4 + 1] = __dp4a(a, b, c);
  out[t * 4 + 2] = __dp4a((unsigned)a, (unsigned)b, (unsigned)c);
  float f = __int_as_float(a);
  int fin;
  asm("{ .reg .pred p; testp.finite.f32 p, %1; selp.s32 %0, 1, 0, p; }" : "=r"(fin) : "f"(f));
  out[t * 4 + 3] = fin;
}
"#;

fn dp4a(a: i32, b: i32, c: i32, signed: bool) -> i32 {
    let byte = |v: i32, k: u32| {
        let x = (v >> (8 * k)) & 0xff;
        if signed {
            x as u8 as i8 as i32
        } else {
            x
        }
    };
    (0..4).fold(c, |acc, k| acc.wrapping_add(byte(a, k) * byte(b, k)))
}

#[test]
fn lop3_dp4a_and_testp() {
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(BITS, "bits");
    let mut input: Vec<i32> = (0..34)
        .map(|i: i32| i.wrapping_mul(-1_640_531_535))
        .collect();
    input[5] = 0x7f80_0000; // +inf
    input[6] = 0x7fc0_0000; // NaN
                            // SAFETY: `bits` takes (const int*, int*) and writes 4 values a thread.
    let out: Vec<i32> = unsafe { common::block_in_out(&gpu, &f, &input, 32, 32 * 4) };
    for t in 0..32 {
        let (a, b, c) = (input[t], input[t + 1], input[t + 2]);
        assert_eq!(out[t * 4], a ^ b ^ c, "lop3 at {t}");
        assert_eq!(out[t * 4 + 1], dp4a(a, b, c, true), "dp4a signed at {t}");
        assert_eq!(out[t * 4 + 2], dp4a(a, b, c, false), "dp4a unsigned at {t}");
        assert_eq!(
            out[t * 4 + 3],
            i32::from(f32::from_bits(a as u32).is_finite()),
            "testp at {t}"
        );
    }
}

const DIRECTED: &str = r#"
extern "C" __global__ void directed(const float* in, float* out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float x = in[i], y = in[n - 1 - i];
  out[i * 8 + 0] = __fsqrt_rd(x);
  out[i * 8 + 1] = __fsqrt_ru(x);
  out[i * 8 + 2] = __frcp_rd(x);
  out[i * 8 + 3] = __frcp_ru(x);
  out[i * 8 + 4] = __fmul_rd(x, y);
  out[i * 8 + 5] = __fmul_ru(x, y);
  out[i * 8 + 6] = __fdiv_rd(x, y);
  out[i * 8 + 7] = __fdiv_ru(x, y);
}
"#;

/// Checks `lo <= exact <= hi` with `hi` at most one ulp above `lo` (all positive here), where `below(v)` tells
/// whether `v` is at or below the exact result (decided in exact f64 arithmetic).
fn brackets(lo: f32, hi: f32, below: impl Fn(f64) -> std::cmp::Ordering, what: &str) {
    use std::cmp::Ordering::*;
    assert!(
        below(lo as f64) != Greater,
        "{what}: rd {lo} above the exact value"
    );
    assert!(
        below(hi as f64) != Less,
        "{what}: ru {hi} below the exact value"
    );
    assert!(
        hi == lo || hi.to_bits() == lo.to_bits() + 1,
        "{what}: {lo} and {hi} more than an ulp apart"
    );
}

#[test]
fn directed_rounding_sqrt_rcp_mul_div() {
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(DIRECTED, "directed");
    let x: Vec<f32> = (1..=200)
        .map(|i| i as f32 * 0.731 + 1.0 / i as f32)
        .collect();
    let n = x.len();
    // SAFETY: `directed` takes (const float*, float*, int) and writes 8 values a thread.
    let o: Vec<f32> = unsafe { common::map_elems(&gpu, &f, &x, 8) };
    for i in 0..n {
        let (a, b) = (x[i] as f64, x[n - 1 - i] as f64);
        let r = &o[i * 8..i * 8 + 8];
        // Squares and products of f32 values are exact in f64.
        brackets(r[0], r[1], |v| (v * v).partial_cmp(&a).unwrap(), "sqrt");
        brackets(r[2], r[3], |v| (v * a).partial_cmp(&1.0).unwrap(), "rcp");
        brackets(r[4], r[5], |v| v.partial_cmp(&(a * b)).unwrap(), "mul");
        brackets(r[6], r[7], |v| (v * b).partial_cmp(&a).unwrap(), "div");
    }
}
