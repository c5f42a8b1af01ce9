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
