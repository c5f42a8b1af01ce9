//! timm's pretrained tags through `create_model` and `list_pretrained`: a bare name means the
//! default tag, a tag brings its own config, an unknown tag lists the known ones.

use kiln_nn::{create_model, list_models, list_pretrained, ModelArgs};

#[test]
fn a_bare_name_is_timms_default_tag() {
    let bare = create_model("resnet50", &ModelArgs::default()).unwrap();
    let tagged = create_model("resnet50.a1_in1k", &ModelArgs::default()).unwrap();
    assert_eq!(bare.pretrained_cfg(), tagged.pretrained_cfg());
    assert_eq!(bare.pretrained_cfg().name, "resnet50.a1_in1k");
}

#[test]
fn a_tag_brings_its_own_cfg() {
    let m = create_model("resnet50.tv_in1k", &ModelArgs::default()).unwrap();
    let cfg = m.pretrained_cfg();
    assert_eq!(cfg.name, "resnet50.tv_in1k");
    assert_eq!(cfg.hf_hub_id.as_deref(), Some("timm/resnet50.tv_in1k"));
    assert_eq!(
        (cfg.crop_pct, cfg.interpolation.as_str()),
        (0.875, "bilinear")
    );
    assert_eq!(cfg.test_input_size, None);
}

#[test]
fn an_unknown_tag_lists_the_known_ones() {
    let err = create_model("resnet18d.nope", &ModelArgs::default())
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("resnet18d has no pretrained tag 'nope' (known: ra2_in1k, ra4_e3600_r224_in1k)")
    );
}

#[test]
fn list_pretrained_matches_names_with_tags() {
    let r18d = list_pretrained("resnet18d.*");
    assert_eq!(
        r18d,
        ["resnet18d.ra2_in1k", "resnet18d.ra4_e3600_r224_in1k"]
    );
    assert!(list_pretrained("*").len() > list_models("*").len());
}
