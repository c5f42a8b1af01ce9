//! timm's `TestTimePoolHead` (validate.py's `--test-pool`): kiln's head over a model's feature
//! map gives timm's logits on the same weights and an input larger than the pooling window was
//! set for, and a model whose classifier does not read the feature map is refused, as timm fails
//! on it. Fixtures: tests/fixtures/test_time_pool.safetensors, made by
//! scripts/fixtures/make_test_time_pool_fixtures.py.

mod common;

use common::{fill, hashed_uniform, max_rel_diff};
use kiln_engine::Tensor;
use kiln_nn::layers::TestTimePoolHead;
use kiln_nn::{create_model, load_safetensors, Model, ModelArgs, Module};
use std::path::Path;

fn hashed(name: &str) -> Box<dyn Model> {
    let mut model = create_model(
        name,
        &ModelArgs {
            num_classes: 10,
            ..Default::default()
        },
    )
    .unwrap();
    for t in model.named_tensors() {
        t.tensor.copy_(&fill(&t.name, t.tensor.shape())).unwrap();
    }
    model.set_training(false);
    model
}

#[test]
fn test_time_pooling_gives_timms_logits() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/test_time_pool.safetensors");
    let expected = load_safetensors(&path).unwrap();
    let shape = [2, 3, 256, 288];
    let x: Vec<f32> = hashed_uniform("input.ttp", shape.iter().product())
        .iter()
        .map(|v| (v * 4.0 - 2.0) as f32)
        .collect();
    let x = Tensor::from_vec(x, &shape).unwrap();
    for name in ["resnet18", "efficientnet_b0", "convnext_atto"] {
        let base = hashed(name);
        let plain = base.forward(&x).unwrap();
        let pool = base.pretrained_cfg().pool_size;
        let head = TestTimePoolHead::new(base, pool).unwrap();
        let got = head.forward(&x).unwrap();
        let want = &expected[&format!("logits.{name}")];
        // Eval-mode logits of the same weights: the bound timm_parity.rs holds every family to.
        let diff = max_rel_diff(&got, want);
        assert!(diff < 1e-4, "{name}: {diff}");
        assert!(
            max_rel_diff(&plain, want) > 1e-2,
            "{name}: the head changes the logits"
        );
    }
}

#[test]
fn a_classifier_behind_a_head_layer_is_refused_as_in_timm() {
    let base = hashed("mobilenetv3_small_050");
    let e = TestTimePoolHead::new(base, [7, 7])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("1024") && e.contains("288"), "{e}");
}
