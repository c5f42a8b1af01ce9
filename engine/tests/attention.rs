//! The fused scaled-dot-product attention on the CPU against the unfused composition written with
//! engine ops (scale, matmul, mask, softmax, matmul), forward and backward; its shape checks; and
//! its autocast behaviour; with an additive bias (Swin's relative position bias and shift mask,
//! broadcast masks), its gradient included. (Finite differences: gradcheck.rs; CUDA:
//! cuda_conformance.rs.)

use kiln_engine::{amp, AttnOptions, DType, Result, Tensor};

/// softmax(scale·q·kᵀ + mask)·v with the causal mask as an additive 0/−∞ [L, S] matrix.
fn unfused(q: &Tensor, k: &Tensor, v: &Tensor, causal: bool) -> Result<Tensor> {
    let (l, s, e) = (
        q.shape()[q.rank() - 2],
        k.shape()[k.rank() - 2],
        q.shape()[q.rank() - 1],
    );
    let mut scores = q
        .mul_scalar(1.0 / (e as f64).sqrt())?
        .matmul(&k.transpose(-2, -1)?)?;
    if causal {
        scores = scores.add(&causal_mask(l, s, q.dtype()))?;
    }
    scores.softmax(-1)?.matmul(v)
}

/// The output of `f` on fresh leaves of `inputs` and each leaf's gradient, in f64, seeded with a
/// fixed output gradient.
fn on_leaves(inputs: &[Tensor], f: impl Fn(&[Tensor]) -> Result<Tensor>) -> Vec<Vec<f64>> {
    let leaves: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.detach().requires_grad_(true).clone())
        .collect();
    let y = f(&leaves).unwrap();
    let seed = Tensor::randn(y.shape(), y.dtype(), 9).unwrap();
    y.backward_with(&seed).unwrap();
    let mut out = vec![y.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap()];
    for l in &leaves {
        let g = l.grad().expect("every input gets a gradient");
        out.push(g.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap());
    }
    out
}

/// (output, dq, dk, dv) of `f` on fresh leaves, seeded with a fixed output gradient.
fn run(
    inputs: &[Tensor; 3],
    f: impl Fn(&Tensor, &Tensor, &Tensor) -> Result<Tensor>,
) -> Vec<Vec<f64>> {
    on_leaves(inputs, |t| f(&t[0], &t[1], &t[2]))
}

fn assert_close(what: &str, got: &[Vec<f64>], want: &[Vec<f64>], tol: f64) {
    for (n, (g, w)) in ["out", "dq", "dk", "dv"].iter().zip(got.iter().zip(want)) {
        assert_eq!(g.len(), w.len());
        for (i, (a, b)) in g.iter().zip(w).enumerate() {
            let err = (a - b).abs() / (1.0 + b.abs());
            assert!(err <= tol, "{what} {n}[{i}]: fused {a}, unfused {b}");
        }
    }
}

fn qkv(lead: &[usize], l: usize, s: usize, e: usize, dtype: DType) -> [Tensor; 3] {
    let shape = |n| [lead, &[n, e]].concat();
    [
        Tensor::randn(&shape(l), dtype, 1).unwrap(),
        Tensor::randn(&shape(s), dtype, 2).unwrap(),
        Tensor::randn(&shape(s), dtype, 3).unwrap(),
    ]
}

#[test]
fn fused_matches_unfused_forward_and_backward() {
    // [B, H, L, S, E] cases: ViT-like, ragged blocks with L ≠ S, and several blocks of each.
    let cases: [(&[usize], usize, usize, usize); 3] = [
        (&[2, 3], 17, 17, 64),
        (&[2, 3], 37, 45, 24),
        (&[2], 70, 130, 40),
    ];
    for (lead, l, s, e) in cases {
        for causal in [false, true] {
            for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 2e-5)] {
                let inputs = qkv(lead, l, s, e, dtype);
                let fused = run(&inputs, |q, k, v| {
                    Tensor::scaled_dot_product_attention(q, k, v, None, causal)
                });
                let reference = run(&inputs, |q, k, v| unfused(q, k, v, causal));
                let what = format!("{lead:?} L{l} S{s} E{e} causal={causal} {dtype:?}");
                assert_close(&what, &fused, &reference, tol);
            }
        }
    }
}

#[test]
fn explicit_scale_is_used() {
    let inputs = qkv(&[3], 9, 11, 8, DType::F64);
    let fused = run(&inputs, |q, k, v| {
        Tensor::scaled_dot_product_attention(q, k, v, Some(0.7), false)
    });
    // scale·q·kᵀ = (scale·√E·q)·kᵀ/√E.
    let reference = run(&inputs, |q, k, v| {
        unfused(&q.mul_scalar(0.7 * 8f64.sqrt())?, k, v, false)
    });
    assert_close("scale 0.7", &fused, &reference, 1e-12);
}

#[test]
fn mismatched_shapes_are_errors_naming_them() {
    let t = |s: &[usize]| Tensor::zeros(s, DType::F32).unwrap();
    let sdpa = |q: &[usize], k: &[usize], v: &[usize]| {
        Tensor::scaled_dot_product_attention(&t(q), &t(k), &t(v), None, false)
            .unwrap_err()
            .to_string()
    };
    let e = sdpa(&[2, 3, 5, 8], &[2, 3, 6, 7], &[2, 3, 6, 7]);
    assert!(
        e.contains("[2, 3, 5, 8]") && e.contains("[2, 3, 6, 7]"),
        "{e}"
    );
    let e = sdpa(&[2, 3, 5, 8], &[2, 4, 6, 8], &[2, 4, 6, 8]);
    assert!(e.contains("[2, 4, 6, 8]"), "{e}");
    let e = sdpa(&[2, 3, 5, 8], &[2, 3, 6, 8], &[2, 3, 6, 9]);
    assert!(e.contains("[2, 3, 6, 9]"), "{e}");
    let e = sdpa(&[8], &[8], &[8]);
    assert!(e.contains("[8]") && e.contains("[..., L, E]"), "{e}");
    let e = sdpa(&[2, 0, 8], &[2, 4, 8], &[2, 4, 8]);
    assert!(e.contains("[2, 0, 8]"), "{e}");
}

#[test]
fn autocast_runs_attention_in_the_low_dtype() {
    let inputs = qkv(&[2, 2], 13, 13, 32, DType::F32);
    let want = run(&inputs, |q, k, v| {
        Tensor::scaled_dot_product_attention(q, k, v, None, false)
    });
    let _guard = amp::autocast(DType::BF16).unwrap();
    let got = run(&inputs, |q, k, v| {
        let y = Tensor::scaled_dot_product_attention(q, k, v, None, false)?;
        assert_eq!(y.dtype(), DType::BF16);
        Ok(y)
    });
    // bf16 inputs, output and gradients: 8 bits of mantissa, a few roundings deep.
    assert_close("autocast bf16", &got, &want, 3e-2);
}

/// softmax(q·kᵀ/√E + bias)·v from engine ops: the broadcasting add materializes the scores.
fn unfused_biased(q: &Tensor, k: &Tensor, v: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let e = q.shape()[q.rank() - 1];
    q.mul_scalar(1.0 / (e as f64).sqrt())?
        .matmul(&k.transpose(-2, -1)?)?
        .add(bias)?
        .softmax(-1)?
        .matmul(v)
}

/// A [nW, 1, N, N] mask of 0 and −100 (Swin's shift mask): window w masks the pairs whose
/// (i + w) and (j + w) fall in different thirds.
fn shift_mask(nw: usize, n: usize, dtype: DType) -> Tensor {
    let vals: Vec<f64> = (0..nw * n * n)
        .map(|x| {
            let (w, i, j) = (x / (n * n), x / n % n, x % n);
            if (i + w) * 3 / (n + nw) == (j + w) * 3 / (n + nw) {
                0.0
            } else {
                -100.0
            }
        })
        .collect();
    Tensor::from_vec(vals, &[nw, 1, n, n])
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

/// (output, dq, dk, dv, dbias) of `f` on fresh leaves (the bias one too), as `run`.
fn run_biased(
    inputs: &[Tensor; 4],
    f: impl Fn(&Tensor, &Tensor, &Tensor, &Tensor) -> Result<Tensor>,
) -> Vec<Vec<f64>> {
    on_leaves(inputs, |t| f(&t[0], &t[1], &t[2], &t[3]))
}

#[test]
fn bias_matches_unfused_forward_and_backward() {
    // (q's leading dims, L, S, E, the learnable bias's shape, Swin's shift mask on top, causal):
    // Swin's [H, N, N] relative position bias over [B, nW, H] windows with and without the
    // [nW, 1, N, N] mask, a per-batch key bias under the causal mask, one [L, S] bias for every
    // problem, and a bias on B and H with nW broadcast between them.
    type Case<'a> = (&'a [usize], usize, usize, usize, &'a [usize], bool, bool);
    let cases: [Case; 5] = [
        (&[2, 4, 3], 49, 49, 16, &[3, 49, 49], false, false),
        (&[2, 4, 3], 49, 49, 16, &[3, 49, 49], true, false),
        (&[2, 3], 70, 45, 24, &[2, 1, 1, 45], false, true),
        (&[3], 17, 130, 8, &[17, 130], false, false),
        (&[2, 3, 2], 9, 11, 8, &[2, 1, 2, 9, 11], false, false),
    ];
    for (lead, l, s, e, bshape, masked, causal) in cases {
        for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 2e-5)] {
            let [q, k, v] = qkv(lead, l, s, e, dtype);
            let b = Tensor::randn(bshape, dtype, 4).unwrap();
            let mask = masked.then(|| shift_mask(lead[1], l, dtype));
            let with_mask = |b: &Tensor| match &mask {
                Some(m) => b.add(m),
                None => Ok(b.clone()),
            };
            let inputs = [q, k, v, b];
            let fused = run_biased(&inputs, |q, k, v, b| {
                let bias = with_mask(b)?;
                let opts = AttnOptions {
                    causal,
                    bias: Some(&bias),
                    ..Default::default()
                };
                Tensor::scaled_dot_product_attention_with(q, k, v, opts)
            });
            let reference = run_biased(&inputs, |q, k, v, b| {
                let bias = with_mask(b)?;
                if causal {
                    let m = causal_mask(l, s, dtype);
                    unfused_biased(q, k, v, &bias.add(&m)?)
                } else {
                    unfused_biased(q, k, v, &bias)
                }
            });
            let what = format!("{lead:?} L{l} S{s} bias {bshape:?} mask={masked} {dtype:?}");
            assert_close(&what, &fused[..4], &reference[..4], tol);
            assert_close(&format!("{what} dbias"), &fused[4..], &reference[4..], tol);
        }
    }
}

/// The causal mask as an additive 0/−∞ [L, S] matrix.
fn causal_mask(l: usize, s: usize, dtype: DType) -> Tensor {
    let mask: Vec<f64> = (0..l * s)
        .map(|x| {
            if x % s <= x / s {
                0.0
            } else {
                f64::NEG_INFINITY
            }
        })
        .collect();
    Tensor::from_vec(mask, &[l, s])
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

#[test]
fn bias_that_does_not_broadcast_is_an_error() {
    let [q, k, v] = qkv(&[2, 3], 5, 7, 8, DType::F32);
    for bad in [&[5, 6][..], &[4, 5, 7], &[1, 2, 3, 5, 7]] {
        let b = Tensor::zeros(bad, DType::F32).unwrap();
        let opts = AttnOptions {
            bias: Some(&b),
            ..Default::default()
        };
        let e = Tensor::scaled_dot_product_attention_with(&q, &k, &v, opts)
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("{bad:?}")), "{e}");
    }
}
