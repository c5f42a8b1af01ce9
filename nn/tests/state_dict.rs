//! State dicts round-trip through safetensors; mismatches are reported by key.

use kiln_engine::{DType, Tensor};
use kiln_nn::{
    create_model, load_safetensors, load_safetensors_with_metadata, load_state_dict,
    save_safetensors, state_dict, Error, ModelArgs, CHECKSUM_KEY,
};

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("kiln-sd-{}-{name}", std::process::id()))
}

fn small() -> ModelArgs {
    ModelArgs {
        num_classes: 7,
        in_chans: 1,
        ..Default::default()
    }
}

#[test]
fn round_trip_restores_every_tensor() {
    kiln_engine::manual_seed_thread(1);
    let a = create_model("resnet18", &small()).unwrap();
    let path = tmp("rt.safetensors");
    save_safetensors(&state_dict(a.as_ref()), None, &path).unwrap();
    kiln_engine::manual_seed_thread(2);
    let b = create_model("resnet18", &small()).unwrap();
    let report = load_state_dict(b.as_ref(), &load_safetensors(&path).unwrap(), true).unwrap();
    assert!(report.missing.is_empty() && report.unexpected.is_empty());
    for (x, y) in a.named_tensors().iter().zip(b.named_tensors()) {
        assert_eq!(x.name, y.name);
        assert_eq!(
            x.tensor.to_vec_f32().unwrap(),
            y.tensor.to_vec_f32().unwrap(),
            "{}",
            x.name
        );
    }
    std::fs::remove_file(path).ok();
}

#[test]
fn a_byte_flipped_in_any_tensor_fails_the_checksum_naming_the_file() {
    let tensors = std::collections::BTreeMap::from([
        (
            "a".to_string(),
            Tensor::arange(0.0, 6.0, 1.0, DType::F32).unwrap(),
        ),
        (
            "b".to_string(),
            Tensor::arange(0.0, 4.0, 1.0, DType::I64).unwrap(),
        ),
    ]);
    let path = tmp("crc.safetensors");
    save_safetensors(&tensors, None, &path).unwrap();
    let (_, metadata) = load_safetensors_with_metadata(&path).unwrap();
    assert_eq!(metadata[CHECKSUM_KEY].len(), 8, "{metadata:?}");
    let good = std::fs::read(&path).unwrap();
    // The data section is the file's tail: flip one bit in each of its bytes in turn.
    let data_bytes = 6 * 4 + 4 * 8;
    for i in good.len() - data_bytes..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x10;
        std::fs::write(&path, &bad).unwrap();
        let e = load_safetensors(&path).unwrap_err().to_string();
        assert!(
            e.contains(path.to_str().unwrap()) && e.contains("the file is corrupt"),
            "{e}"
        );
    }
    std::fs::remove_file(path).ok();
}

#[test]
fn missing_and_unexpected_keys_are_named() {
    let m = create_model("resnet18", &small()).unwrap();
    let mut sd = state_dict(m.as_ref());
    sd.remove("layer1.0.conv1.weight");
    sd.insert(
        "head.extra".into(),
        Tensor::zeros(&[3], DType::F32).unwrap(),
    );
    let err = load_state_dict(m.as_ref(), &sd, true).unwrap_err();
    match &err {
        Error::KeyMismatch {
            missing,
            unexpected,
        } => {
            assert_eq!(missing, &["layer1.0.conv1.weight"]);
            assert_eq!(unexpected, &["head.extra"]);
        }
        other => panic!("expected KeyMismatch, got {other}"),
    }
    assert!(err
        .to_string()
        .contains("missing keys [\"layer1.0.conv1.weight\"]"));
    let report = load_state_dict(m.as_ref(), &sd, false).unwrap();
    assert_eq!(report.missing, ["layer1.0.conv1.weight"]);
}

#[test]
fn shape_mismatch_names_key_and_shapes() {
    let m = create_model("resnet18", &small()).unwrap();
    let other = create_model(
        "resnet18",
        &ModelArgs {
            num_classes: 10,
            in_chans: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let err = load_state_dict(m.as_ref(), &state_dict(other.as_ref()), true)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "state dict tensor 'fc.weight' has shape [10, 512], the model expects [7, 512]"
    );
}

#[test]
fn a_file_that_is_not_safetensors_is_named() {
    let path = tmp("junk.safetensors");
    std::fs::write(&path, b"not a safetensors file").unwrap();
    let err = load_safetensors(&path).unwrap_err().to_string();
    assert!(
        err.starts_with(&path.display().to_string()) && err.contains("not a safetensors file"),
        "{err}"
    );
    std::fs::remove_file(path).ok();
}
