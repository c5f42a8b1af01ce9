//! The registry's lookups through the public API: wildcards and the close names an unknown
//! model name is offered.

use kiln_nn::{create_model, list_models, ModelArgs};

#[test]
fn list_models_matches_wildcards_like_fnmatch() {
    assert_eq!(
        list_models("resnet1*d"),
        vec!["resnet101d", "resnet152d", "resnet18d"]
    );
    assert_eq!(list_models("resnet?8"), vec!["resnet18"]);
    assert!(list_models("no_such_model*").is_empty());
}

#[test]
fn unknown_model_suggests_close_names() {
    let err = create_model("resnet5O", &ModelArgs::default())
        .err()
        .map(|e| e.to_string());
    assert_eq!(
        err.as_deref(),
        Some("unknown model 'resnet5O' (did you mean resnet50, resnet152, resnet18?)")
    );
}
