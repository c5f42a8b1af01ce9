//! Starting from timm weights equals timm's `load_pretrained` (fixtures from
//! scripts/fixtures/make_pretrained_fixtures.py): a 3-channel, 10-class timm-named checkpoint
//! starts models with 1 and 5 input channels and 4 classes, the first conv adapted by timm's
//! `adapt_input_conv`, the classifier re-initialized; other mismatches name the file and the key.

mod common;

use common::{fill, hashed_input, max_rel_diff};
use kiln_engine::Tensor;
use kiln_nn::{
    adapt_input_conv, create_model, load_pretrained, load_safetensors, save_safetensors, Model,
    ModelArgs, PretrainedSource,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn fixtures() -> BTreeMap<String, Tensor> {
    load_safetensors(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pretrained.safetensors"),
    )
    .unwrap()
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("kiln-pretrained-{}-{name}", std::process::id()))
}

/// The hashed state dict of `name` with 3 input channels and 10 classes, as the script saves it.
fn hashed_state_dict(name: &str) -> BTreeMap<String, Tensor> {
    let args = ModelArgs {
        num_classes: 10,
        ..Default::default()
    };
    create_model(name, &args)
        .unwrap()
        .named_tensors()
        .into_iter()
        .map(|t| {
            let v = fill(&t.name, t.tensor.shape());
            (t.name, v)
        })
        .collect()
}

fn write(sd: &BTreeMap<String, Tensor>, file: &str) -> PathBuf {
    let path = tmp(file);
    save_safetensors(sd, None, &path).unwrap();
    path
}

fn fine_tune_args(file: &Path, in_chans: usize, num_classes: usize, reset: bool) -> ModelArgs {
    ModelArgs {
        num_classes,
        in_chans,
        pretrained: Some(PretrainedSource {
            file: file.to_path_buf(),
            reset_classifier: reset,
        }),
        ..Default::default()
    }
}

fn tensor(model: &dyn Model, name: &str) -> Vec<f32> {
    let t = model.named_tensors().into_iter().find(|t| t.name == name);
    t.unwrap().tensor.to_vec_f32().unwrap()
}

#[test]
fn adapt_input_conv_equals_timms() {
    let expected = fixtures();
    for (i, n) in [(3, 1), (3, 2), (3, 4), (3, 7), (6, 1)] {
        let w = fill(&format!("adapt.{i}"), &[4, i, 3, 3]);
        let got = adapt_input_conv(n, &w).unwrap().unwrap();
        let want = &expected[&format!("adapt.{i}.to{n}")];
        assert_eq!(got.shape(), want.shape(), "{i} -> {n}");
        assert!(max_rel_diff(&got, want) < 1e-6, "{i} -> {n}");
    }
    let rgb = fill("adapt.3", &[4, 3, 3, 3]);
    let same = adapt_input_conv(3, &rgb).unwrap().unwrap();
    assert_eq!(same.to_vec_f32().unwrap(), rgb.to_vec_f32().unwrap());
    let four = fill("adapt.4", &[4, 4, 3, 3]);
    assert!(
        adapt_input_conv(2, &four).unwrap().is_none(),
        "timm raises for 4 -> 2 channels"
    );
    assert!(
        adapt_input_conv(1, &four).unwrap().is_none(),
        "timm asserts I % 3 == 0 past 3"
    );
}

#[test]
fn fine_tuned_features_equal_timms() {
    let expected = fixtures();
    for (name, in_chans) in [("resnet18", 1), ("resnet18", 5), ("resnet18d", 1)] {
        let file = write(
            &hashed_state_dict(name),
            &format!("{name}-{in_chans}.safetensors"),
        );
        let mut model = create_model(name, &fine_tune_args(&file, in_chans, 4, true)).unwrap();
        let x = hashed_input(in_chans);
        model.set_training(false);
        let features = model
            .forward_head(&model.forward_features(&x).unwrap(), true)
            .unwrap();
        let diff = max_rel_diff(
            &features,
            &expected[&format!("features.{name}.c{in_chans}")],
        );
        assert!(
            diff < 1e-5,
            "{name} in_chans {in_chans}: features off by {diff}"
        );
        std::fs::remove_file(file).ok();
    }
}

/// A model whose input is read by two convs (MobileOne's stem branches, timm's `first_conv`
/// tuple) has both adapted to a 1-channel input, as timm's `load_pretrained` adapts each.
#[test]
fn every_first_conv_is_adapted() {
    let sd = hashed_state_dict("mobileone_s0");
    let file = write(&sd, "two-first-convs.safetensors");
    let model = create_model("mobileone_s0", &fine_tune_args(&file, 1, 10, false)).unwrap();
    let firsts: Vec<&str> = model.pretrained_cfg().first_convs().collect();
    assert_eq!(firsts, ["stem.conv_kxk.0.conv", "stem.conv_scale.conv"]);
    for conv in firsts {
        let key = format!("{conv}.weight");
        let want = adapt_input_conv(1, &sd[&key]).unwrap().unwrap();
        assert_eq!(
            tensor(model.as_ref(), &key),
            want.to_vec_f32().unwrap(),
            "{key}"
        );
    }
    std::fs::remove_file(file).ok();
}

#[test]
fn the_classifier_loads_when_its_classes_match_unless_reset() {
    let sd = hashed_state_dict("resnet18");
    let file = write(&sd, "head.safetensors");
    let kept = create_model("resnet18", &fine_tune_args(&file, 3, 10, false)).unwrap();
    assert_eq!(
        tensor(kept.as_ref(), "fc.weight"),
        sd["fc.weight"].to_vec_f32().unwrap()
    );
    let source = PretrainedSource {
        file: file.clone(),
        reset_classifier: true,
    };
    let reset = create_model(
        "resnet18",
        &ModelArgs {
            num_classes: 10,
            ..Default::default()
        },
    )
    .unwrap();
    let before = tensor(reset.as_ref(), "fc.weight");
    let report = load_pretrained(reset.as_ref(), &source).unwrap();
    assert!(report.classifier_reset && report.converted_input_conv.is_none());
    assert_eq!(tensor(reset.as_ref(), "fc.weight"), before);
    assert_eq!(
        tensor(reset.as_ref(), "layer4.1.conv2.weight"),
        sd["layer4.1.conv2.weight"].to_vec_f32().unwrap()
    );
    std::fs::remove_file(file).ok();
}

#[test]
fn a_ddp_prefix_is_dropped_as_timm_does() {
    let sd: BTreeMap<String, Tensor> = hashed_state_dict("resnet18")
        .into_iter()
        .map(|(k, v)| (format!("module.{k}"), v))
        .collect();
    let file = write(&sd, "ddp.safetensors");
    let model = create_model("resnet18", &fine_tune_args(&file, 1, 4, true)).unwrap();
    assert_eq!(
        tensor(model.as_ref(), "layer1.0.bn1.running_var"),
        sd["module.layer1.0.bn1.running_var"].to_vec_f32().unwrap()
    );
    std::fs::remove_file(file).ok();
}

#[test]
fn other_mismatches_name_the_file_and_the_key() {
    let sd = hashed_state_dict("resnet18");
    let mut missing = sd.clone();
    missing.remove("layer2.0.conv1.weight");
    let mut extra = sd.clone();
    extra.insert("layer5.weight".into(), fill("layer5.weight", &[3]));
    let mut wrong = sd.clone();
    wrong.insert("layer3.1.bn2.bias".into(), fill("layer3.1.bn2.bias", &[7]));
    for (case, sd, key) in [
        ("missing", missing, "layer2.0.conv1.weight"),
        ("extra", extra, "layer5.weight"),
        ("wrong", wrong, "layer3.1.bn2.bias"),
    ] {
        let file = write(&sd, &format!("{case}.safetensors"));
        let err = create_model("resnet18", &fine_tune_args(&file, 1, 4, true))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains(&file.display().to_string()) && err.contains(key),
            "{case}: {err}"
        );
        std::fs::remove_file(file).ok();
    }
    let junk = tmp("junk.safetensors");
    std::fs::write(&junk, b"not a checkpoint").unwrap();
    let err = create_model("resnet18", &fine_tune_args(&junk, 1, 4, true))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains(&junk.display().to_string()), "{err}");
    std::fs::remove_file(junk).ok();
}
