//! Structured pruning of resnet26 (bottlenecks), mobilenetv3_small_050, convnext_atto, vit_tiny
//! and regnetx_002 (grouped convs; the smallest registered config of each family, 32×32 inputs):
//! each criterion at 50 % of MACs gives a model that runs
//! forward and backward with the MACs and parameters the graph predicted; removing channels
//! made dead first leaves the logits as they were; a 0 % prune is the identity; a pruned
//! checkpoint reloads through its recorded shapes.

use kiln_engine::{manual_seed, DType, Tensor};
use kiln_nn::prune::{
    apply_pruned_shapes, importance, prune, pruned_shapes_metadata, remove_channels, select,
    Criterion, DependencyGraph, PruneOptions, Role,
};
use kiln_nn::{create_model, init, load_state_dict, state_dict, Model, ModelArgs};
use std::collections::HashSet;

const MODELS: [&str; 5] = [
    "resnet26",
    "mobilenetv3_small_050",
    "convnext_atto",
    "vit_tiny_patch16_224",
    "regnetx_002",
];
const SIZE: usize = 32;

fn args() -> ModelArgs {
    ModelArgs {
        num_classes: 10,
        img_size: Some(SIZE),
        ..Default::default()
    }
}

fn model(name: &str) -> Box<dyn Model> {
    manual_seed(7);
    create_model(name, &args()).unwrap()
}

/// A copy of `m` (built without drawing weights, then loaded).
fn copy(name: &str, m: &dyn Model) -> Box<dyn Model> {
    let c = init::skip_init(|| create_model(name, &args())).unwrap();
    load_state_dict(c.as_ref(), &state_dict(m), true).unwrap();
    c
}

fn input(batch: usize) -> Tensor {
    Tensor::randn(&[batch, 3, SIZE, SIZE], DType::F32, 11).unwrap()
}

fn logits(m: &mut dyn Model, x: &Tensor) -> Vec<f32> {
    m.set_training(false);
    let _g = kiln_engine::no_grad();
    m.forward(x).unwrap().to_vec_f32().unwrap()
}

fn numel_params(m: &dyn Model) -> f64 {
    m.named_parameters()
        .iter()
        .map(|p| p.tensor.numel() as f64)
        .sum()
}

/// Gradients of a cross-entropy over a random batch, for Taylor importance.
fn backward(m: &mut dyn Model) {
    m.set_training(true);
    let target = Tensor::from_vec(vec![1i64, 3], &[2]).unwrap();
    let loss = m
        .forward(&input(2))
        .unwrap()
        .cross_entropy(&target, 0.0)
        .unwrap();
    loss.backward().unwrap();
}

#[test]
fn each_criterion_halves_the_macs_and_the_pruned_model_trains() {
    for name in MODELS {
        let original = model(name);
        for criterion in ["l1", "l2", "fpgm", "bn-scale", "taylor"] {
            let criterion = Criterion::parse(criterion).unwrap();
            let mut m = copy(name, original.as_ref());
            if criterion == Criterion::Taylor {
                backward(m.as_mut());
            }
            let opts = PruneOptions::default();
            let r = prune(m.as_mut(), [3, SIZE, SIZE], criterion, &opts).unwrap();
            let kept = r.macs[1] / r.macs[0];
            eprintln!(
                "{name} {criterion:?}: {kept:.4} of the MACs, {:.4} of the parameters",
                r.params[1] / r.params[0]
            );
            assert!(
                (0.45..=0.5).contains(&kept),
                "{name} {criterion:?}: {kept} of the MACs kept"
            );
            // The pruned model, traced anew, costs what the graph predicted.
            let again = DependencyGraph::build(m.as_mut(), [3, SIZE, SIZE]).unwrap();
            let none = HashSet::new();
            let macs = again.macs(&none);
            assert!(
                (macs - r.macs[1]).abs() <= 1e-9 * macs,
                "{name}: {macs} MACs"
            );
            assert_eq!(numel_params(m.as_ref()), r.params[1], "{name} parameters");
            // It trains: forward and backward reach every parameter.
            backward(m.as_mut());
            for p in m.named_parameters() {
                let g = p
                    .tensor
                    .grad()
                    .unwrap_or_else(|| panic!("{name}: no grad for {}", p.name));
                assert_eq!(g.shape(), p.tensor.shape(), "{name}: {}", p.name);
            }
        }
    }
}

/// Zeroes every producing slice of the channels `removed`, so they contribute nothing.
fn kill(m: &dyn Model, graph: &DependencyGraph, removed: &HashSet<usize>) {
    let tensors: std::collections::HashMap<String, Tensor> = m
        .named_parameters()
        .into_iter()
        .map(|t| (t.name, t.tensor))
        .collect();
    for c in graph.couplings().filter(|c| c.role == Role::Out) {
        let Some(t) = tensors.get(&c.name) else {
            continue;
        };
        let shape = t.shape().to_vec();
        let (n, inner) = (shape[c.axis], shape[c.axis + 1..].iter().product::<usize>());
        let outer: usize = shape[..c.axis].iter().product();
        let mut v = t.to_vec_f32().unwrap();
        for (i, &id) in c.ids.iter().enumerate() {
            if removed.contains(&graph.channel_of(id)) {
                for o in 0..outer {
                    let at = (o * n + i) * inner;
                    v[at..at + inner].iter_mut().for_each(|x| *x = 0.0);
                }
            }
        }
        t.copy_(&Tensor::from_vec(v, &shape).unwrap()).unwrap();
    }
}

#[test]
fn removing_dead_channels_leaves_the_logits_unchanged() {
    let x = input(2);
    for name in MODELS {
        let mut m = model(name);
        let graph = DependencyGraph::build(m.as_mut(), [3, SIZE, SIZE]).unwrap();
        // Every other removable channel of each group a LayerNorm does not normalize over.
        let removed: HashSet<usize> = graph
            .groups()
            .iter()
            .filter(|g| !g.normalized)
            .flat_map(|g| {
                let n = g.channels.len().min(g.total - 1);
                g.channels[..n]
                    .iter()
                    .step_by(2)
                    .copied()
                    .collect::<Vec<_>>()
            })
            .collect();
        assert!(!removed.is_empty(), "{name}: nothing to remove");
        kill(m.as_ref(), &graph, &removed);
        let before = logits(m.as_mut(), &x);
        let none = HashSet::new();
        let params = graph.params(&removed);
        remove_channels(m.as_mut(), &graph, &removed).unwrap();
        assert!(params < graph.params(&none), "{name}: nothing removed");
        assert_eq!(numel_params(m.as_ref()), params, "{name}");
        let after = logits(m.as_mut(), &x);
        let scale = before.iter().fold(1f32, |a, v| a.max(v.abs()));
        let diff = before
            .iter()
            .zip(&after)
            .fold(0f32, |a, (p, q)| a.max((p - q).abs()));
        assert!(
            diff <= 1e-4 * scale,
            "{name}: logits moved by {diff} (scale {scale})"
        );
    }
}

#[test]
fn a_zero_prune_is_the_identity() {
    for name in MODELS {
        let mut m = model(name);
        let before = state_dict(m.as_ref());
        let opts = PruneOptions {
            ratio: 0.0,
            ..Default::default()
        };
        let r = prune(m.as_mut(), [3, SIZE, SIZE], Criterion::L1, &opts).unwrap();
        assert_eq!(r.removed, 0);
        let after = state_dict(m.as_ref());
        assert_eq!(
            before.keys().collect::<Vec<_>>(),
            after.keys().collect::<Vec<_>>()
        );
        for (k, v) in &before {
            let w = &after[k];
            assert_eq!(v.shape(), w.shape(), "{name} {k}");
            let same = match v.dtype() {
                DType::F32 => v.to_vec::<f32>().unwrap() == w.to_vec::<f32>().unwrap(),
                _ => v.to_vec_f32().unwrap() == w.to_vec_f32().unwrap(),
            };
            assert!(same, "{name} {k}");
        }
    }
}

#[test]
fn a_pruned_checkpoint_reloads_through_its_recorded_shapes() {
    let dir = std::env::temp_dir().join(format!("kiln-prune-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let x = input(2);
    for name in MODELS {
        let mut m = model(name);
        prune(
            m.as_mut(),
            [3, SIZE, SIZE],
            Criterion::L2,
            &PruneOptions::default(),
        )
        .unwrap();
        let want = logits(m.as_mut(), &x);
        let path = dir.join(format!("{name}.safetensors"));
        let meta = [pruned_shapes_metadata(m.as_ref())].into_iter().collect();
        kiln_nn::save_safetensors(&state_dict(m.as_ref()), Some(meta), &path).unwrap();
        let (tensors, meta) = kiln_nn::load_safetensors_with_metadata(&path).unwrap();
        let mut fresh = init::skip_init(|| create_model(name, &args())).unwrap();
        apply_pruned_shapes(fresh.as_mut(), &meta[kiln_nn::prune::PRUNED_SHAPES_KEY]).unwrap();
        load_state_dict(fresh.as_ref(), &tensors, true).unwrap();
        assert_eq!(logits(fresh.as_mut(), &x), want, "{name}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn groups_follow_the_architecture() {
    // resnet26: a residual group per stage (its blocks' last convs, the downsample, their
    // BNs), a group per bottleneck's first two convs; the classifier's outputs are kept.
    let mut m = model("resnet26");
    let graph = DependencyGraph::build(m.as_mut(), [3, SIZE, SIZE]).unwrap();
    let groups = graph.groups();
    let stage1 = groups
        .iter()
        .find(|g| {
            g.members
                .iter()
                .any(|n| n == "layer1.0.downsample.0.weight")
        })
        .unwrap();
    for member in [
        "layer1.0.conv3.weight",
        "layer1.1.conv3.weight",
        "layer1.1.bn3.weight",
    ] {
        assert!(
            stage1.members.iter().any(|n| n == member),
            "{member} in {:?}",
            stage1.members
        );
    }
    assert_eq!((stage1.total, stage1.channels.len()), (256, 256));
    assert!(groups
        .iter()
        .all(|g| !g.members.iter().any(|n| n.starts_with("fc."))));
    // 8 bottlenecks × 2 inner groups, the stem and 4 residual groups.
    assert_eq!(groups.len(), 8 * 2 + 1 + 4);
    let scores = importance(&graph, m.as_ref(), Criterion::L1).unwrap();
    assert!(select(&graph, &scores, &PruneOptions::default()).len() > 100);
}

#[test]
fn grouped_convs_lose_the_same_positions_in_every_group() {
    // regnetx_002's 3×3 convs have groups of 8 channels: s1.b1's reads 24 channels in 3 groups.
    let mut m = model("regnetx_002");
    let name = "s1.b1.conv2.conv.weight";
    let shape = |m: &dyn Model| {
        let t = m.named_parameters().into_iter().find(|p| p.name == name);
        t.unwrap().tensor.shape().to_vec()
    };
    assert_eq!(shape(m.as_ref())[..2], [24, 8]);
    prune(
        m.as_mut(),
        [3, SIZE, SIZE],
        Criterion::L1,
        &PruneOptions::default(),
    )
    .unwrap();
    let (oc, icg) = (shape(m.as_ref())[0], shape(m.as_ref())[1]);
    // Each of the 3 groups keeps the same filters and reads the same number of channels.
    assert!(
        icg < 8 && oc < 24 && oc % 3 == 0,
        "{name}: [{oc}, {icg}, ..]"
    );
    let conv1 = m
        .named_parameters()
        .into_iter()
        .find(|p| p.name == "s1.b1.conv1.conv.weight");
    assert_eq!(
        conv1.unwrap().tensor.shape()[0],
        3 * icg,
        "conv1 feeds the groups"
    );
}
