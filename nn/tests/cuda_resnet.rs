//! A training step of resnet18, a small ResNet with GroupNorm and ECA, tf_efficientnet_b0,
//! mobilenetv3_small_100 and a small ViT (fused attention) on the CUDA backend
//! (the emulator in CI) against the CPU backend: same weights and batch, so the loss, every
//! parameter gradient and the BatchNorm running statistics must agree. Tolerances are relative to each tensor's largest magnitude: the
//! backends sum in different orders (tiled GEMMs vs the CPU's blocked ones), and that error grows
//! through 18 layers of the backward.

use kiln_engine::{DType, Device, Generator, MemoryFormat, Tensor};
use kiln_nn::layers::{AttnLayer, NormLayer};
use kiln_nn::models::resnet::{self, ResNet, ResNetCfg, StemType};
use kiln_nn::models::swin::{self, SwinCfg, SwinTransformer};
use kiln_nn::models::vit::{self, VisionTransformer, VitCfg};
use kiln_nn::{create_model, load_state_dict, state_dict, Model, ModelArgs};
use std::collections::BTreeMap;
use std::io::Write;

const LOSS_RTOL: f64 = 1e-4;
const GRAD_TOL: f64 = 2e-3;
const BUFFER_TOL: f64 = 1e-4;
/// A tensor this far below the largest of its kind (gradients, buffers) has vanished analytically.
const VANISHING: f64 = 1e-4;

struct Step {
    loss: f64,
    grads: BTreeMap<String, Vec<f32>>,
    buffers: BTreeMap<String, Vec<f32>>,
}

fn step(model: &dyn Model, device: Device, channels_last: bool) -> Step {
    let mut g = Generator::new(7);
    let mut x = g.normal(&[4, 3, 32, 32], 0.0, 1.0, DType::F32).unwrap();
    if channels_last {
        x = x.to_memory_format(MemoryFormat::ChannelsLast).unwrap();
    }
    let y = Tensor::from_vec(vec![3i64, 8, 0, 5], &[4]).unwrap();
    let loss = model
        .forward(&x.to_device(device).unwrap())
        .unwrap()
        .cross_entropy(&y.to_device(device).unwrap(), 0.1)
        .unwrap();
    loss.backward().unwrap();
    let mut grads = BTreeMap::new();
    let mut buffers = BTreeMap::new();
    for t in model.named_tensors() {
        if t.tensor.dtype() != DType::F32 {
            continue;
        }
        if let Some(gr) = t.tensor.grad() {
            assert_eq!(gr.device(), device, "{} grad left the device", t.name);
            grads.insert(t.name.clone(), gr.to_vec::<f32>().unwrap());
        } else if t.kind == kiln_nn::Kind::Buffer {
            buffers.insert(t.name.clone(), t.tensor.to_vec::<f32>().unwrap());
        }
    }
    Step {
        loss: loss.item().unwrap(),
        grads,
        buffers,
    }
}

fn largest(v: &[f32]) -> f64 {
    v.iter().fold(1e-12f64, |m, &v| m.max(v.abs() as f64))
}

/// Every tensor of `got` [`close`] to `want`'s, tensors far below the largest of them
/// ([`VANISHING`]) relative to that largest value.
fn all_close(
    what: &str,
    got: &BTreeMap<String, Vec<f32>>,
    want: &BTreeMap<String, Vec<f32>>,
    tol: f64,
) {
    let scale = want.values().map(|w| largest(w)).fold(0.0, f64::max);
    for (name, w) in want {
        let floor = if largest(w) < VANISHING * scale {
            scale
        } else {
            0.0
        };
        close(&format!("{what} {name}"), &got[name], w, tol, floor);
    }
}

/// `got` within `tol` of `want`, relative to `want`'s largest value or `floor` if larger.
fn close(name: &str, got: &[f32], want: &[f32], tol: f64, floor: f64) {
    let scale = largest(want).max(floor);
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        let err = (a as f64 - b as f64).abs() / scale;
        assert!(
            err <= tol,
            "{name}[{i}]: cuda {a}, cpu {b} ({err:.2e} of the largest value)"
        );
    }
}

/// The (loss, gradient) tolerances of `name`. tf_efficientnet_b0 at 32x32 (batch statistics over
/// 4 values in its last stages, loss 5.8) amplifies float32 rounding: the CPU's own NCHW and
/// channels-last runs differ by 1.1e-4 in the loss and up to 3.2e-3 of a tensor's largest value in
/// the gradients, CUDA's by up to 4.6e-3 from the CPU's other layout (measured), so it is bounded
/// at about twice that. Its running statistics come from the same amplifying forward as the loss,
/// so they are held to the loss's bound (a running mean of blocks.5.3.bn2 parts by 1.0e-4).
fn tolerances(name: &str) -> (f64, f64, f64) {
    if name.contains("efficientnet") {
        (3e-4, 1e-2, 3e-4)
    } else {
        (LOSS_RTOL, GRAD_TOL, BUFFER_TOL)
    }
}

/// `name`'s step on both backends, NCHW and channels-last.
fn step_matches_the_cpu(name: &str) {
    steps_agree(name, &|args| create_model(name, args).unwrap());
}

/// The step of the model `build` makes on both backends, NCHW and channels-last.
fn steps_agree(name: &str, build: &dyn Fn(&ModelArgs) -> Box<dyn Model>) {
    steps_agree_in(name, build, &[false, true]);
}

/// [`steps_agree`] in the given layouts (`true`: channels-last).
fn steps_agree_in(name: &str, build: &dyn Fn(&ModelArgs) -> Box<dyn Model>, layouts: &[bool]) {
    if let Err(e) = kiln_engine::cuda::device(0) {
        let _ = writeln!(std::io::stderr(), "skipped: {e}");
        return;
    }
    let args = ModelArgs {
        num_classes: 10,
        // ViTs are built for the 32² batch: 2×2 patches and a class token, 5 tokens.
        img_size: name.contains("vit").then_some(32),
        // No stochastic depth (Swin's default is 0.1): the step's masks would be draws.
        drop_path_rate: Some(0.0),
        ..Default::default()
    };
    let (loss_rtol, grad_tol, buffer_tol) = tolerances(name);
    for &channels_last in layouts {
        // This thread's own generator: the binary's other tests, running beside it, cannot reseed
        // it between the draws (the tolerances were measured on these weights).
        kiln_engine::manual_seed_thread(0);
        let mut cpu = build(&args);
        let mut gpu = build(&args);
        load_state_dict(gpu.as_ref(), &state_dict(cpu.as_ref()), true).unwrap();
        if channels_last {
            cpu.set_memory_format(MemoryFormat::ChannelsLast).unwrap();
            gpu.set_memory_format(MemoryFormat::ChannelsLast).unwrap();
        }
        gpu.to_device(Device::Cuda(0)).unwrap();
        let (a, b) = (
            step(gpu.as_ref(), Device::Cuda(0), channels_last),
            step(cpu.as_ref(), Device::Cpu, channels_last),
        );
        let what = if channels_last {
            "channels-last"
        } else {
            "NCHW"
        };
        assert!(
            (a.loss - b.loss).abs() <= loss_rtol * b.loss.abs(),
            "{name} {what} loss: cuda {}, cpu {}",
            a.loss,
            b.loss
        );
        let params = cpu.named_parameters().len();
        assert_eq!(
            a.grads.len(),
            params,
            "{what}: every parameter has a gradient"
        );
        // A gradient or batch mean that vanishes analytically is rounding noise on both backends
        // (the bias gradient of a BN whose output reaches the loss only through a 1x1 conv and a
        // train-mode BN, as in the depthwise-separable blocks, and the running mean of that next
        // BN: its input's batch sum cancels); it is held to the model-wide scale.
        all_close(&format!("{what} grad"), &a.grads, &b.grads, grad_tol);
        all_close(what, &a.buffers, &b.buffers, buffer_tol);
    }
}

/// NCHW only: layout_equivalence.rs holds resnet18's channels-last step on CUDA to the same
/// float64 reference as its NCHW step, so with this test the two layouts agree with the CPU.
#[test]
fn resnet18_step_matches_the_cpu() {
    steps_agree_in(
        "resnet18",
        &|args| create_model("resnet18", args).unwrap(),
        &[false],
    );
}

/// resnet10t's blocks (one basic block per stage) with the D stem (the tiered stem's 24 channels
/// do not split into 32 groups), resnet50_gn's GroupNorm and ecaresnet's ECA in every block:
/// GroupNorm's LayerNorm rows and per-channel affine, and ECA's convolution across the pooled
/// channels, forward and backward on both backends.
#[test]
fn groupnorm_eca_resnet_step_matches_the_cpu() {
    let (_, rc, cfg) = resnet::variants()
        .into_iter()
        .find(|v| v.0 == "resnet10t")
        .unwrap();
    let rc = ResNetCfg {
        stem: StemType::Deep,
        attn: Some(AttnLayer::Eca),
        norm: NormLayer::GroupNorm,
        ..rc
    };
    steps_agree("resnet10t with GroupNorm and ECA", &|args| {
        Box::new(ResNet::new(&rc, args, cfg.clone()).unwrap())
    });
}

#[test]
fn tf_efficientnet_b0_step_matches_the_cpu() {
    step_matches_the_cpu("tf_efficientnet_b0");
}

#[test]
fn mobilenetv3_small_100_step_matches_the_cpu() {
    step_matches_the_cpu("mobilenetv3_small_100");
}

/// A 2-block ViT (width 64, 2 heads of dim 32) at 32²: 5 tokens through the fused attention's
/// forward and backward. (vit_tiny's 12 blocks of 192 take 12 minutes on the emulator.)
#[test]
fn small_vit_step_matches_the_cpu() {
    let small = VitCfg::new(16, 64, 2, 2);
    steps_agree("vit (dim 64, depth 2, 2 heads)", &|args| {
        let (_, _, cfg) = vit::variants().remove(0);
        Box::new(VisionTransformer::new(&small, args, cfg).unwrap())
    });
}

/// A small Swin (stage widths 32 to 256, heads of dim 32, blocks 2-1-1-1; registered nowhere,
/// swin_tiny's builder) at 32²: the first stage's 7×7 windows shifted over its 8² map padded to
/// 14², so the step runs the cyclic shift, the padding, the shift mask and the relative position
/// bias inside the fused attention, forward and backward (its gradient reaching the tables).
/// NCHW only: the tokens are NHWC from the patch embedding on, whatever the input's layout.
#[test]
fn small_swin_step_matches_the_cpu() {
    let small = SwinCfg {
        embed_dim: 32,
        depths: [2, 1, 1, 1],
        heads: [1, 2, 4, 8],
        window: 7,
    };
    let build = |args: &ModelArgs| -> Box<dyn Model> {
        let (_, _, cfg) = swin::variants().remove(0);
        let args = ModelArgs {
            img_size: Some(32),
            ..args.clone()
        };
        Box::new(SwinTransformer::new(&small, &args, cfg).unwrap())
    };
    steps_agree_in("swin (dim 32, blocks 2-1-1-1)", &build, &[false]);
}
