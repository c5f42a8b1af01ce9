//! f16/bf16 scalar and packed arithmetic, and `cvt` between every float and integer width.

mod common;

use cudarc::driver::{LaunchConfig, PushKernelArg};
use half::{bf16, f16};

const HALVES: &str = r#"
#include <cuda_fp16.h>
#include <cuda_bf16.h>
extern "C" __global__ void halves(const __half* a, const __nv_bfloat16* b, __half* ho, __nv_bfloat16* bo, float* fo, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  __half x = a[i];
  __nv_bfloat16 y = b[i];
  ho[i] = __hadd(__hmul(x, x), __float2half(1.5f));
  bo[i] = __hfma(y, y, __float2bfloat16(0.25f));
  half2 h2 = __halves2half2(x, x);
  h2 = __hmul2(h2, __floats2half2_rn(2.0f, 3.0f));
  __nv_bfloat162 b2 = __hadd2(__halves2bfloat162(y, y), __floats2bfloat162_rn(1.0f, -1.0f));
  fo[i*4] = __low2float(h2) + __high2float(h2);
  fo[i*4+1] = __bfloat162float(y) * 2.0f + (__hlt(x, __float2half(0.0f)) ? 1.0f : 0.0f);
  double d = (double)__half2float(x);
  fo[i*4+2] = (float)(d * d + 1e-3);
  fo[i*4+3] = __low2float(b2) * __high2float(b2);
}
"#;

const CVT: &str = r#"
extern "C" __global__ void cvt(const double* in, long long* iout, float* fout, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  double d = in[i];
  float f = (float)d;
  iout[i*6+0] = (long long)d;
  iout[i*6+1] = (unsigned char)(int)f;
  iout[i*6+2] = (short)(int)(f * 1000.0f);
  iout[i*6+3] = (long long)(unsigned)(fabs(d) * 3.0);
  iout[i*6+4] = __float2int_rn(f) + __float2int_rd(f) * 10 + __float2int_ru(f) * 100;
  iout[i*6+5] = (long long)__double2ll_rz(d * 1e12);
  fout[i*4+0] = (float)(long long)(d * 1e6);
  fout[i*4+1] = __fadd_rz(f, 1e-8f) - __fadd_ru(f, 1e-8f);
  fout[i*4+2] = (float)(signed char)(int)(d * 10.0);
  fout[i*4+3] = __double2float_rd(d) + __double2float_ru(d);
}
"#;

#[test]
fn f16_and_bf16_ops_round_like_the_hardware() {
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(HALVES, "halves");
    let n = 200usize;
    let a: Vec<f16> = (0..n)
        .map(|i| f16::from_f32((i as f32 * 0.29).sin() * 7.0))
        .collect();
    let b: Vec<bf16> = (0..n)
        .map(|i| bf16::from_f32((i as f32 * 0.13).cos() * 3.0))
        .collect();
    let (da, db) = (
        gpu.stream.clone_htod(&a).unwrap(),
        gpu.stream.clone_htod(&b).unwrap(),
    );
    let mut ho = gpu.stream.alloc_zeros::<f16>(n).unwrap();
    let mut bo = gpu.stream.alloc_zeros::<bf16>(n).unwrap();
    let mut fo = gpu.stream.alloc_zeros::<f32>(n * 4).unwrap();
    let n32 = n as i32;
    let mut l = gpu.stream.launch_builder(&f);
    l.arg(&da)
        .arg(&db)
        .arg(&mut ho)
        .arg(&mut bo)
        .arg(&mut fo)
        .arg(&n32);
    // SAFETY: argument types match the kernel signature.
    unsafe { l.launch(LaunchConfig::for_num_elems(n as u32)) }.unwrap();
    let (ho, bo, fo) = (
        gpu.stream.clone_dtoh(&ho).unwrap(),
        gpu.stream.clone_dtoh(&bo).unwrap(),
        gpu.stream.clone_dtoh(&fo).unwrap(),
    );
    for i in 0..n {
        let (x, y) = (a[i], b[i]);
        let sq = f16::from_f32(x.to_f32() * x.to_f32());
        assert_eq!(ho[i], f16::from_f32(sq.to_f32() + 1.5), "hadd/hmul at {i}");
        let fma = bf16::from_f64(y.to_f64() * y.to_f64() + 0.25);
        assert_eq!(bo[i], fma, "bf16 fma at {i}");
        let h2 =
            f16::from_f32(x.to_f32() * 2.0).to_f32() + f16::from_f32(x.to_f32() * 3.0).to_f32();
        assert_eq!(fo[i * 4], h2, "f16x2 mul at {i}");
        let lt = if x.to_f32() < 0.0 { 1.0 } else { 0.0 };
        assert_eq!(fo[i * 4 + 1], y.to_f32() * 2.0 + lt, "bf16 to f32 at {i}");
        let d = x.to_f64();
        assert_eq!(fo[i * 4 + 2], (d * d + 1e-3) as f32, "f64 path at {i}");
        let b2 =
            bf16::from_f32(y.to_f32() + 1.0).to_f32() * bf16::from_f32(y.to_f32() - 1.0).to_f32();
        assert_eq!(fo[i * 4 + 3], b2, "bf16x2 add at {i}");
    }
}

fn next_down(f: f32) -> f32 {
    if f > 0.0 {
        f32::from_bits(f.to_bits() - 1)
    } else if f < 0.0 {
        f32::from_bits(f.to_bits() + 1)
    } else {
        -f32::from_bits(1)
    }
}

fn next_up(f: f32) -> f32 {
    -next_down(-f)
}

/// f64 -> f32 rounded down and up.
fn f32_down_up(d: f64) -> (f32, f32) {
    let r = d as f32;
    match (r as f64).partial_cmp(&d).unwrap() {
        std::cmp::Ordering::Equal => (r, r),
        std::cmp::Ordering::Greater => (next_down(r), r),
        std::cmp::Ordering::Less => (r, next_up(r)),
    }
}

#[test]
fn cvt_rounds_and_saturates_in_every_direction() {
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(CVT, "cvt");
    let input: Vec<f64> = vec![
        0.0,
        1.5,
        -1.5,
        2.5,
        -2.5,
        0.1,
        -0.7,
        255.9,
        300.2,
        -129.3,
        3.0e9,
        -3.0e9,
        1e-9,
        7.777777777,
        1e20,
        -1e20,
    ];
    // SAFETY: `cvt` takes (const double*, long long*, float*, int) and writes 6 and 4 values a
    // thread.
    let (io, fo): (Vec<i64>, Vec<f32>) = unsafe { common::map_elems2(&gpu, &f, &input, (6, 4)) };
    for (i, &d) in input.iter().enumerate() {
        let f = d as f32;
        // CUDA float->int conversions saturate (Rust's `as` does too, and maps NaN to 0).
        let fi = f as i32;
        let want = [
            d as i64,
            fi as u8 as i64,
            (f * 1000.0) as i32 as i16 as i64,
            (d.abs() * 3.0) as u32 as i64,
            f.round_ties_even() as i32 as i64
                + (f.floor() as i32 as i64) * 10
                + (f.ceil() as i32 as i64) * 100,
            (d * 1e12) as i64,
        ];
        let got = &io[i * 6..i * 6 + 6];
        for k in [0, 1, 2, 3, 5] {
            assert_eq!(got[k], want[k], "int {k} of {d}");
        }
        assert_eq!(got[4] as i32, want[4] as i32, "int 4 of {d}");
        assert_eq!(fo[i * 4], ((d * 1e6) as i64) as f32, "i64->f32 of {d}");
        // f + 1e-8 is exact in f64 for small |f|; for large |f| it lies just above f.
        let (down, up) = if f.abs() < 1e6 {
            f32_down_up(f as f64 + 1e-8f32 as f64)
        } else {
            (f, next_up(f))
        };
        let rz_want = if f >= 0.0 { down } else { up };
        assert_eq!(fo[i * 4 + 1], rz_want - up, "fadd_rz - fadd_ru of {f}");
        assert_eq!(fo[i * 4 + 2], ((d * 10.0) as i32 as i8) as f32, "s8 of {d}");
        let (dd, du) = f32_down_up(d);
        assert_eq!(fo[i * 4 + 3], dd + du, "double2float_rd + _ru of {d}");
    }
}
