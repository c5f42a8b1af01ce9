//! A ViT whose head reads the class token alone runs its last block for that token only
//! (`VisionTransformer::forward`). One training step through that path must give the full
//! path's loss and gradients (`forward_head(forward_features(x))`, which runs every token
//! through every block): for every parameter, the input, with drop-path and head dropout drawing
//! the same random stream, with and without gradient checkpointing, with layer scale (DeiT III)
//! and register tokens (DINOv2).

use kiln_engine::{manual_seed_thread, DType, Tensor};
use kiln_nn::{create_model, Model, ModelArgs};

/// The loss and every gradient (input first, then the parameters in the model's order) of one
/// step whose logits come from `logits`.
fn step(
    model: &dyn Model,
    x: &Tensor,
    weights: &Tensor,
    logits: impl Fn(&Tensor) -> Tensor,
) -> Vec<(String, Vec<f64>)> {
    let values = |t: &Tensor| t.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
    x.set_grad(None);
    for t in model.named_parameters() {
        t.tensor.set_grad(None);
    }
    manual_seed_thread(42);
    let loss = logits(x).mul(weights).unwrap().sum_all().unwrap();
    loss.backward().unwrap();
    let mut out = vec![
        ("loss".to_string(), values(&loss)),
        ("input".to_string(), values(&x.grad().unwrap())),
    ];
    for t in model.named_parameters() {
        let grad = t.tensor.grad();
        let grad = grad.unwrap_or_else(|| panic!("{} has no gradient", t.name));
        out.push((t.name, values(&grad)));
    }
    out
}

fn same_step_through_first_token(name: &str, img: usize, checkpointing: bool) {
    manual_seed_thread(0);
    let args = ModelArgs {
        num_classes: 10,
        img_size: Some(img),
        drop_rate: 0.25,
        drop_path_rate: Some(0.3),
        ..ModelArgs::default()
    };
    let mut model = create_model(name, &args).unwrap();
    model.set_grad_checkpointing(checkpointing).unwrap();
    model.set_training(true);
    let x = Tensor::randn(&[2, 3, img, img], DType::F32, 1).unwrap();
    let x = x.requires_grad_(true).clone();
    let weights = Tensor::randn(&[2, 10], DType::F32, 2).unwrap();
    let m = model.as_ref();
    let first_token = step(m, &x, &weights, |x| m.forward(x).unwrap());
    let full = step(m, &x, &weights, |x| {
        m.forward_head(&m.forward_features(x).unwrap(), false)
            .unwrap()
    });
    assert_eq!(first_token.len(), full.len());
    for ((what, a), (_, b)) in first_token.iter().zip(&full) {
        // Both paths add the same products in the same order; only the GEMMs' blocking over a
        // different number of rows may differ, within float32 rounding of the sums.
        let scale = b.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-30);
        let diff = a.iter().zip(b).fold(0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            diff <= 1e-5 * scale,
            "{name} (checkpointing {checkpointing}) {what}: differs by {diff:e} of {scale:e}"
        );
    }
}

#[test]
fn vit_tiny_first_token_step_equals_the_full_step() {
    same_step_through_first_token("vit_tiny_patch16_224", 32, false);
    same_step_through_first_token("vit_tiny_patch16_224", 32, true);
}

#[test]
fn layer_scale_and_register_tokens_first_token_step_equals_the_full_step() {
    same_step_through_first_token("deit3_small_patch16_224", 32, false);
    same_step_through_first_token("vit_small_patch14_reg4_dinov2", 28, true);
}
