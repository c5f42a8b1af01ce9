//! Model-specific kwargs (timm's `create_model(name, **kwargs)`, train.py's `--model-kwargs`):
//! the models built with them have timm's parameter names and shapes (fixture from
//! `scripts/fixtures/make_model_kwargs_fixtures.py`), and keys a family does not take are refused
//! with the list of those it does.

use kiln_nn::{create_model, state_dict, ModelArgs};
use std::collections::BTreeMap;

fn built(name: &str, args: &ModelArgs) -> kiln_nn::Result<Box<dyn kiln_nn::Model>> {
    kiln_nn::init::skip_init(|| create_model(name, args))
}

#[test]
fn models_built_with_kwargs_have_timms_names_and_shapes() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/model_kwargs_shapes.json"
    );
    let cases: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(cases.len(), 12);
    for case in cases {
        let name = case["model"].as_str().unwrap();
        let create = &case["create"];
        let args = ModelArgs {
            num_classes: 10,
            img_size: create["img_size"].as_u64().map(|s| s as usize),
            global_pool: create["global_pool"].as_str().map(String::from),
            kwargs: (case["kwargs"].as_object().unwrap().iter())
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect(),
            ..ModelArgs::default()
        };
        let model = built(name, &args).unwrap_or_else(|e| panic!("{name} {:?}: {e}", args.kwargs));
        let ours: BTreeMap<String, Vec<usize>> = state_dict(model.as_ref())
            .into_iter()
            .map(|(k, t)| (k, t.shape().to_vec()))
            .collect();
        let timm: BTreeMap<String, Vec<usize>> =
            serde_json::from_value(case["shapes"].clone()).unwrap();
        assert_eq!(ours, timm, "{name} with {:?}", args.kwargs);
    }
}

#[test]
fn keys_a_family_does_not_take_are_refused_with_those_it_takes() {
    let with = |kwargs: &[(&str, &str)]| ModelArgs {
        kwargs: (kwargs.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..ModelArgs::default()
    };
    for (name, kwargs, needles) in [
        (
            "vit_tiny_patch16_224",
            &[("window_size", "7")][..],
            &["vit_tiny_patch16_224", "'window_size'", "embed_dim"][..],
        ),
        (
            "resnet18",
            &[("layers", "(1, 2)")],
            &["layers", "4 positive"],
        ),
        (
            "swin_tiny_patch4_window7_224",
            &[("depths", "two")],
            &["depths"],
        ),
        (
            "vit_tiny_patch16_224",
            &[("num_heads", "5")],
            &["multiple of num_heads 5"],
        ),
        (
            "xcit_nano_12_p16_224",
            &[("patch_size", "4")],
            &["patch_size 4", "8 or 16"],
        ),
        (
            "resnetv2_50x1_bit",
            &[("stem_type", "'deep_same'")],
            &["stem_type 'deep_same'", "'deep_fixed'"],
        ),
        (
            "caformer_s18",
            &[("dims", "(64, 128, 320, 500)")],
            &["dims", "width 500", "multiple of its heads' width 32"],
        ),
        (
            "mixer_s16_224",
            &[("patch_size", "8")],
            &["'patch_size'", "mlp_ratio, stem_norm, nlhb"],
        ),
        (
            "gmixer_12_224",
            &[("mlp_ratio", "(0.5, 4.0)")],
            &[
                "gmixer_12_224",
                "multiple values for keyword argument 'mlp_ratio'",
            ],
        ),
        (
            "vgg11",
            &[("depth", "2")],
            &["takes no model-specific kwargs"],
        ),
        (
            "convnext_atto",
            &[("ls_init_value", "-1")],
            &["ls_init_value"],
        ),
        (
            "regnety_004",
            &[("depth", "6")],
            &["regnety_004", "3 stages, not 4"],
        ),
        ("regnetx_002", &[("wm", "1")], &["wm=1"]),
    ] {
        let err = match built(name, &with(kwargs)) {
            Ok(_) => panic!("{name} {kwargs:?} was accepted"),
            Err(e) => e.to_string(),
        };
        for n in needles {
            assert!(err.contains(n), "{name} {kwargs:?}: {err}");
        }
    }
}

#[test]
fn kwargs_whose_model_cannot_fit_in_memory_are_refused_before_it_is_built() {
    let args = ModelArgs {
        kwargs: vec![
            ("embed_dim".into(), "1000000".into()),
            ("num_heads".into(), "1".into()),
        ],
        ..ModelArgs::default()
    };
    let err = match built("vit_tiny_patch16_224", &args) {
        Ok(_) => panic!("a ViT of width 10^6 was built"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("exceeds this machine's"), "{err}");
}
