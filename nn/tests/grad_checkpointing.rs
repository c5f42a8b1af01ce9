//! `Model::set_grad_checkpointing` (timm's): one training step with every block checkpointed
//! gives the plain step's loss, the gradients of every parameter and of the input, and the BN
//! running statistics, bit for bit, on every family kiln registers; drop-path (and DropBlock in
//! the ResNet, dropout in the heads) draw inside and after the checkpointed blocks, so the
//! recompute must replay the forward's random stream.

use kiln_engine::{manual_seed_thread, DType, Tensor};
use kiln_nn::{create_model, Model, ModelArgs};

/// Everything one step leaves behind, as bits: the loss, the input's gradient, each
/// parameter's gradient and each buffer, in the model's order.
fn step(model: &dyn Model, x: &Tensor, weights: &Tensor) -> Vec<(String, Vec<u32>)> {
    let bits = |t: &Tensor| -> Vec<u32> {
        let v = t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
        v.iter().map(|&v| (v as f32).to_bits()).collect()
    };
    manual_seed_thread(42);
    let loss = model
        .forward(x)
        .and_then(|y| Ok(y.mul(weights)?.sum_all()?))
        .unwrap();
    loss.backward().unwrap();
    let mut out = vec![
        ("loss".to_string(), bits(&loss)),
        ("input".to_string(), bits(&x.grad().unwrap())),
    ];
    for t in model.named_tensors() {
        let value = match t.tensor.requires_grad() {
            true => t
                .tensor
                .grad()
                .unwrap_or_else(|| panic!("{} has no grad", t.name)),
            false => t.tensor.clone(),
        };
        out.push((t.name, bits(&value)));
    }
    out
}

/// Runs one step plainly and one checkpointed from the same parameters, buffers and random
/// stream, and compares them (with stochastic depth where the model has it: not DenseNet).
fn same_step_checkpointed(name: &str, img: usize, set_up: impl Fn(&mut dyn Model)) {
    manual_seed_thread(0);
    let args = ModelArgs {
        num_classes: 10,
        img_size: Some(img),
        drop_rate: 0.25,
        drop_path_rate: Some(if name.starts_with("densenet") {
            0.0
        } else {
            0.3
        }),
        zero_init_last: false,
        ..ModelArgs::default()
    };
    let mut model = create_model(name, &args).unwrap();
    set_up(model.as_mut());
    model.set_training(true);
    let x = Tensor::randn(&[2, 3, img, img], DType::F32, 1).unwrap();
    let x = x.requires_grad_(true).clone();
    let weights = Tensor::randn(&[2, 10], DType::F32, 2).unwrap();
    let buffers: Vec<Tensor> = model
        .named_tensors()
        .into_iter()
        .filter(|t| !t.tensor.requires_grad())
        .map(|t| t.tensor)
        .collect();
    let start: Vec<Tensor> = buffers
        .iter()
        .map(|b| b.contiguous_copy().unwrap())
        .collect();

    let plain = step(model.as_ref(), &x, &weights);
    for (b, s) in buffers.iter().zip(&start) {
        b.copy_(s).unwrap();
    }
    for t in model.named_tensors() {
        t.tensor.set_grad(None);
    }
    x.set_grad(None);
    assert!(!model.grad_checkpointing());
    model.set_grad_checkpointing(true).unwrap();
    assert!(model.grad_checkpointing());
    let checkpointed = step(model.as_ref(), &x, &weights);

    assert_eq!(plain.len(), checkpointed.len());
    for ((name_p, p), (name_c, c)) in plain.iter().zip(&checkpointed) {
        assert_eq!(name_p, name_c);
        assert!(p == c, "{name}: {name_p} differs with checkpointing");
    }
}

#[test]
fn resnet18_with_drop_block() {
    same_step_checkpointed("resnet18", 64, |m| m.set_drop_block(0.2).unwrap());
}

#[test]
fn efficientnet_b0() {
    same_step_checkpointed("efficientnet_b0", 64, |_| {});
}

#[test]
fn mobilenetv3_small_100() {
    same_step_checkpointed("mobilenetv3_small_100", 64, |_| {});
}

#[test]
fn convnext_atto() {
    same_step_checkpointed("convnext_atto", 64, |_| {});
}

#[test]
fn convnextv2_atto() {
    same_step_checkpointed("convnextv2_atto", 64, |_| {});
}

#[test]
fn densenet121() {
    same_step_checkpointed("densenet121", 64, |_| {});
}

/// timm's VGG and CSPNet assert that checkpointing stays off; kiln refuses it with the model's
/// name.
#[test]
fn vgg11_and_cspnet_refuse_checkpointing() {
    let args = ModelArgs {
        num_classes: 10,
        ..ModelArgs::default()
    };
    for name in ["vgg11", "cs3darknet_focus_s"] {
        let mut model = create_model(name, &args).unwrap();
        model.set_grad_checkpointing(false).unwrap();
        let err = model.set_grad_checkpointing(true).unwrap_err().to_string();
        assert!(
            err.contains(name) && err.contains("no gradient checkpointing"),
            "{err}"
        );
        assert!(!model.grad_checkpointing());
    }
}

#[test]
fn regnety_002() {
    same_step_checkpointed("regnety_002", 64, |_| {});
}

#[test]
fn mobileone_s0() {
    same_step_checkpointed("mobileone_s0", 32, |_| {});
}

#[test]
fn vit_tiny_patch16_224() {
    same_step_checkpointed("vit_tiny_patch16_224", 32, |_| {});
}

/// A CLIP tower: `norm_pre` ahead of the checkpointed blocks.
#[test]
fn vit_xsmall_patch16_clip_224() {
    same_step_checkpointed("vit_xsmall_patch16_clip_224", 32, |_| {});
}

/// Each checkpointed EVA block re-reads the shared rotary embedding in its recompute.
#[test]
fn eva02_tiny_patch14_224() {
    same_step_checkpointed("eva02_tiny_patch14_224", 28, |_| {});
}

/// ResNet-V2: each pre-activation block checkpointed across the stages (drop path drawn inside
/// it), the BatchNorms' running statistics as the plain step leaves them.
#[test]
fn resnetv2_18d() {
    same_step_checkpointed("resnetv2_18d", 32, |_| {});
}

/// XCiT: the XCA blocks on the patch grid and the class-attention blocks, each checkpointed.
#[test]
fn xcit_nano_12_p16_224() {
    same_step_checkpointed("xcit_nano_12_p16_224", 32, |_| {});
}

/// CAFormer: the separable-conv blocks on maps and the attention blocks on tokens, each
/// checkpointed, before the MLP head's dropout.
#[test]
fn caformer_s18() {
    same_step_checkpointed("caformer_s18", 32, |_| {});
}

/// The mixers: gMLP's blocks (the spatial gate across the tokens) and ResMLP's (the linear token
/// mixer, layer scale), each checkpointed. timm's mixers start with a zero classifier, through
/// which no gradient reaches the blocks: the reset one (PyTorch's init) passes them some.
#[test]
fn gmlp_and_resmlp() {
    let reset = |m: &mut dyn Model| m.reset_classifier(10, None).unwrap();
    same_step_checkpointed("gmlp_ti16_224", 32, reset);
    same_step_checkpointed("resmlp_12_224", 32, reset);
}

#[test]
fn swin_tiny_patch4_window7_224() {
    // 32²: the first stage's shifted, padded windows (the attention bias and its gradient)
    // recomputed inside each checkpointed block.
    same_step_checkpointed("swin_tiny_patch4_window7_224", 32, |_| {});
}
