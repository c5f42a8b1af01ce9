//! Checkpoints timm wrote with torch.save: the optimizer state of timm's SGD and AdamW, restored
//! into kiln's, takes the same next step as torch's (fixtures from
//! scripts/fixtures/make_pth_fixtures.py), and layouts that do not map are reported.
use kiln_engine::{DType, Tensor};
use kiln_nn::layers::{BatchNorm2d, Linear, Sequential};
use kiln_nn::{load_safetensors, load_state_dict, Module};
use kiln_train::checkpoint::{torch_optimizer_state, Checkpoint};
use kiln_train::optim::{create_optimizer, Optimizer, OptimizerConfig};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/pth")
        .join(name)
}

/// Sequential(Linear(4, 3), BatchNorm(3)) with the fixture's weights: timm's groups put
/// `0.weight` alone in the decay group, after the other three.
fn model(ck: &Checkpoint) -> Sequential {
    let m = Sequential::new()
        .push(Linear::new(4, 3, true).unwrap())
        .push(BatchNorm2d::new(3).unwrap());
    load_state_dict(&m, &ck.model, true).unwrap();
    m
}

fn optimizer(opt: &str, m: &Sequential, weight_decay: f64) -> Box<dyn Optimizer> {
    let cfg = OptimizerConfig {
        opt: opt.into(),
        lr: Some(0.1),
        momentum: 0.9,
        weight_decay,
        ..OptimizerConfig::default()
    };
    create_optimizer(&cfg, m.named_parameters()).unwrap()
}

#[test]
fn timms_optimizer_state_resumes_the_next_step_exactly() {
    for opt in ["sgd", "adamw"] {
        let ck = Checkpoint::load(&fixture(&format!("optimizer_{opt}.pth"))).unwrap();
        assert_eq!((ck.meta.epoch, ck.meta.arch.as_str()), (0, "sequential"));
        let m = model(&ck);
        let mut o = optimizer(opt, &m, 0.05);
        let torch = ck
            .torch_optimizer
            .as_ref()
            .expect("timm's checkpoint has an optimizer");
        let (state, what) = torch_optimizer_state(torch, o.as_mut()).unwrap();
        assert!(what.ends_with("of 4 of 4 parameters"), "{opt}: {what}");
        o.load_state_dict(&state).unwrap();
        let next = load_safetensors(&fixture(&format!("optimizer_{opt}.safetensors"))).unwrap();
        for p in m.named_parameters() {
            p.tensor
                .set_grad(Some(next[&format!("grad.{}", p.name)].clone()));
        }
        o.step(0.1).unwrap();
        for p in m.named_parameters() {
            let got = p.tensor.to_vec_f32().unwrap();
            let want = next[&format!("after.{}", p.name)].to_vec_f32().unwrap();
            for (g, w) in got.iter().zip(&want) {
                // A step's few float32 operations, each rounding once, in another order.
                let tol = 8.0 * f32::EPSILON * w.abs().max(1.0);
                assert!(
                    (g - w).abs() <= tol,
                    "{opt} {}: {got:?} vs torch {want:?}",
                    p.name
                );
            }
        }
    }
}

#[test]
fn layouts_that_do_not_map_are_reported() {
    let ck = Checkpoint::load(&fixture("optimizer_sgd.pth")).unwrap();
    let torch = ck.torch_optimizer.as_ref().unwrap();
    let m = model(&ck);
    // Another optimizer: torch's SGD buffers are not Adam's moments.
    let err = torch_optimizer_state(torch, optimizer("adamw", &m, 0.05).as_mut()).unwrap_err();
    assert!(
        err.contains("'momentum_buffer', which kiln's optimizer does not keep"),
        "{err}"
    );
    // Other groups: without weight decay timm makes one group of all four.
    let err = torch_optimizer_state(torch, optimizer("sgd", &m, 0.0).as_mut()).unwrap_err();
    assert!(
        err.contains("param group 0 has 3 parameters, kiln's has 4"),
        "{err}"
    );
}

#[test]
fn a_bf16_training_checkpoint_reads_as_timm_wrote_it() {
    // timm's train.py output (tests/fixtures/pth at the root): every part and the metadata.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/pth/last.pth.tar");
    let ck = Checkpoint::load(&path).unwrap();
    assert_eq!(ck.meta.arch, "mobilenetv3_small_050");
    assert_eq!(ck.meta.epoch, 4);
    assert_eq!(ck.position().epoch, 5);
    assert!(ck.meta.metric.is_some());
    let ema = &ck.extra["state_dict_ema"];
    assert_eq!(ema.len(), ck.model.len());
    let w: &Tensor = &ck.model["classifier.weight"];
    assert_eq!((w.dtype(), w.shape()), (DType::BF16, &[4, 1024][..]));
    assert_eq!(ck.model["bn1.num_batches_tracked"].dtype(), DType::I64);
    let torch = ck.torch_optimizer.as_ref().unwrap();
    assert_eq!(
        torch
            .get("param_groups")
            .and_then(|g| g.as_seq())
            .map(<[_]>::len),
        Some(2)
    );
}
