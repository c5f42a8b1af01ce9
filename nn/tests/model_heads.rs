//! Head and argument behaviour of single families through `create_model`: DenseNet refuses
//! stochastic depth, EfficientNet's classifier follows its pool, MobileNetV3's efficient head
//! keeps its pooled width, SigLIP's attention pool goes with another pooling as in timm, a
//! MetaFormer's MLP head follows its resets.

use kiln_engine::{DType, Tensor};
use kiln_nn::{create_model, ModelArgs};

/// timm's DenseNet takes no `drop_path_rate` (a TypeError); kiln names the model and flag.
#[test]
fn refuses_stochastic_depth() {
    let args = ModelArgs {
        drop_path_rate: Some(0.1),
        ..ModelArgs::default()
    };
    let err = create_model("densenet121", &args)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("densenet121") && err.contains("--drop-path"),
        "{err}"
    );
}

#[test]
fn reset_classifier_follows_the_pool_like_timm() {
    let mut m = create_model("efficientnet_b0", &ModelArgs::default()).unwrap();
    m.set_training(false);
    let x = Tensor::zeros(&[1, 3, 32, 32], DType::F32).unwrap();
    m.reset_classifier(5, Some("catavgmax")).unwrap();
    let fc = m.get_classifier().unwrap();
    assert_eq!((fc.in_features(), fc.out_features()), (2560, 5));
    assert_eq!(m.forward(&x).unwrap().shape(), [1, 5]);
    m.reset_classifier(0, Some("")).unwrap();
    assert!(m.get_classifier().is_none());
    assert_eq!(m.forward(&x).unwrap().shape(), [1, 1280, 1, 1]);
    assert!(m.reset_classifier(3, None).is_err());
}

#[test]
fn efficient_head_keeps_its_pooled_width() {
    let args = ModelArgs {
        global_pool: Some("catavgmax".into()),
        ..Default::default()
    };
    let mut m = create_model("mobilenetv3_small_100", &args).unwrap();
    let conv_head = m
        .named_parameters()
        .into_iter()
        .find(|t| t.name == "conv_head.weight")
        .unwrap();
    assert_eq!(conv_head.tensor.shape(), [1024, 1152, 1, 1]);
    let x = Tensor::zeros(&[2, 3, 32, 32], DType::F32).unwrap();
    let features = m.forward_features(&x).unwrap();
    assert_eq!(m.forward_head(&features, true).unwrap().shape(), [2, 1024]);
    assert!(m.reset_classifier(5, Some("avg")).is_err());
    m.reset_classifier(0, None).unwrap();
    assert_eq!((m.num_classes(), m.num_features()), (0, 576));
    assert_eq!(m.forward(&x).unwrap().shape(), [2, 1024]);
}

/// SigLIP's `map` head: the attention pool (`attn_pool.*`) reduces the tokens to [B, C]; a reset
/// to another pooling drops it and one back to `map` fails (timm's `reset_classifier`).
#[test]
fn the_attention_pool_goes_with_another_pooling() {
    let args = ModelArgs {
        num_classes: 10,
        img_size: Some(64),
        ..ModelArgs::default()
    };
    let mut m =
        kiln_nn::init::skip_init(|| create_model("vit_base_patch32_siglip_256", &args)).unwrap();
    let pooled = |m: &dyn kiln_nn::Model| {
        let names = m.named_parameters().into_iter().map(|t| t.name);
        names.filter(|n| n.starts_with("attn_pool.")).count()
    };
    assert_eq!(pooled(m.as_ref()), 13);
    let x = Tensor::zeros(&[2, 3, 64, 64], DType::F32).unwrap();
    assert_eq!(m.forward(&x).unwrap().shape(), [2, 10]);
    let features = m.forward_features(&x).unwrap();
    assert_eq!(m.forward_head(&features, true).unwrap().shape(), [2, 768]);
    m.reset_classifier(5, Some("avg")).unwrap();
    assert_eq!(pooled(m.as_ref()), 0);
    assert_eq!(m.forward(&x).unwrap().shape(), [2, 5]);
    assert!(m.reset_classifier(5, Some("map")).is_err());
}

/// CAFormer's `MlpHead` (`head.fc.fc1`, `head.fc.norm`, `head.fc.fc2`): `pre_logits` stops before
/// it, a reset rebuilds it for the new classes (its `fc2` the classifier), 0 classes remove it
/// and keep the normed pooled features, and a pool that doubles the features is refused (timm's
/// assertion).
#[test]
fn metaformer_mlp_head_follows_its_resets() {
    let args = ModelArgs {
        num_classes: 7,
        ..ModelArgs::default()
    };
    let mut m = kiln_nn::init::skip_init(|| create_model("caformer_s18", &args)).unwrap();
    m.set_training(false);
    let x = Tensor::zeros(&[1, 3, 32, 32], DType::F32).unwrap();
    let features = m.forward_features(&x).unwrap();
    assert_eq!(features.shape(), [1, 512, 1, 1]);
    assert_eq!(m.forward_head(&features, true).unwrap().shape(), [1, 512]);
    let fc = m.get_classifier().unwrap();
    assert_eq!((fc.in_features(), fc.out_features()), (2048, 7));
    m.reset_classifier(5, Some("max")).unwrap();
    assert_eq!(m.forward(&x).unwrap().shape(), [1, 5]);
    let names: Vec<String> = m.named_parameters().into_iter().map(|t| t.name).collect();
    let head: Vec<&str> = (names.iter().map(String::as_str))
        .filter(|n| n.starts_with("head."))
        .collect();
    let want = [
        "head.norm.weight",
        "head.norm.bias",
        "head.fc.fc1.weight",
        "head.fc.fc1.bias",
        "head.fc.norm.weight",
        "head.fc.norm.bias",
        "head.fc.fc2.weight",
        "head.fc.fc2.bias",
    ];
    assert_eq!(head, want);
    m.reset_classifier(0, None).unwrap();
    assert!(m.get_classifier().is_none());
    assert_eq!(m.forward(&x).unwrap().shape(), [1, 512]);
    let err = m.reset_classifier(5, Some("catavgmax")).unwrap_err();
    assert!(err.to_string().contains("doubles the features"), "{err}");
}
