//! `kiln train --grad-checkpointing` (timm's `set_grad_checkpointing(True)`) trains to the same
//! bits as the run without it: resnet18 with drop-path and dropout, and the ViT, each with every
//! block recomputed in backward, end with the same checkpoint (weights, optimizer state, BN
//! statistics) and the same summary.

mod common;

use common::{dataset, summary_rows, tensor_bits, train};

#[test]
fn grad_checkpointing_trains_to_the_plain_runs_bits() {
    let data = dataset("gradckpt", 64, 32);
    let out = data.join("runs");
    let resnet: &[&str] = &["--epochs", "1", "--drop", "0.2", "--drop-path", "0.1"];
    let vit: &[&str] = &[
        "--epochs",
        "1",
        "--model",
        "vit_tiny_patch16_224",
        "--img-size",
        "32",
        "--drop-path",
        "0.1",
    ];
    for (name, args) in [("resnet18", resnet), ("vit", vit)] {
        let plain = format!("{name}-plain");
        let checkpointed = format!("{name}-checkpointed");
        train(&data, &out, &plain, args);
        let with_flag: Vec<&str> = args
            .iter()
            .copied()
            .chain(["--grad-checkpointing"])
            .collect();
        train(&data, &out, &checkpointed, &with_flag);
        let (p, c) = (out.join(&plain), out.join(&checkpointed));
        assert_eq!(summary_rows(&c), summary_rows(&p), "{name}: summary.csv");
        assert_eq!(
            tensor_bits(&c.join("last.safetensors")),
            tensor_bits(&p.join("last.safetensors")),
            "{name}: weights, optimizer state and BN statistics"
        );
        assert!(std::fs::read_to_string(c.join("args.yaml"))
            .unwrap()
            .contains("grad_checkpointing: true"));
    }
}
