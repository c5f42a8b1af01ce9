//! Pruning against fixtures (scripts/fixtures/make_prune_fixtures.py): on a small conv net the
//! L1, L2, FPGM and BN-scale importance of each group, and the rankings they give, equal a numpy
//! reference; network slimming's BatchNorm gradient (`γ.grad += λ·sign(γ)`) equals PyTorch's.

use kiln_engine::{Conv2dParams, Tensor};
use kiln_nn::layers::{BatchNorm2d, Conv2d, Linear};
use kiln_nn::prune::{add_slimming_grad, importance, Criterion, DependencyGraph};
use kiln_nn::{Children, Module, Result};
use serde_json::Value;

/// conv1 → bn1 → ReLU → conv2 → bn2 → ReLU → global average → fc, as the fixture's torch net.
#[derive(Children)]
struct Net {
    #[child]
    conv1: Conv2d,
    #[child]
    bn1: BatchNorm2d,
    #[child]
    conv2: Conv2d,
    #[child]
    bn2: BatchNorm2d,
    #[child]
    fc: Linear,
}

impl Module for Net {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let h = self.bn1.forward(&self.conv1.forward(x)?)?.relu()?;
        let h = self.bn2.forward(&self.conv2.forward(&h)?)?.relu()?;
        self.fc.forward(&h.mean_dims(&[2, 3], false)?)
    }

    /// Not prunable: kiln's pruning has no rule for this layer.
    fn tensors_resizable(&self) -> bool {
        false
    }
}

fn fixture() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/prune/slimming.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn tensor(v: &Value) -> Tensor {
    let shape: Vec<usize> = v["shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    Tensor::from_vec(floats(&v["data"]), &shape).unwrap()
}

fn net(fx: &Value) -> Net {
    let pad = Conv2dParams {
        padding: [1, 1],
        ..Default::default()
    };
    let mut n = Net {
        conv1: Conv2d::with_params(3, 8, [3, 3], pad, false).unwrap(),
        bn1: BatchNorm2d::new(8).unwrap(),
        conv2: Conv2d::with_params(8, 6, [3, 3], pad, true).unwrap(),
        bn2: BatchNorm2d::new(6).unwrap(),
        fc: Linear::new(6, 4, true).unwrap(),
    };
    for t in n.named_tensors() {
        if let Some(v) = fx["state"].get(&t.name) {
            t.tensor.copy_(&tensor(v)).unwrap();
        }
    }
    n.set_training(true);
    n
}

fn close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (g, w) in got.iter().zip(want) {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}: {got:?} against {want:?}"
        );
    }
}

#[test]
fn slimming_adds_lambda_sign_gamma_as_the_reference_trainer() {
    let fx = fixture();
    let mut n = net(&fx);
    let y: Vec<i64> = fx["y"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let y = Tensor::from_vec(y, &[3]).unwrap();
    let loss = n
        .forward(&tensor(&fx["x"]))
        .unwrap()
        .cross_entropy(&y, 0.0)
        .unwrap();
    loss.backward().unwrap();
    let grad = |n: &Net, bn: &str| -> Vec<f32> {
        let w = if bn == "bn1" {
            &n.bn1.weight
        } else {
            &n.bn2.weight
        };
        w.grad().unwrap().to_vec_f32().unwrap()
    };
    for bn in ["bn1", "bn2"] {
        close(&grad(&n, bn), &floats(&fx["bn_grad"][bn]), 1e-4, bn);
    }
    add_slimming_grad(&mut n, fx["lambda"].as_f64().unwrap()).unwrap();
    for bn in ["bn1", "bn2"] {
        close(&grad(&n, bn), &floats(&fx["bn_grad_slimmed"][bn]), 1e-4, bn);
    }
}

#[test]
fn importance_and_rankings_equal_the_numpy_reference() {
    let fx = fixture();
    let mut n = net(&fx);
    let graph = DependencyGraph::build(&mut n, [3, 6, 6]).unwrap();
    for (group, filters) in [("conv1", "conv1.weight"), ("conv2", "conv2.weight")] {
        let coupling = graph
            .couplings()
            .find(|c| c.name == filters && c.axis == 0)
            .unwrap();
        let channels: Vec<usize> = coupling
            .ids
            .iter()
            .map(|&id| graph.channel_of(id))
            .collect();
        for criterion in ["l1", "l2", "fpgm", "bn-scale"] {
            let scores = importance(&graph, &n, Criterion::parse(criterion).unwrap()).unwrap();
            let got: Vec<f32> = channels.iter().map(|c| scores[c] as f32).collect();
            let want = &fx["importance"][group][criterion];
            close(
                &got,
                &floats(&want["scores"]),
                1e-5,
                &format!("{group} {criterion}"),
            );
            let mut ranking: Vec<usize> = (0..got.len()).collect();
            ranking.sort_by(|&a, &b| got[a].total_cmp(&got[b]));
            let want: Vec<usize> = want["ranking"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(ranking, want, "{group} {criterion}");
        }
    }
}
