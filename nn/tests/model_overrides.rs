//! train.py's settings applied after creation: BN momentum and eps reach every BatchNorm layer,
//! head init scales the classifier and sets its bias.

use kiln_engine::{DType, Tensor};
use kiln_nn::{create_model, init_head, set_batch_norm, Model, ModelArgs};

fn small(num_classes: usize) -> ModelArgs {
    ModelArgs {
        num_classes,
        in_chans: 1,
        ..Default::default()
    }
}

fn values(model: &dyn Model, suffix: &str) -> Vec<(String, Vec<f32>)> {
    model
        .named_tensors()
        .into_iter()
        .filter(|t| t.name.ends_with(suffix))
        .map(|t| (t.name.clone(), t.tensor.to_vec_f32().unwrap()))
        .collect()
}

#[test]
fn bn_momentum_and_eps_reach_every_batch_norm() {
    // resnet18: 7x7 stem, plain downsample; resnet26d: deep stem, avg-pool downsample, bottlenecks.
    for name in ["resnet18", "resnet26d"] {
        kiln_engine::manual_seed_thread(3);
        let mut model = create_model(name, &small(5)).unwrap();
        let layers = values(model.as_ref(), "running_mean").len();
        assert_eq!(
            set_batch_norm(model.as_mut(), Some(0.0), Some(1e-3)),
            layers,
            "{name}"
        );
        let mut seen = Vec::new();
        kiln_nn::layers::for_each_batch_norm(model.as_mut(), &mut |bn| {
            seen.push((bn.momentum, bn.eps))
        });
        assert_eq!(seen, vec![(0.0, 1e-3); layers], "{name}");
        // Momentum 0 keeps every running statistic where it started through a training forward.
        let x = Tensor::randn(&[2, 1, 32, 32], DType::F32, 7).unwrap();
        model.forward(&x).unwrap();
        for (n, v) in values(model.as_ref(), "running_mean") {
            assert!(v.iter().all(|&m| m == 0.0), "{name} {n}");
        }
        for (n, v) in values(model.as_ref(), "running_var") {
            assert!(v.iter().all(|&s| s == 1.0), "{name} {n}");
        }
        // The default momentum moves them.
        set_batch_norm(model.as_mut(), Some(0.1), None);
        model.forward(&x).unwrap();
        for (n, v) in values(model.as_ref(), "running_mean") {
            assert!(v.iter().any(|&m| m != 0.0), "{name} {n}");
        }
    }
}

#[test]
fn head_init_scales_the_classifier_then_sets_its_bias() {
    kiln_engine::manual_seed_thread(4);
    let model = create_model("resnet18", &small(7)).unwrap();
    let w0 = values(model.as_ref(), "fc.weight").remove(0).1;
    let b0 = values(model.as_ref(), "fc.bias").remove(0).1;
    init_head(model.as_ref(), Some(0.25), None).unwrap();
    let w1 = values(model.as_ref(), "fc.weight").remove(0).1;
    let b1 = values(model.as_ref(), "fc.bias").remove(0).1;
    assert!(w0.iter().zip(&w1).all(|(a, b)| *b == a * 0.25));
    assert!(b0.iter().zip(&b1).all(|(a, b)| *b == a * 0.25));
    init_head(model.as_ref(), Some(2.0), Some(-1.5)).unwrap();
    let w2 = values(model.as_ref(), "fc.weight").remove(0).1;
    assert!(w1.iter().zip(&w2).all(|(a, b)| *b == a * 2.0));
    assert_eq!(values(model.as_ref(), "fc.bias").remove(0).1, vec![-1.5; 7]);
}

#[test]
fn head_init_without_a_classifier_names_the_model() {
    let model = create_model("resnet18", &small(0)).unwrap();
    init_head(model.as_ref(), None, None).unwrap();
    let e = init_head(model.as_ref(), Some(0.5), None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("resnet18") && e.contains("no classifier"), "{e}");
}
