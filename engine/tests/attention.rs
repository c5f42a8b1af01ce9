//! The fused scaled-dot-product attention on the CPU against the unfused composition written with
//! engine ops (scale, matmul, mask, softmax, matmul), forward and backward; its shape checks; and
//! its autocast behaviour. (Finite differences: gradcheck.rs; CUDA: cuda_conformance.rs.)

use kiln_engine::{amp, DType, Result, Tensor};

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
        let mask: Vec<f64> = (0..l * s)
            .map(|x| {
                if x % s <= x / s {
                    0.0
                } else {
                    f64::NEG_INFINITY
                }
            })
            .collect();
        scores = scores.add(&Tensor::from_vec(mask, &[l, s])?.to_dtype(q.dtype())?)?;
    }
    scores.softmax(-1)?.matmul(v)
}

/// (output, dq, dk, dv) of `f` on fresh leaves, seeded with a fixed output gradient.
fn run(
    inputs: &[Tensor; 3],
    f: impl Fn(&Tensor, &Tensor, &Tensor) -> Result<Tensor>,
) -> Vec<Vec<f64>> {
    let leaves: Vec<Tensor> = inputs
        .iter()
        .map(|t| t.detach().requires_grad_(true).clone())
        .collect();
    let y = f(&leaves[0], &leaves[1], &leaves[2]).unwrap();
    let seed = Tensor::randn(y.shape(), y.dtype(), 9).unwrap();
    y.backward_with(&seed).unwrap();
    let mut out = vec![y.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap()];
    for l in &leaves {
        let g = l.grad().expect("every input gets a gradient");
        out.push(g.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap());
    }
    out
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
