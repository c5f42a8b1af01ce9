//! `kiln export --format safetensors` writes a checkpoint's weights as a plain state dict under
//! the model's names (timm's `clean_checkpoint.py --safetensors`): no `state_dict.` prefix, no
//! optimizer, the EMA weights under `--use-ema`, every tensor bit for bit.

mod common;

use common::Scratch;
use kiln::engine::{DType, Tensor};
use kiln::nn::{create_model, load_safetensors, state_dict, ModelArgs};
use kiln::train::checkpoint::{Checkpoint, CheckpointMeta};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec_f32()
        .unwrap()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

fn assert_same(got: &BTreeMap<String, Tensor>, want: &BTreeMap<String, Tensor>, what: &str) {
    let names = |m: &BTreeMap<String, Tensor>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(got), names(want), "{what}: the names");
    for (name, t) in want {
        let g = &got[name];
        assert_eq!(g.shape(), t.shape(), "{what}: {name}'s shape");
        assert_eq!(g.dtype(), t.dtype(), "{what}: {name}'s dtype");
        assert!(bits(g) == bits(t), "{what}: {name} differs");
    }
}

/// `kiln export resnet18 --format safetensors --checkpoint CK -o OUT [--use-ema]`.
fn export(checkpoint: &str, out: &str, use_ema: bool) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["export", "resnet18", "--format", "safetensors"])
        .args(["--checkpoint", checkpoint, "-o", out])
        .args(use_ema.then_some("--use-ema"))
        .output()
        .expect("run kiln")
}

/// [`export`], which must succeed, and the file it wrote.
fn exported(checkpoint: &str, out: &str, use_ema: bool) -> BTreeMap<String, Tensor> {
    let o = export(checkpoint, out, use_ema);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "export of {checkpoint}: {stderr}");
    load_safetensors(Path::new(out)).unwrap()
}

#[test]
fn a_checkpoint_exports_its_model_or_ema_weights_alone() {
    let dir = Scratch::new("export-weights");
    let args = ModelArgs {
        num_classes: 10,
        ..Default::default()
    };
    let model = state_dict(create_model("resnet18", &args).unwrap().as_ref());
    // EMA weights that differ from the model's in every float tensor.
    let ema: BTreeMap<String, Tensor> = model
        .iter()
        .map(|(k, t)| {
            let t = match t.dtype() {
                DType::F32 => t.affine(0.5, 0.25).unwrap(),
                _ => t.clone(),
            };
            (k.clone(), t)
        })
        .collect();
    let ck = Checkpoint {
        model: model.clone(),
        extra: BTreeMap::from([("state_dict_ema".to_string(), ema.clone())]),
        meta: CheckpointMeta {
            arch: "resnet18".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let ck_path = dir.join("last.safetensors");
    ck.save(&ck_path).unwrap();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let ck_arg = path("last.safetensors");

    let plain = path("weights.safetensors");
    assert_same(&exported(&ck_arg, &plain, false), &model, "model weights");
    let averaged = path("ema.safetensors");
    assert_same(&exported(&ck_arg, &averaged, true), &ema, "EMA weights");
    // The exported file is a checkpoint kiln reads back too (as timm's load_checkpoint does).
    let again = path("again.safetensors");
    assert_same(&exported(&plain, &again, false), &model, "a re-export");

    // --use-ema on weights without EMA names the flag and the file.
    let o = export(&plain, &again, true);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--use-ema") && stderr.contains("holds no EMA weights"),
        "{stderr}"
    );
}
