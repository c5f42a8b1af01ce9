//! The fused attention twins: the CPU kernels (f64) against a naive reference that materializes
//! S, P and dS, then attention.cu (through its launchers, f32) against the CPU twin. Shapes span
//! several query/key blocks of each twin with ragged tails, lq ≠ lk, odd head dims (24, 40) and
//! the causal mask, and an additive bias broadcast over the problems in the ways `BiasMap` maps
//! (with its gradient). (f16/bf16 are covered by the engine's conformance suite.)

mod common;
use common::{assert_close, gpu, Gpu};
use kiln_kernels::cpu::attention::{self as cpu, AttnBwdInputs, AttnDims, BiasMap};
use kiln_kernels::cuda::attention::{self as cuda, AttnBwdPtrs};

/// (bh, lq, lk, d, causal).
type Shape = (usize, usize, usize, usize, bool);

const SHAPES: [Shape; 4] = [
    (3, 70, 70, 64, false),
    (2, 17, 45, 40, true),
    (1, 33, 20, 24, false),
    (2, 45, 45, 32, true),
];

/// Larger shapes for the CPU twin alone, so its 64-query × 128-key gemm blocks come several to a
/// problem with ragged tails: more keys than queries, more queries than keys, both causal.
const CPU_SHAPES: [Shape; 4] = [
    (2, 150, 300, 24, true),
    (1, 200, 131, 40, false),
    (1, 300, 140, 8, true),
    (1, 197, 197, 64, false),
];

/// Shapes with a bias and its (count, div): Swin's per-head bias over a batch of windows, a
/// bias shared by pairs of consecutive problems under the causal mask, one bias for every
/// problem, and (CPU only, last) several blocks a problem with more matrices than groups.
const BIAS_SHAPES: [(Shape, (usize, usize)); 4] = [
    ((6, 49, 49, 32, false), (3, 1)),
    ((8, 70, 45, 24, true), (2, 2)),
    ((2, 17, 17, 40, false), (1, 1)),
    ((8, 150, 140, 24, false), (4, 1)),
];

fn dims((bh, lq, lk, d, causal): Shape) -> AttnDims {
    AttnDims {
        bh,
        lq,
        lk,
        d,
        scale: 1.0 / (d as f64).sqrt(),
        causal,
        bias: None,
    }
}

/// A bias of `count·lq·lk` values with every seventh entry masked (−∞), never a whole row.
fn bias_values(n: usize, lk: usize) -> Vec<f64> {
    values(n, 5)
        .into_iter()
        .enumerate()
        .map(|(i, x)| {
            if i % 7 == 3 && i % lk != 0 {
                f64::NEG_INFINITY
            } else {
                x
            }
        })
        .collect()
}

fn values(n: usize, seed: usize) -> Vec<f64> {
    (0..n)
        .map(|i| (((i * 7919 + seed * 104_729) % 1013) as f64 - 506.0) / 253.0)
        .collect()
}

/// (O, lse, dQ, dK, dV, dBias).
type Grads<T> = (Vec<T>, Vec<T>, Vec<T>, Vec<T>, Vec<T>, Vec<T>);

/// The textbook computation, one problem at a time: S, P, dP and dS as full matrices.
fn naive(
    (q, k, v): (&[f64], &[f64], &[f64]),
    bias: Option<&[f64]>,
    dout: &[f64],
    a: AttnDims,
) -> Grads<f64> {
    let (lq, lk, d) = (a.lq, a.lk, a.d);
    let (mut o, mut lse) = (vec![0.0; q.len()], vec![0.0; a.bh * lq]);
    let (mut dq, mut dk, mut dv) = (vec![0.0; q.len()], vec![0.0; k.len()], vec![0.0; v.len()]);
    let mut db = vec![0.0; bias.map_or(0, |b| b.len())];
    let bmat = |h: usize| a.bias.map_or(0, |m| m.of(h) * lq * lk);
    let dotp = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(a, b)| a * b).sum::<f64>();
    for h in 0..a.bh {
        let (qo, ko) = (h * lq * d, h * lk * d);
        let row = |t: &[f64], base: usize, i: usize| t[base + i * d..][..d].to_vec();
        let mut p = vec![vec![0.0; lk]; lq];
        for i in 0..lq {
            let s: Vec<f64> = (0..lk)
                .map(|j| {
                    if j < a.keys(i) {
                        let b = bias.map_or(0.0, |b| b[bmat(h) + i * lk + j]);
                        dotp(&row(q, qo, i), &row(k, ko, j)) * a.scale + b
                    } else {
                        f64::NEG_INFINITY
                    }
                })
                .collect();
            let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
            lse[h * lq + i] = m + z.ln();
            for j in 0..lk {
                p[i][j] = (s[j] - m).exp() / z;
                for c in 0..d {
                    o[qo + i * d + c] += p[i][j] * v[ko + j * d + c];
                }
            }
        }
        for i in 0..lq {
            let dp: Vec<f64> = (0..lk)
                .map(|j| dotp(&row(dout, qo, i), &row(v, ko, j)))
                .collect();
            let mean: f64 = (0..lk).map(|j| p[i][j] * dp[j]).sum();
            for j in 0..lk {
                let ds = p[i][j] * (dp[j] - mean);
                if bias.is_some() {
                    db[bmat(h) + i * lk + j] += ds;
                }
                for c in 0..d {
                    dq[qo + i * d + c] += a.scale * ds * k[ko + j * d + c];
                    dk[ko + j * d + c] += a.scale * ds * q[qo + i * d + c];
                    dv[ko + j * d + c] += p[i][j] * dout[qo + i * d + c];
                }
            }
        }
    }
    (o, lse, dq, dk, dv, db)
}

fn cpu_twin<T: kiln_kernels::cpu::Real>(
    (q, k, v): (&[T], &[T], &[T]),
    bias: Option<&[T]>,
    dout: &[T],
    a: AttnDims,
) -> Grads<T> {
    let (mut o, mut lse) = (vec![T::zero(); q.len()], vec![T::zero(); a.bh * a.lq]);
    cpu::attention_fwd(q, k, v, bias, a, &mut o, &mut lse);
    let (mut dq, mut dk, mut dv) = (
        vec![T::zero(); q.len()],
        vec![T::zero(); k.len()],
        vec![T::zero(); v.len()],
    );
    let x = AttnBwdInputs {
        q,
        k,
        v,
        o: &o,
        lse: &lse,
        dout,
        bias,
    };
    let mut db = vec![T::zero(); bias.map_or(0, |b| b.len())];
    let grads = (&mut dq[..], &mut dk[..], &mut dv[..]);
    cpu::attention_bwd(x, a, grads, bias.map(|_| &mut db[..]));
    (o, lse, dq, dk, dv, db)
}

fn cuda_run(
    g: &Gpu,
    (q, k, v): (&[f32], &[f32], &[f32]),
    bias: Option<&[f32]>,
    dout: &[f32],
    a: AttnDims,
) -> Grads<f32> {
    let kern = g.kernels();
    let (dq_in, dk_in, dv_in, ddo) = (g.upload(q), g.upload(k), g.upload(v), g.upload(dout));
    let b_in = bias.map(|b| g.upload(b));
    let (o, lse) = (g.zeros::<f32>(q.len()), g.zeros::<f32>(a.bh * a.lq));
    let bias_ptr = b_in.as_ref().map(|b| g.ptr(b));
    let inputs = (g.ptr(&dq_in), g.ptr(&dk_in), g.ptr(&dv_in), bias_ptr);
    cuda::attention_fwd(&kern, "f32", inputs, (g.ptr(&o), g.ptr(&lse)), a).unwrap();
    let delta = g.zeros::<f32>(a.bh * a.lq);
    let (dq, dk, dv) = (
        g.zeros::<f32>(q.len()),
        g.zeros::<f32>(k.len()),
        g.zeros::<f32>(v.len()),
    );
    let x = AttnBwdPtrs {
        q: inputs.0,
        k: inputs.1,
        v: inputs.2,
        o: g.ptr(&o),
        lse: g.ptr(&lse),
        dout: g.ptr(&ddo),
        bias: bias_ptr,
    };
    let groups = cuda::dbias_groups(&a);
    let db = g.zeros::<f32>(bias.map_or(1, |b| b.len() * groups));
    let grads = (g.ptr(&dq), g.ptr(&dk), g.ptr(&dv), bias.map(|_| g.ptr(&db)));
    cuda::attention_bwd(&kern, "f32", x, g.ptr(&delta), grads, a).unwrap();
    let d = |s| g.download(s);
    // The partials [count, groups, lq, lk] summed over the groups, in order.
    let ls = a.lq * a.lk;
    let dbias = match bias {
        Some(b) => {
            let parts = d(&db);
            (0..b.len())
                .map(|e| {
                    (0..groups)
                        .map(|p| parts[(e / ls * groups + p) * ls + e % ls])
                        .sum()
                })
                .collect()
        }
        None => Vec::new(),
    };
    (d(&o), d(&lse), d(&dq), d(&dk), d(&dv), dbias)
}

fn max_err(got: &[f64], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
        .fold(0.0, f64::max)
}

/// Every case: (dims, whether the bias is on), the bias cases with their maps.
fn cases(shapes: &[Shape], bias_cases: usize) -> Vec<AttnDims> {
    let plain = shapes.iter().map(|&s| dims(s));
    let biased = BIAS_SHAPES[..bias_cases]
        .iter()
        .map(|&(s, (count, div))| AttnDims {
            bias: Some(BiasMap { count, div }),
            ..dims(s)
        });
    plain.chain(biased).collect()
}

/// Q, K, V, dO and the bias (when the map asks for one) of `a`.
fn operands(a: &AttnDims) -> [Vec<f64>; 5] {
    let (nq, nk) = (a.bh * a.lq * a.d, a.bh * a.lk * a.d);
    let nb = a.bias.map_or(0, |m| m.count * a.lq * a.lk);
    [
        values(nq, 1),
        values(nk, 2),
        values(nk, 3),
        values(nq, 4),
        bias_values(nb, a.lk),
    ]
}

const NAMES: [&str; 6] = ["o", "lse", "dq", "dk", "dv", "dbias"];

#[test]
fn cpu_twin_matches_naive_attention_in_f64() {
    let shapes: Vec<_> = SHAPES.into_iter().chain(CPU_SHAPES).collect();
    for a in cases(&shapes, BIAS_SHAPES.len()) {
        let [q, k, v, dout, b] = operands(&a);
        let bias = a.bias.map(|_| &b[..]);
        let want = naive((&q, &k, &v), bias, &dout, a);
        let got = cpu_twin((&q, &k, &v), bias, &dout, a);
        let pairs = [
            (&got.0, &want.0),
            (&got.1, &want.1),
            (&got.2, &want.2),
            (&got.3, &want.3),
            (&got.4, &want.4),
            (&got.5, &want.5),
        ];
        for (name, (g, w)) in NAMES.iter().zip(pairs) {
            let err = max_err(g, w);
            assert!(err < 1e-12, "{name} {a:?}: {err:.2e}");
        }
    }
}

#[test]
fn attention_cu_matches_the_cpu_twin() {
    let Some(g) = gpu() else { return };
    let f32s = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    for a in cases(&SHAPES, 3) {
        let ops = operands(&a);
        let [q, k, v, dout, b] = ops.each_ref().map(|x| f32s(x));
        let bias = a.bias.map(|_| &b[..]);
        let want = cpu_twin((&q, &k, &v), bias, &dout, a);
        let got = cuda_run(&g, (&q, &k, &v), bias, &dout, a);
        // f32 sums of up to 70 terms in different orders (online vs per-tile rescaling).
        let what = format!("{a:?}");
        assert_close(&format!("o {what}"), &got.0, &want.0, 1e-5, 1e-4);
        assert_close(&format!("lse {what}"), &got.1, &want.1, 1e-5, 1e-5);
        assert_close(&format!("dq {what}"), &got.2, &want.2, 1e-4, 1e-3);
        assert_close(&format!("dk {what}"), &got.3, &want.3, 1e-4, 1e-3);
        assert_close(&format!("dv {what}"), &got.4, &want.4, 1e-4, 1e-3);
        assert_close(&format!("dbias {what}"), &got.5, &want.5, 1e-4, 1e-3);
    }
}

#[test]
fn head_dims_past_64_are_refused() {
    let Some(g) = gpu() else { return };
    let a = dims((1, 4, 4, 80, false));
    let buf = g.zeros::<f32>(4 * 80);
    let p = g.ptr(&buf);
    let err = cuda::attention_fwd(&g.kernels(), "f32", (p, p, p, None), (p, p), a).unwrap_err();
    assert!(err.to_string().contains("head dim 80"), "{err}");
}
