//! EVA-02's composed ops on the CUDA backend (the emulator in CI) against the CPU backend,
//! forward and backward: the rotary position embedding (`apply_rot_embed_cat` after the class
//! token: pairs split by strided views, swapped and negated, concatenated, multiplied by the
//! broadcast sin and cos) and SwiGLU (`silu(gate) · x`, alone and in the packed and split MLPs
//! with the hidden LayerNorm).
//!
//! Tolerance: 1e-5 of each tensor's largest value (the MLPs sum a few dozen products per output
//! in different orders on the two backends; the rotation and the gate are elementwise).

use kiln_engine::{DType, Device, Generator, Tensor};
use kiln_nn::layers::{apply_rot_embed_after_prefix, rope_embed_cat, swiglu, SwiGluMlp};
use kiln_nn::Module;
use std::io::Write;

const TOL: f64 = 1e-5;

/// Whether a CUDA device (the emulator in CI) is there; says why not on stderr.
fn cuda() -> bool {
    match kiln_engine::cuda::device(0) {
        Ok(_) => true,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "skipped: {e}");
            false
        }
    }
}

/// `a` and `b` (host copies) agree within [`TOL`] of `a`'s largest value.
fn assert_close(what: &str, a: &Tensor, b: &Tensor) {
    let (a, b) = (a.to_vec_f32().unwrap(), b.to_vec_f32().unwrap());
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = a.iter().fold(1e-12f64, |m, v| m.max(v.abs() as f64));
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        let d = (*x as f64 - *y as f64).abs();
        assert!(d <= TOL * scale, "{what}[{i}]: cpu {x} cuda {y}");
    }
}

/// `f(inputs)` and the gradients of Σ f · w with respect to each input, on `device`.
fn run(
    inputs: &[Tensor],
    w: &Tensor,
    device: Device,
    f: &dyn Fn(&[Tensor]) -> Tensor,
) -> (Tensor, Vec<Tensor>) {
    let vars: Vec<Tensor> = inputs
        .iter()
        .map(|t| {
            let v = t.to_device(device).unwrap().detach();
            v.requires_grad_(true);
            v
        })
        .collect();
    let y = f(&vars);
    y.mul(&w.to_device(device).unwrap())
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let grads = vars.iter().map(|v| v.grad().unwrap()).collect();
    (y.detach(), grads)
}

/// `f` on the CPU and on CUDA from the same inputs: outputs and input gradients agree.
fn backends_agree(what: &str, shapes: &[&[usize]], f: &dyn Fn(&[Tensor]) -> Tensor) {
    let mut g = Generator::new(7);
    let inputs: Vec<Tensor> = shapes
        .iter()
        .map(|s| g.normal(s, 0.0, 1.0, DType::F32).unwrap())
        .collect();
    let out_shape = f(&inputs).shape().to_vec();
    let w = g.normal(&out_shape, 0.0, 1.0, DType::F32).unwrap();
    let (y_cpu, g_cpu) = run(&inputs, &w, Device::Cpu, f);
    let (y_gpu, g_gpu) = run(&inputs, &w, Device::Cuda(0), f);
    assert_close(&format!("{what} output"), &y_cpu, &y_gpu);
    for (i, (a, b)) in g_cpu.iter().zip(&g_gpu).enumerate() {
        assert_close(&format!("{what} input {i} grad"), a, b);
    }
}

#[test]
fn rotary_embedding_matches_the_cpu() {
    if !cuda() {
        return;
    }
    // 2 images, 3 heads of 16, a class token and a 3×3 grid
    let emb = rope_embed_cat(16, 3, 16, 10000.0).unwrap();
    backends_agree("rope", &[&[2, 3, 10, 16]], &|v| {
        let e = emb.to_device(v[0].device()).unwrap();
        apply_rot_embed_after_prefix(&v[0], &e, 1).unwrap()
    });
}

#[test]
fn swiglu_matches_the_cpu() {
    if !cuda() {
        return;
    }
    backends_agree("swiglu", &[&[4, 9, 24], &[4, 9, 24]], &|v| {
        swiglu(&v[0], &v[1]).unwrap()
    });
}

/// The packed MLP (EVA-02 tiny and small) and the split one with its hidden LayerNorm (base and
/// large, `scale_mlp`): output, input and parameter gradients, one copy of the weights on each
/// backend.
#[test]
fn swiglu_mlps_match_the_cpu() {
    if !cuda() {
        return;
    }
    for split in [false, true] {
        kiln_engine::manual_seed_thread(3);
        let cpu = SwiGluMlp::new(24, 40, split, split).unwrap();
        kiln_engine::manual_seed_thread(3);
        let gpu = SwiGluMlp::new(24, 40, split, split).unwrap();
        gpu.to_device(Device::Cuda(0)).unwrap();
        backends_agree(&format!("mlp (split {split})"), &[&[2, 7, 24]], &|v| {
            let m = if v[0].device() == Device::Cpu {
                &cpu
            } else {
                &gpu
            };
            m.forward(&v[0]).unwrap()
        });
        for (a, b) in cpu.named_parameters().iter().zip(gpu.named_parameters()) {
            let what = format!("mlp (split {split}) {}.grad", a.name);
            assert_close(&what, &a.tensor.grad().unwrap(), &b.tensor.grad().unwrap());
        }
    }
}
