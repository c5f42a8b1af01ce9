//! CUDA's libdevice math (inlined PTX: polynomial, range reduction, directed-rounding tricks)
//! matches Rust's libm closely, in f32 and f64.

mod common;

const MATH: &str = r#"
extern "C" __global__ void math(const float* in, float* out, double* dout, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  float x = in[i];
  double d = x;
  float* o = out + i * 12;
  o[0] = sinf(x);
  o[1] = cosf(x);
  o[2] = logf(fabsf(x) + 0.5f);
  o[3] = powf(fabsf(x) + 0.1f, 1.7f);
  o[4] = erff(x);
  o[5] = atan2f(x, 1.5f);
  o[6] = fmodf(x, 1.3f);
  o[7] = expm1f(x * 0.5f);
  o[8] = isnan(x / 0.0f) + 2 * isinf(1.0f / (x - x)) + 4 * isfinite(x);
  o[9] = log1pf(fabsf(x));
  o[10] = cbrtf(x);
  o[11] = x / 3.7f;
  double* q = dout + i * 6;
  q[0] = sin(d);
  q[1] = exp(d);
  q[2] = log(fabs(d) + 0.5);
  q[3] = sqrt(fabs(d)) / (d + 10.0);
  q[4] = (double)((long long)(d * 1e6) / 7 % 1000);
  q[5] = pow(fabs(d) + 0.1, 0.3);
}
"#;

#[test]
fn libdevice_math_matches_rust() {
    let Some(gpu) = common::gpu() else { return };
    let f = gpu.func(MATH, "math");
    let x: Vec<f32> = (0..257).map(|i| (i as f32 - 128.0) * 0.173).collect();
    // SAFETY: `math` takes (const float*, float*, double*, int) and writes 12 and 6 values a
    // thread.
    let (out, dout): (Vec<f32>, Vec<f64>) = unsafe { common::map_elems2(&gpu, &f, &x, (12, 6)) };
    for (i, &x) in x.iter().enumerate() {
        let d = x as f64;
        let want = [
            d.sin(),
            d.cos(),
            (d.abs() + 0.5).ln(),
            (x.abs() + 0.1).powf(1.7) as f64,
            erf(d),
            d.atan2(1.5),
            (x % 1.3) as f64,
            (d * 0.5).exp_m1(),
            6.0 + if x == 0.0 { 1.0 } else { 0.0 },
            d.abs().ln_1p(),
            d.cbrt(),
            (x / 3.7) as f64,
        ];
        for (k, w) in want.iter().enumerate() {
            let got = out[i * 12 + k] as f64;
            assert!(
                (got - w).abs() <= 4e-6 * w.abs().max(1.0),
                "f32 fn {k} of {x}: got {got}, want {w}"
            );
        }
        let dwant = [
            d.sin(),
            d.exp(),
            (d.abs() + 0.5).ln(),
            d.abs().sqrt() / (d + 10.0),
            ((d * 1e6) as i64 / 7 % 1000) as f64,
            (d.abs() + 0.1).powf(0.3),
        ];
        for (k, w) in dwant.iter().enumerate() {
            let got = dout[i * 6 + k];
            assert!(
                (got - w).abs() <= 1e-14 * w.abs().max(1.0),
                "f64 fn {k} of {d}: got {got}, want {w}"
            );
        }
    }
}

/// erf by its Taylor series (|x| < 3) or 1 (beyond), accurate to ~1e-12 here.
fn erf(x: f64) -> f64 {
    if x.abs() > 5.0 {
        return x.signum();
    }
    let (mut term, mut sum, mut k) = (x, x, 0.0);
    while term.abs() > 1e-17 * sum.abs().max(1e-300) || k < 5.0 {
        k += 1.0;
        term *= -x * x / k;
        sum += term / (2.0 * k + 1.0);
        if k > 200.0 {
            break;
        }
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}
