//! `kiln train` end to end on a small synthetic IDX dataset: it learns, writes the run folder,
//! and a resumed run continues where the interrupted one stopped; timm's train crops and colour
//! probabilities on a small RGB ImageFolder.

mod common;

use common::{dataset, kiln_ok, summary_rows, train};
use kiln::train::checkpoint::Checkpoint;

#[test]
fn trains_writes_the_run_folder_and_resumes_exactly() {
    let data = dataset("e2e", 320, 100);
    let out = data.join("runs");
    train(&data, &out, "straight", &["--epochs", "3"]);
    let straight = out.join("straight");
    for f in [
        "args.yaml",
        "summary.csv",
        "last.safetensors",
        "model_best.safetensors",
        "checkpoint-2.safetensors",
    ] {
        assert!(
            straight.join(f).is_file(),
            "{f} missing from the run folder"
        );
    }
    let rows = summary_rows(&straight);
    assert_eq!(rows.len(), 3);
    assert!(
        rows[2][3] > 25.0,
        "top-1 after 3 epochs on an easy 10-class task (chance 10%): {}",
        rows[2][3]
    );
    assert!(std::fs::read_to_string(straight.join("args.yaml"))
        .unwrap()
        .contains("model: resnet18"));

    train(&data, &out, "split", &["--epochs", "2"]);
    let stdout = train(
        &data,
        &out,
        "split",
        &[
            "--epochs",
            "3",
            "--resume",
            out.join("split/last.safetensors").to_str().unwrap(),
        ],
    );
    assert!(stdout.contains("Resumed from"), "{stdout}");
    let (a, b) = (summary_rows(&straight), summary_rows(&out.join("split")));
    assert_eq!(b.len(), 3, "the resumed run appends to summary.csv");
    for (ra, rb) in a.iter().zip(&b) {
        for (x, y) in ra.iter().zip(rb) {
            assert!(
                (x - y).abs() <= 1e-3 * (1.0 + x.abs()),
                "resumed run diverged: {ra:?} vs {rb:?}"
            );
        }
    }
}

/// timm's optimizers, schedules and loss selection end to end: each run finishes with finite
/// losses in its summary.
#[test]
fn trains_with_lamb_poly_bce_mixup_and_jsd_aug_splits() {
    let data = dataset("e2e-losses", 64, 32);
    let out = data.join("runs");
    let runs: [(&str, &[&str]); 4] = [
        (
            "lamb",
            &["--opt", "lamb", "--sched", "poly", "--lr", "0.01"],
        ),
        (
            "bce",
            &["--bce-loss", "--mixup", "0.2", "--smoothing", "0.1"],
        ),
        (
            "jsd",
            &["--aug-splits", "3", "--jsd-loss", "--smoothing", "0.1"],
        ),
        (
            "splitbn",
            &["--aug-splits", "3", "--jsd-loss", "--split-bn"],
        ),
    ];
    for (exp, extra) in runs {
        let args: Vec<&str> = ["--epochs", "2"].iter().chain(extra).copied().collect();
        train(&data, &out, exp, &args);
        let rows = summary_rows(&out.join(exp));
        assert_eq!(rows.len(), 2, "{exp}");
        assert!(
            rows.iter().all(|r| r[1].is_finite() && r[1] > 0.0),
            "{exp}: {rows:?}"
        );
    }
    // --split-bn saves the auxiliary BatchNorm layers under timm's names; validation, which
    // uses the main layers only, leaves them out.
    let last = out.join("splitbn/last.safetensors");
    let ck = Checkpoint::load(&last).unwrap();
    assert!(ck.model.contains_key("layer4.1.bn2.aux_bn.1.running_var"));
    let (d, l) = (data.to_str().unwrap(), last.to_str().unwrap());
    let log = kiln_ok(&["validate", d, "--checkpoint", l]);
    assert!(
        log.contains("auxiliary BatchNorm") && log.contains(" * Acc@1"),
        "{log}"
    );
}

/// `--pretrained-path` starts from a timm-named checkpoint with other input channels and classes
/// (3 → 1, 1000 → 10): at an lr of 1e-30 the saved weights are the checkpoint's, the first conv
/// summed over its RGB filters (timm's `adapt_input_conv`) and the classifier freshly initialized.
#[test]
fn fine_tunes_from_a_timm_named_checkpoint() {
    use kiln::nn::{create_model, save_safetensors, state_dict, ModelArgs};
    let data = dataset("e2e-pretrained", 64, 32);
    let out = data.join("runs");
    let imagenet = create_model("resnet18", &ModelArgs::default()).unwrap();
    let source = state_dict(imagenet.as_ref());
    let file = data.join("resnet18-in1k.safetensors");
    save_safetensors(&source, None, &file).unwrap();
    let args = ["--epochs", "1", "--lr", "1e-30", "--pretrained-path"];
    let mut args = args.to_vec();
    args.push(file.to_str().unwrap());
    let stdout = train(&data, &out, "pretrained", &args);
    assert!(
        stdout.contains(&format!(
            "Loaded pretrained weights from {} (conv1 converted from 3 to 1 input channel(s); fc re-initialized)",
            file.display()
        )),
        "{stdout}"
    );
    let saved = Checkpoint::load(&out.join("pretrained/last.safetensors")).unwrap();
    let values = |t: &kiln::engine::Tensor| t.to_vec_f32().unwrap();
    let close = |a: Vec<f32>, b: Vec<f32>, what: &str| {
        assert_eq!(a.len(), b.len(), "{what}");
        for (x, y) in a.iter().zip(&b) {
            assert!(
                (x - y).abs() <= 1e-6 * (1.0 + y.abs()),
                "{what}: {x} vs {y}"
            );
        }
    };
    for key in [
        "layer1.0.conv1.weight",
        "layer4.1.conv2.weight",
        "bn1.weight",
    ] {
        close(values(&saved.model[key]), values(&source[key]), key);
    }
    let rgb = values(&source["conv1.weight"]);
    let summed: Vec<f32> = rgb
        .chunks(3 * 49)
        .flat_map(|f| (0..49).map(move |k| f[k] + f[49 + k] + f[98 + k]))
        .collect();
    close(values(&saved.model["conv1.weight"]), summed, "conv1.weight");
    assert_eq!(saved.model["fc.weight"].shape(), [10, 512]);
}

/// EfficientNet and MobileNetV3 train end to end on 1-channel 28×28 images with dropout before
/// the classifier and stochastic depth in the blocks: finite losses every epoch, and the
/// checkpoint holds timm's names, the stem built for 1 channel and the head for 10 classes.
#[test]
fn trains_efficientnet_b0_and_mobilenetv3_with_drop_and_drop_path() {
    let data = dataset("e2e-effnet", 64, 32);
    let out = data.join("runs");
    for (model, head) in [("efficientnet_b0", 1280), ("mobilenetv3_small_100", 1024)] {
        let args = [
            "--model",
            model,
            "--epochs",
            "2",
            "--drop",
            "0.2",
            "--drop-path",
            "0.1",
        ];
        let saved = trained(&data, &out, model, &args, 2);
        assert_eq!(saved.model["conv_stem.weight"].shape()[1], 1, "{model}");
        assert_eq!(saved.model["classifier.weight"].shape(), [10, head]);
    }
}

/// The builder's newer blocks train end to end on the 1-channel 28² data: mixed kernels
/// (mixnet_s, timm's documented recipes use mixnet_xl), edge residuals (efficientnet_es, also a
/// documented recipe), activated depthwise-separable blocks (lcnet_050), universal inverted
/// residuals and mobile attention (mobilenetv4_hybrid_medium): finite losses, and the checkpoint
/// holds the stem built for 1 channel and the head for 10 classes.
#[test]
fn trains_the_builders_mixed_edge_and_attention_blocks() {
    let data = dataset("e2e-builder", 64, 32);
    let out = data.join("runs");
    for (model, head) in [
        ("mixnet_s", 1536),
        ("efficientnet_es", 1280),
        ("lcnet_050", 1280),
        ("mobilenetv4_hybrid_medium", 1280),
    ] {
        let saved = trained(&data, &out, model, &["--model", model, "--epochs", "1"], 1);
        assert_eq!(saved.model["conv_stem.weight"].shape()[1], 1, "{model}");
        assert_eq!(saved.model["classifier.weight"].shape(), [10, head]);
    }
}

/// Trains the run `run` for the `epochs` that `args` ask for: every epoch's loss finite and
/// positive, its last checkpoint returned.
fn trained(
    data: &std::path::Path,
    out: &std::path::Path,
    run: &str,
    args: &[&str],
    epochs: usize,
) -> Checkpoint {
    train(data, out, run, args);
    let rows = summary_rows(&out.join(run));
    assert_eq!(rows.len(), epochs, "{run}");
    assert!(
        rows.iter().all(|r| r[1].is_finite() && r[1] > 0.0),
        "{run}: {rows:?}"
    );
    Checkpoint::load(&out.join(run).join("last.safetensors")).unwrap()
}

/// `model` trained for one epoch at 32² (`--img-size 32`, `extra` flags added) on a dataset of
/// its own, removed afterwards.
fn one_epoch_at_32(tag: &str, model: &str, extra: &[&str]) -> Checkpoint {
    let data = dataset(tag, 64, 32);
    let mut args = vec!["--model", model, "--img-size", "32", "--epochs", "1"];
    args.extend_from_slice(extra);
    trained(&data, &data.join("runs"), model, &args, 1)
}

/// The transformers' end-to-end recipe: AdamW at lr 1e-3 with stochastic depth 0.1.
const TRANSFORMER_FLAGS: [&str; 6] = ["--opt", "adamw", "--lr", "1e-3", "--drop-path", "0.1"];

/// Asserts the shape of each named tensor of the checkpoint's model.
fn assert_shapes(saved: &Checkpoint, shapes: &[(&str, &[usize])]) {
    for &(name, shape) in shapes {
        assert_eq!(saved.model[name].shape(), shape, "{name}");
    }
}

/// RegNet-X (grouped 3×3 convs) and RegNet-Y (with squeeze-excite on the bottleneck) train end
/// to end on the 1-channel 28² data with stochastic depth: finite losses, and the checkpoint
/// holds timm's names, the stem built for 1 channel and the head for 10 classes.
#[test]
fn trains_regnetx_and_regnety_with_drop_path() {
    let data = dataset("e2e-regnet", 64, 32);
    let out = data.join("runs");
    for model in ["regnetx_002", "regnety_002"] {
        let args = ["--model", model, "--epochs", "1", "--drop-path", "0.1"];
        let saved = trained(&data, &out, model, &args, 1);
        assert_eq!(saved.model["stem.conv.weight"].shape()[1], 1, "{model}");
        assert_eq!(saved.model["head.fc.weight"].shape(), [10, 368]);
    }
}

/// ConvNeXt V2 (global response norm in the 1×1-conv MLP, no layer scale) trains end to end on
/// the 1-channel data at 32² (28² would leave the last stage no pixel: stride 32) with stochastic
/// depth: finite losses, and the checkpoint holds timm's names (`mlp.grn.weight`, no `gamma`, the
/// stem built for 1 channel and the head for 10 classes) and a GRN γ that training moved off
/// its zero init.
#[test]
fn trains_convnextv2_atto_with_drop_path() {
    let saved = one_epoch_at_32("e2e-convnextv2", "convnextv2_atto", &["--drop-path", "0.1"]);
    assert_eq!(saved.model["stem.0.weight"].shape(), [40, 1, 4, 4]);
    let grn = &saved.model["stages.3.blocks.1.mlp.grn.weight"];
    assert_eq!(grn.shape(), [1280]);
    // zero at init (timm's), moved by the steps: the GRN branch gets gradients
    assert!(grn.to_vec_f32().unwrap().iter().any(|&g| g != 0.0));
    assert!(!saved.model.contains_key("stages.0.blocks.0.gamma"));
    assert_eq!(saved.model["head.fc.weight"].shape(), [10, 320]);
}

/// A CS3 DarkNet (6×6 focus stem, cross stages whose blocks run on half the expanded map, SiLU)
/// trains end to end on the 1-channel data at 32² with stochastic depth: finite losses, and the
/// checkpoint holds timm's names, the stem built for 1 channel and the head for 10 classes.
#[test]
fn trains_cs3darknet_focus_s_with_drop_path() {
    let saved = one_epoch_at_32("e2e-cspnet", "cs3darknet_focus_s", &["--drop-path", "0.1"]);
    assert_shapes(
        &saved,
        &[
            ("stem.conv1.conv.weight", &[32, 1, 6, 6]),
            ("stages.3.conv_transition.conv.weight", &[512, 512, 1, 1]),
            ("head.fc.weight", &[10, 512]),
        ],
    );
}

/// DenseNet (every layer reading the concatenation of the earlier ones) trains end to end on the
/// 1-channel data at 32² (28² would leave the last transition no pixel to pool) with head
/// dropout and timm's memory-efficient checkpointing of each layer's bottleneck: finite losses,
/// and the checkpoint holds timm's names, the stem built for 1 channel and the head for 10
/// classes.
#[test]
fn trains_densenet121_checkpointed_with_drop() {
    let extra = ["--drop", "0.2", "--grad-checkpointing"];
    let saved = one_epoch_at_32("e2e-densenet", "densenet121", &extra);
    assert_eq!(saved.model["features.conv0.weight"].shape(), [64, 1, 7, 7]);
    let conv = &saved.model["features.denseblock4.denselayer16.conv1.weight"];
    assert_eq!(conv.shape(), [128, 992, 1, 1]);
    assert_eq!(saved.model["classifier.weight"].shape(), [10, 1024]);
}

/// ResNeSt-14d (split attention over 2 splits, the avd pools) trains end to end on the 1-channel
/// data at 32² with stochastic depth and DropBlock (placed in the split attention of the last two
/// stages): finite losses, and the checkpoint holds timm's names (the deep stem built for 1
/// channel, `conv2.conv`/`conv2.fc1`/`conv2.fc2` of the split attention, the avg-pool shortcut's
/// `downsample.1`) and the head for 10 classes.
#[test]
fn trains_resnest14d_with_drop_path_and_drop_block() {
    let extra = ["--drop-path", "0.1", "--drop-block", "0.1"];
    let saved = one_epoch_at_32("e2e-resnest", "resnest14d", &extra);
    assert_shapes(
        &saved,
        &[
            ("conv1.0.weight", &[32, 1, 3, 3]),
            ("layer2.0.conv2.conv.weight", &[256, 64, 3, 3]),
            ("layer2.0.conv2.fc1.weight", &[64, 128, 1, 1]),
            ("layer2.0.conv2.fc2.bias", &[256]),
            ("layer4.0.downsample.1.weight", &[2048, 1024, 1, 1]),
            ("fc.weight", &[10, 2048]),
        ],
    );
}

/// RepVGG-A0 (3×3, 1×1 and BN-identity branches summed before the ReLU) trains end to end on
/// the 1-channel data at 32² with stochastic depth (in the blocks with an identity branch):
/// finite losses, and the checkpoint holds timm's train-time names (both stem convs built for 1
/// channel, a stride-1 block's `identity` BN) and the head for 10 classes.
#[test]
fn trains_repvgg_a0_with_drop_path() {
    let saved = one_epoch_at_32("e2e-repvgg", "repvgg_a0", &["--drop-path", "0.1"]);
    assert_shapes(
        &saved,
        &[
            ("stem.conv_kxk.conv.weight", &[48, 1, 3, 3]),
            ("stem.conv_1x1.conv.weight", &[48, 1, 1, 1]),
            ("stages.2.13.identity.running_var", &[192]),
            ("head.fc.weight", &[10, 1280]),
        ],
    );
    assert!(!saved.model.contains_key("stages.2.0.identity.weight"));
}

/// test_nfnet (the NFNets' deep stem, weight-standardized scaled convs, squeeze-excite after
/// the last conv, the final conv) trains end to end on the 1-channel data at 32² with
/// stochastic depth: finite losses, and the checkpoint holds timm's names (the stem built for 1
/// channel, the convs' `gain`) with each block's last-conv gain moved off its zero init.
#[test]
fn trains_test_nfnet_with_drop_path() {
    let saved = one_epoch_at_32("e2e-nfnet", "test_nfnet", &["--drop-path", "0.1"]);
    assert_eq!(saved.model["stem.conv1.weight"].shape(), [16, 1, 3, 3]);
    assert_eq!(saved.model["stem.conv4.gain"].shape(), [128, 1, 1, 1]);
    let gain = &saved.model["stages.3.0.conv3.gain"];
    assert_eq!(gain.shape(), [128, 1, 1, 1]);
    // zero at init (timm's, without skipinit), moved by the steps: the branch gets gradients
    assert!(gain.to_vec_f32().unwrap().iter().any(|&g| g != 0.0));
    assert_eq!(saved.model["final_conv.weight"].shape(), [192, 128, 1, 1]);
    assert_eq!(saved.model["head.fc.weight"].shape(), [10, 192]);
}

/// resnetv2_18d (pre-activation basic blocks after the deep stem, average-pool downsampling
/// of the pre-activated shortcut, the final norm, timm's 1×1-conv classifier) trains end to end on
/// the 1-channel data at 32² with stochastic depth: finite losses, and the checkpoint holds timm's
/// names (the stem's `conv1` built for 1 channel, the shortcut's `downsample.conv`, the final
/// `norm`'s running statistics, `head.fc` as a [10, 512, 1, 1] conv) with the classifier's bias
/// moved off its zero init.
#[test]
fn trains_resnetv2_18d_with_drop_path() {
    let saved = one_epoch_at_32("e2e-resnetv2", "resnetv2_18d", &["--drop-path", "0.1"]);
    let m = &saved.model;
    assert_eq!(m["stem.conv1.weight"].shape(), [32, 1, 3, 3]);
    let shortcut = &m["stages.1.blocks.0.downsample.conv.weight"];
    assert_eq!(shortcut.shape(), [128, 64, 1, 1]);
    assert_eq!(m["norm.running_var"].shape(), [512]);
    assert_eq!(m["head.fc.weight"].shape(), [10, 512, 1, 1]);
    let bias = m["head.fc.bias"].to_vec_f32().unwrap();
    assert!(bias.iter().any(|&b| b != 0.0), "head.fc.bias unchanged");
}

/// VGG-11 (the smallest VGG: 129M parameters, 103M of them the head's 7×7 conv) trains end to
/// end on the 1-channel data at 32² (the 1×1 final map pooled up to 7×7 for `pre_logits.fc1`,
/// as timm's ConvMlp does) with dropout: finite losses, and the checkpoint holds timm's
/// `features.N` numbering and head names.
#[test]
fn trains_vgg11_with_drop() {
    let saved = one_epoch_at_32("e2e-vgg", "vgg11", &["--drop", "0.2"]);
    assert_shapes(
        &saved,
        &[
            ("features.0.weight", &[64, 1, 3, 3]),
            ("features.3.weight", &[128, 64, 3, 3]),
            ("features.18.bias", &[512]),
            ("pre_logits.fc1.weight", &[4096, 512, 7, 7]),
            ("head.fc.weight", &[10, 4096]),
        ],
    );
}

/// `--model vit_tiny_patch16_224 --img-size 32` builds the ViT for 32² (2×2 patches, its
/// position embedding sized to match) and trains the 1-channel data end to end.
#[test]
fn trains_vit_tiny_at_32_pixels() {
    let data = dataset("e2e-vit", 64, 32);
    let out = data.join("runs");
    let model = "vit_tiny_patch16_224";
    let args = ["--model", model, "--img-size", "32", "--epochs", "2"];
    let saved = trained(
        &data,
        &out,
        "vit",
        &[&args[..], &TRANSFORMER_FLAGS].concat(),
        2,
    );
    assert_shapes(
        &saved,
        &[
            ("pos_embed", &[1, 5, 192]),
            ("patch_embed.proj.weight", &[192, 1, 16, 16]),
            ("head.weight", &[10, 192]),
        ],
    );
}

/// DeiT III (layer scale, the position embedding on the patches alone) trains end to end at 32²
/// with stochastic depth: the checkpoint holds timm's names (`ls1.gamma`, a position embedding
/// of the 4 patches without the class token's), the patch embedding built for 1 channel and the
/// head for 10 classes, and layer scales that training moved off their 1e-6 init.
#[test]
fn trains_deit3_small_at_32_pixels() {
    let saved = one_epoch_at_32("e2e-deit3", "deit3_small_patch16_224", &TRANSFORMER_FLAGS);
    assert_shapes(
        &saved,
        &[
            ("pos_embed", &[1, 4, 384]),
            ("patch_embed.proj.weight", &[384, 1, 16, 16]),
        ],
    );
    let gamma = saved.model["blocks.11.ls2.gamma"].to_vec_f32().unwrap();
    assert!(
        gamma.iter().any(|&g| (g - 1e-6).abs() > 1e-7),
        "ls2.gamma unchanged"
    );
    assert_eq!(saved.model["head.weight"].shape(), [10, 384]);
}

/// EVA-02 (the rotary embedding on q and k, q/v biases, the packed SwiGLU MLP) trains end to end
/// at 32² (a 2×2 grid of 14-pixel patches) with stochastic depth: the checkpoint holds timm's
/// names (`attn.q_bias`, `attn.v_bias`, no `k_bias` and no rotary buffer, `mlp.fc1` of twice the
/// hidden width, `fc_norm`), the patch embedding built for 1 channel and the head for 10 classes.
#[test]
fn trains_eva02_tiny_at_32_pixels() {
    let saved = one_epoch_at_32("e2e-eva02", "eva02_tiny_patch14_224", &TRANSFORMER_FLAGS);
    assert_shapes(
        &saved,
        &[
            ("pos_embed", &[1, 5, 192]),
            ("patch_embed.proj.weight", &[192, 1, 14, 14]),
            ("blocks.0.attn.q_bias", &[192]),
            ("blocks.11.mlp.fc1.weight", &[1024, 192]),
            ("fc_norm.weight", &[192]),
            ("head.weight", &[10, 192]),
        ],
    );
    assert!(!saved.model.contains_key("blocks.0.attn.k_bias"));
    assert!(!saved.model.keys().any(|k| k.contains("rope")));
}

/// XCiT nano (the conv patch embedding, cross-covariance attention with local patch interaction,
/// the Fourier position encoding and class attention) trains end to end at 32² (a 2×2 grid of
/// 16-pixel patches) with stochastic depth: the checkpoint holds timm's names (the stem's
/// `proj.0.0` conv built for 1 channel, per-head `attn.temperature`, the class-attention block's
/// separate `q`/`k`/`v`), the head for 10 classes, and temperatures that training moved off 1.
#[test]
fn trains_xcit_nano_at_32_pixels() {
    let saved = one_epoch_at_32("e2e-xcit", "xcit_nano_12_p16_224", &TRANSFORMER_FLAGS);
    assert_shapes(
        &saved,
        &[
            ("patch_embed.proj.0.0.weight", &[16, 1, 3, 3]),
            ("pos_embed.token_projection.weight", &[128, 64, 1, 1]),
            ("cls_attn_blocks.1.attn.k.weight", &[128, 128]),
        ],
    );
    let m = &saved.model;
    let temperature = m["blocks.11.attn.temperature"].to_vec_f32().unwrap();
    assert_eq!(temperature.len(), 4);
    assert!(
        temperature.iter().any(|&t| (t - 1.0).abs() > 1e-6),
        "attn.temperature unchanged"
    );
    assert_eq!(m["head.weight"].shape(), [10, 128]);
}

/// PoolFormer v2 S12 (pooling token mixers, StarReLU MLPs with learned scalars, residual scales
/// in the last two stages, LayerNorm2d downsampling norms without biases) trains end to end at 32²
/// (maps of 8² down to 1²) with stochastic depth: the checkpoint holds timm's names (the stem's
/// 7×7 conv built for 1 channel, no norm biases, the scales' `scale`), the head for 10 classes,
/// and a StarReLU scale that training moved off 1.
#[test]
fn trains_poolformerv2_s12_at_32_pixels() {
    let saved = one_epoch_at_32("e2e-metaformer", "poolformerv2_s12", &TRANSFORMER_FLAGS);
    let m = &saved.model;
    assert_eq!(m["stem.conv.weight"].shape(), [64, 1, 7, 7]);
    assert_eq!(m["stages.1.downsample.norm.weight"].shape(), [64]);
    assert!(!m.contains_key("stages.0.blocks.0.norm1.bias"));
    assert_eq!(m["stages.2.blocks.5.res_scale2.scale"].shape(), [320]);
    let scale = m["stages.3.blocks.1.mlp.act.scale"].to_vec_f32().unwrap();
    assert_eq!(scale.len(), 1);
    assert!((scale[0] - 1.0).abs() > 1e-6, "mlp.act.scale unchanged");
    assert_eq!(m["head.fc.weight"].shape(), [10, 512]);
}

/// gMLP tiny (30 blocks of a gated channel MLP whose spatial gate mixes the tokens) trains end to
/// end at 32² (a 2×2 grid of 16-pixel patches, the token mixers built for its 4 tokens) with
/// stochastic depth: the checkpoint holds timm's names (the stem's `proj` built for 1 channel,
/// each gate's `norm` over half the hidden width and its `proj` across the 4 tokens), the head
/// for 10 classes, moved off timm's zero init by training.
#[test]
fn trains_gmlp_ti16_at_32_pixels() {
    let saved = one_epoch_at_32("e2e-gmlp", "gmlp_ti16_224", &TRANSFORMER_FLAGS);
    assert_shapes(
        &saved,
        &[
            ("stem.proj.weight", &[128, 1, 16, 16]),
            ("blocks.29.mlp_channels.gate.norm.weight", &[384]),
            ("blocks.29.mlp_channels.gate.proj.weight", &[4, 4]),
            ("blocks.29.mlp_channels.fc2.weight", &[128, 384]),
        ],
    );
    let m = &saved.model;
    let head = m["head.weight"].to_vec_f32().unwrap();
    assert_eq!(m["head.weight"].shape(), [10, 128]);
    assert!(head.iter().any(|&w| w != 0.0), "head.weight still zero");
}

/// `--model swin_tiny_patch4_window7_224 --img-size 32` builds the Swin for 32² (an 8² first
/// stage that shifts its 7×7 windows over a padded map, the later windows clamped to their 4², 2²
/// and 1² maps) and trains the 1-channel data end to end with stochastic depth: finite losses,
/// and the checkpoint holds timm's names and shapes (the bias tables sized by each stage's
/// window, no relative_position_index or attn_mask: timm's are non-persistent).
#[test]
fn trains_swin_tiny_at_32_pixels() {
    let model = "swin_tiny_patch4_window7_224";
    let saved = one_epoch_at_32("e2e-swin", model, &["--drop-path", "0.1"]);
    let m = &saved.model;
    assert_eq!(m["patch_embed.proj.weight"].shape(), [96, 1, 4, 4]);
    let table = |l: usize| {
        m[&format!("layers.{l}.blocks.1.attn.relative_position_bias_table")]
            .shape()
            .to_vec()
    };
    assert_eq!(table(0), [169, 3]);
    assert_eq!(table(1), [49, 6]);
    assert_eq!(table(3), [1, 24]);
    assert_eq!(
        m["layers.1.downsample.reduction.weight"].shape(),
        [192, 384]
    );
    assert!(m
        .keys()
        .all(|k| !k.contains("relative_position_index") && !k.contains("attn_mask")));
    assert_eq!(m["head.fc.weight"].shape(), [10, 768]);
}

/// `--train-crop-mode` rkrc and rkrr with `--color-jitter-prob`, `--grayscale-prob` and
/// `--gaussian-blur-prob` train a small RGB ImageFolder of 40×30 photos-to-be at 32 pixels (so
/// the keep-ratio resize scales and the crop pads or cuts): finite losses, the augmented batch
/// saved, args.yaml holding the flags. On IDX data, which trains with kiln's pad-and-crop, a timm
/// crop mode is refused by name.
#[test]
fn trains_an_image_folder_with_keep_ratio_crops_and_colour_probabilities() {
    let data = common::Scratch::new("e2e-augflags");
    common::write_image_folder(&data, 3, 6, 40, 30);
    let out = data.join("runs");
    for mode in ["rkrc", "rkrr"] {
        let args = [
            "--epochs",
            "1",
            "-b",
            "6",
            "--img-size",
            "32",
            "--train-crop-mode",
            mode,
            "--color-jitter-prob",
            "0.8",
            "--grayscale-prob",
            "0.2",
            "--gaussian-blur-prob",
            "0.5",
            "--save-images",
        ];
        train(&data, &out, mode, &args);
        let run = out.join(mode);
        let rows = summary_rows(&run);
        assert_eq!(rows.len(), 1, "{mode}");
        assert!(
            rows[0][1].is_finite() && rows[0][1] > 0.0,
            "{mode}: {rows:?}"
        );
        assert!(run.join("train-batch-0.png").is_file(), "{mode}");
        let yaml = std::fs::read_to_string(run.join("args.yaml")).unwrap();
        for line in [
            format!("train_crop_mode: {mode}"),
            "color_jitter_prob: 0.8".into(),
            "grayscale_prob: 0.2".into(),
            "gaussian_blur_prob: 0.5".into(),
        ] {
            assert!(yaml.contains(&line), "{mode}: args.yaml lacks {line}");
        }
    }

    let idx = dataset("e2e-augflags-idx", 32, 16);
    let stderr = common::train_fails(
        &idx,
        &idx.join("runs"),
        "idx",
        &["--train-crop-mode", "rkrr"],
    );
    assert!(
        stderr.contains("train_crop_mode") && stderr.contains("pad-and-crop"),
        "{stderr}"
    );
}

/// timm's `--val-interval`: epochs between intervals train and step the schedule but neither
/// validate nor checkpoint nor write a summary row; the last epoch always validates. `--tta 2`
/// scores half as many groups as images (timm's train.py reduction), and the notes of flags that
/// change nothing are printed once.
#[test]
fn validates_every_val_interval_epochs_with_timms_tta_reduction() {
    let data = dataset("e2e-val-interval", 64, 32);
    let out = data.join("runs");
    let log = train(
        &data,
        &out,
        "interval",
        &[
            "--epochs",
            "5",
            "--val-interval",
            "2",
            "--tta",
            "2",
            "--fast-norm",
            "--drop-connect",
            "0.1",
        ],
    );
    let run = out.join("interval");
    let epochs: Vec<f64> = summary_rows(&run).iter().map(|r| r[0]).collect();
    assert_eq!(epochs, vec![1.0, 3.0, 4.0], "summary rows: {log}");
    assert_eq!(log.matches("Skipping eval and checkpointing").count(), 2);
    assert!(run.join("checkpoint-4.safetensors").is_file());
    assert!(!run.join("checkpoint-0.safetensors").exists());
    assert!(log.contains("--fast-norm: ") && log.contains("--drop-connect: "));
    // 32 validation images in groups of 2: the last log line of each pass counts 16 groups
    // in 1 batch of 32, and timm's format shows its index.
    assert!(log.contains("Test: [   0/0]"), "{log}");
}
