//! Every option of timm's train.py parses in `kiln train` with timm's spellings and defaults, from
//! the command line and from timm's own args.yaml; the ones kiln cannot honour are refused, when
//! set, with one line naming the flag and the reason. The option list and args.yaml are timm's
//! (scripts/fixtures/make_train_flag_fixtures.py).

mod common;

use common::argparse::unset_or;
use kiln::cli::{
    data_config, data_flags, optimizer_config, resolve_lr, scheduler_config, TrainArgs,
};
use kiln::train::dist::DistBn;
use kiln::train::loader::{
    resolve_data_config, AugConfig, DataConfig, MixConfig, SizeScheduleConfig,
    IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD,
};
use kiln::train::loss::LossConfig;
use kiln::train::optim::OptimizerConfig;
use kiln::train::sched::SchedulerConfig;
use serde_json::Value;
use std::process::Command as Process;

const FLAGS: &str = include_str!("fixtures/timm_train_flags.json");
const ARGS_YAML: &str = include_str!("fixtures/timm_args_default.yaml");

/// Values for the options whose timm default is unset (the others are fed their default).
const SAMPLES: &[(&str, &str)] = &[
    ("config", "configs/fashion-mnist.yaml"),
    ("data_dir", "data/fashion-mnist"),
    ("dataset", "folder"),
    ("train_num_samples", "100"),
    ("val_num_samples", "100"),
    ("class_map", "classes.txt"),
    ("input_img_mode", "RGB"),
    ("input_key", "image"),
    ("target_key", "label"),
    ("pretrained_path", "weights.safetensors"),
    ("initial_checkpoint", "init.safetensors"),
    ("resume", "last.safetensors"),
    ("num_classes", "10"),
    ("gp", "max"),
    ("img_size", "32"),
    ("in_chans", "1"),
    ("input_size", "3 32 32"),
    ("crop_pct", "0.9"),
    ("mean", "0.5 0.5 0.5"),
    ("std", "0.2 0.2 0.2"),
    ("interpolation", "bicubic"),
    ("validation_batch_size", "64"),
    ("fuser", "te"),
    ("model_kwargs", "zero_init_last=False drop_rate=0.1"),
    ("head_init_scale", "0.5"),
    ("head_init_bias", "-2"),
    ("torchcompile_mode", "max-autotune"),
    ("torchcompile", "inductor"),
    ("model_dtype", "bfloat16"),
    ("device_modules", "torch_xla"),
    ("opt_eps", "1e-8"),
    ("opt_betas", "0.9 0.999"),
    ("clip_grad", "1.0"),
    ("layer_decay", "0.75"),
    ("layer_decay_no_opt_scale", "0.01"),
    ("opt_kwargs", "foo=1"),
    ("lr", "0.1"),
    ("lr_base_scale", "sqrt"),
    ("lr_noise", "0.4 0.9"),
    ("start_epoch", "2"),
    ("train_crop_mode", "rkrr"),
    ("color_jitter_prob", "0.5"),
    ("grayscale_prob", "0.1"),
    ("gaussian_blur_prob", "0.1"),
    ("aa", "rand-m9-mstd0.5"),
    ("bce_target_thresh", "0.2"),
    ("bce_pos_weight", "2"),
    ("cutmix_minmax", "0.2 0.8"),
    ("drop_connect", "0.1"),
    ("drop_path", "0.1"),
    ("drop_block", "0.1"),
    ("bn_momentum", "0.01"),
    ("bn_eps", "1e-3"),
    ("output", "runs"),
    ("experiment", "exp1"),
    ("wandb_project", "kiln"),
    ("wandb_tags", "a b"),
    ("wandb_resume_id", "abc"),
    ("train_img_sizes", "160 224"),
    ("train_batch_sizes", "128 64"),
    ("train_size_probs", "0.5 0.5"),
    ("train_batches_per_epoch", "100"),
    ("naflex_patch_sizes", "8 16"),
    ("naflex_patch_size_probs", "0.5 0.5"),
    ("kd_model_name", "resnet50"),
    ("distill_loss_weight", "0.5"),
    ("task_loss_weight", "0.5"),
    ("kd_student_feature_dim", "512"),
    ("kd_teacher_feature_dim", "2048"),
];

/// Where kiln's default differs from timm's, and why.
const KILN_DEFAULTS: &[(&str, &str)] = &[(
    "device",
    "auto: the first GPU when one is present, else the CPU (timm's cuda fails without a GPU)",
)];

fn timm_flags() -> Vec<Value> {
    serde_json::from_str::<Vec<Value>>(FLAGS).unwrap()
}

fn str_of(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap().to_string()
}

/// `kiln train ARGV`'s arguments, or the parser's message.
fn train_args(argv: &[String]) -> Result<TrainArgs, String> {
    common::parse_train(argv)
}

/// The words a flag takes: its sample, or its default written out.
fn values_for(flag: &Value) -> Vec<String> {
    let dest = str_of(flag, "dest");
    if flag["switch"].as_bool().unwrap() {
        return Vec::new();
    }
    if let Some((_, v)) = SAMPLES.iter().find(|(d, _)| *d == dest) {
        return v.split(' ').map(String::from).collect();
    }
    let words = match &flag["default"] {
        Value::Array(items) => items.iter().map(|v| v.to_string()).collect(),
        Value::String(s) if !s.is_empty() => vec![s.clone()],
        Value::Number(n) => vec![n.to_string()],
        other => panic!("{dest}: default {other} is unset and has no sample value"),
    };
    words
}

#[test]
fn every_timm_option_parses_in_every_spelling() {
    let flags = timm_flags();
    assert_eq!(flags.len(), 172, "timm's train.py options");
    let mut parsed = 0;
    for flag in &flags {
        for option in flag["options"].as_array().unwrap() {
            let mut argv = vec!["--data-dir".to_string(), "data/fashion-mnist".into()];
            argv.push(option.as_str().unwrap().to_string());
            argv.extend(values_for(flag));
            if let Err(e) = train_args(&argv) {
                panic!("kiln train {argv:?}: {e}");
            }
            parsed += 1;
        }
    }
    assert_eq!(parsed, 178, "spellings (long and short)");
}

#[test]
fn short_forms_and_values_reach_their_fields() {
    let a = train_args(&[
        "-c".into(),
        "configs/fashion-mnist.yaml".into(),
        "-b".into(),
        "32".into(),
        "-vb".into(),
        "16".into(),
        "-j".into(),
        "1".into(),
        "--dr".into(),
        "0.5".into(),
        "--input-size".into(),
        "1".into(),
        "28".into(),
        "28".into(),
        "--torchcompile".into(),
    ])
    .unwrap();
    assert_eq!(a.batch_size, 32);
    assert_eq!(a.validation_batch_size, Some(16));
    assert_eq!(a.workers, 1);
    assert_eq!(a.sched.decay_rate, 0.5);
    assert_eq!(a.input.input_size, Some(vec![1, 28, 28]));
    assert_eq!(a.torchcompile.as_deref(), Some("inductor"));
    let a = train_args(&["-vb=8".into(), "--local_rank".into(), "0".into()]).unwrap();
    assert_eq!(a.validation_batch_size, Some(8));
}

#[test]
fn defaults_are_timms() {
    let kiln = serde_json::to_value(TrainArgs::default()).unwrap();
    let mut differ = Vec::new();
    for flag in timm_flags() {
        let dest = str_of(&flag, "dest");
        if KILN_DEFAULTS.iter().any(|(d, _)| *d == dest) {
            continue;
        }
        let ours = kiln
            .get(&dest)
            .unwrap_or_else(|| panic!("TrainArgs has no field for {dest}"));
        let (want, got) = (unset_or(&flag["default"]), unset_or(ours));
        // --gp: timm's None is the model's default pool, which is avg.
        let model_default = dest == "gp" && got == Some(Value::from("avg"));
        if want != got && !model_default {
            differ.push(format!("{dest}: timm {want:?}, kiln {got:?}"));
        }
    }
    assert!(differ.is_empty(), "defaults differ:\n{}", differ.join("\n"));
}

fn kiln(args: &[&str]) -> (bool, String) {
    let out = Process::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .output()
        .expect("run kiln");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !stderr.contains("panicked"),
        "kiln {args:?} panicked: {stderr}"
    );
    (out.status.success(), stderr)
}

/// Asserts that a `kiln train` run on `/no/such/data` failed only at the missing data folder:
/// every flag check before it passed.
fn assert_stopped_at_the_missing_data(ok: bool, stderr: &str) {
    assert!(!ok);
    assert!(
        stderr.contains("data folder /no/such/data does not exist"),
        "{stderr}"
    );
}

#[test]
fn timms_own_args_yaml_is_accepted() {
    let path = std::env::temp_dir().join(format!("kiln-timm-args-{}.yaml", std::process::id()));
    std::fs::write(&path, ARGS_YAML).unwrap();
    // Every refusal and value check passes; the run stops at the missing data folder.
    let (ok, stderr) = kiln(&[
        "train",
        "--config",
        path.to_str().unwrap(),
        "--data-dir",
        "/no/such/data",
        "--device",
        "cpu",
    ]);
    std::fs::remove_file(&path).ok();
    assert_stopped_at_the_missing_data(ok, &stderr);
}

#[test]
fn yaml_with_timms_keys_sets_the_new_flags() {
    let path = std::env::temp_dir().join(format!("kiln-timm-keys-{}.yaml", std::process::id()));
    std::fs::write(
        &path,
        "model: resnet18\ninput_size: [1, 28, 28]\nbn_momentum: 0.01\nbn_eps: 0.001\n\
         head_init_scale: 0.5\nmodel_kwargs: {zero_init_last: false}\nlocal_rank: 0\n\
         pin_mem: true\nno_prefetcher: true\ntorchcompile: null\nwandb_tags: []\n",
    )
    .unwrap();
    let a = train_args(&[
        "--config".into(),
        path.to_str().unwrap().into(),
        "--bn-eps".into(),
        "0.01".into(),
    ]);
    std::fs::remove_file(&path).ok();
    let a = a.unwrap();
    assert_eq!(a.input.input_size, Some(vec![1, 28, 28]));
    assert_eq!(a.bn_momentum, Some(0.01));
    assert_eq!(a.bn_eps, Some(0.01), "the command line overrides the file");
    assert_eq!(a.head_init_scale, Some(0.5));
    assert_eq!(a.model_kwargs, ["zero_init_last=False"]);
    assert!(a.pin_mem && a.no_prefetcher);
    assert_eq!(a.torchcompile, None);
}

/// Each refused flag with a value that sets it.
const REFUSED: &[(&str, &[&str])] = &[
    ("--dataset", &["tfds/imagenet2012"]),
    ("--train-num-samples", &["100"]),
    ("--val-num-samples", &["100"]),
    ("--dataset-download", &[]),
    ("--input-key", &["image"]),
    ("--target-key", &["label"]),
    ("--dataset-trust-remote-code", &[]),
    ("--fuser", &["te"]),
    ("--torchcompile-mode", &["max-autotune"]),
    ("--torchscript", &[]),
    ("--torchcompile", &[]),
    ("--device-modules", &["torch_xla"]),
    ("--log-wandb", &[]),
    ("--naflex-loader", &[]),
];

#[test]
fn refused_flags_say_why_in_one_line() {
    for (flag, values) in REFUSED {
        let mut args = vec!["train", "--data-dir", "/no/such/data", flag];
        args.extend_from_slice(values);
        let (ok, stderr) = kiln(&args);
        assert!(!ok, "kiln {args:?} should fail");
        assert_eq!(stderr.trim().lines().count(), 1, "kiln {args:?}:\n{stderr}");
        assert!(
            stderr.starts_with(&format!("error: {flag}: not supported by kiln: ")),
            "kiln {args:?}:\n{stderr}"
        );
    }
}

#[test]
fn harmless_flags_are_accepted() {
    // pin-mem, no-prefetcher, multi-epochs loader and synchronize-step change nothing in kiln;
    // the run goes on to the (missing) data folder.
    let (ok, stderr) = kiln(&[
        "train",
        "--data-dir",
        "/no/such/data",
        "--pin-mem",
        "--no-prefetcher",
        "--use-multi-epochs-loader",
        "--synchronize-step",
        "--wandb-project",
        "p",
    ]);
    assert_stopped_at_the_missing_data(ok, &stderr);
}

#[test]
fn model_flags_reach_the_trained_model() {
    let data = common::dataset("model-flags", 64, 32);
    let out = data.join("out");
    common::train(
        &data,
        &out,
        "flags",
        &[
            "--epochs",
            "1",
            "--input-size",
            "1",
            "28",
            "28",
            "--bn-momentum",
            "0",
            "--bn-eps",
            "1e-3",
            "--head-init-scale",
            "0",
            "--head-init-bias",
            "-2",
            "--model-kwargs",
            "zero_init_last=False",
            "layers=(1, 1, 1, 1)",
        ],
    );
    let tensors = common::tensor_bits(&out.join("flags/last.safetensors"));
    let values = |suffix: &str| {
        tensors
            .iter()
            .filter(|(n, _, _)| n.starts_with("model.") && n.ends_with(suffix))
            .flat_map(|(_, _, b)| b.iter().map(|&b| f32::from_bits(b)))
            .collect::<Vec<f32>>()
    };
    // Momentum 0: no BatchNorm's running statistics moved in two updates.
    assert!(values("running_mean").iter().all(|&m| m == 0.0));
    assert!(values("running_var").iter().all(|&v| v == 1.0));
    // The head started at zero weights and bias -2; two SGD updates at lr 0.05 move it a little.
    assert!(values("fc.bias").iter().all(|&b| (b + 2.0).abs() < 0.2));
    assert!(values("fc.weight").iter().all(|&w| w.abs() < 0.2));
    // zero_init_last=False: the last BN of each block keeps gamma 1 (not 0) at the start, so
    // after two updates it is still far from 0.
    assert!(values("bn2.weight").iter().all(|&g| g > 0.5));
    // layers=(1, 1, 1, 1), a ResNet's own argument: one block per stage.
    assert!(tensors
        .iter()
        .any(|(n, _, _)| n.starts_with("model.layer4.0.")));
    assert!(!tensors
        .iter()
        .any(|(n, _, _)| n.starts_with("model.layer1.1.")));
    let stderr = common::train_fails(&data, &out, "bad", &["--model-kwargs", "window_size=7"]);
    assert!(
        stderr.contains("'window_size'") && stderr.contains("stem_width"),
        "the error names the key and the ones resnet18 takes: {stderr}"
    );
}

#[test]
fn the_library_defaults_are_the_command_lines() {
    let a = TrainArgs::default();
    assert_eq!(scheduler_config(&a), SchedulerConfig::default());
    assert_eq!(a.aug, AugConfig::default());
    assert_eq!(a.loss, LossConfig::default());
    assert_eq!(a.mix, MixConfig::default());
    assert_eq!(a.sizes, SizeScheduleConfig::default());
    let lr = resolve_lr(&a, 1, a.batch_size as f64);
    // timm's train.py defaults --weight-decay to 2e-5 where create_optimizer_v2 takes 0.
    let opt = OptimizerConfig::new("sgd").lr(lr).weight_decay(2e-5);
    assert_eq!(optimizer_config(&a, lr), opt);
    // The data flags over what timm's resolve_data_config takes from resnet50's pretrained cfg.
    let model = kiln::nn::create_model(&a.model, &Default::default()).unwrap();
    let resolved = resolve_data_config(&data_flags(&a, 3), model.pretrained_cfg(), false).unwrap();
    assert_eq!((resolved.img_size, resolved.crop_pct), (224, 0.95));
    let data = data_config(&a, &resolved, false);
    let want = DataConfig {
        crop_pct: Some(0.95),
        interpolation: "bicubic".into(),
        mean: Some(IMAGENET_DEFAULT_MEAN.to_vec()),
        std: Some(IMAGENET_DEFAULT_STD.to_vec()),
        ..DataConfig::default()
    };
    assert_eq!(format!("{data:?}"), format!("{want:?}"));
}

/// The four augmentation flags kiln once refused reach DataConfig with timm's meaning.
#[test]
fn crop_mode_and_colour_probabilities_reach_the_data_config() {
    let words = |w: &[&str]| -> Vec<String> { w.iter().map(|s| s.to_string()).collect() };
    let a = train_args(&words(&[
        "--train-crop-mode",
        "rkrc",
        "--color-jitter-prob",
        "0.8",
        "--grayscale-prob",
        "0.2",
        "--gaussian-blur-prob",
        "0.5",
    ]))
    .unwrap();
    let data = |a: &TrainArgs| {
        let model = kiln::nn::create_model(&a.model, &Default::default()).unwrap();
        let resolved = resolve_data_config(&data_flags(a, 3), model.pretrained_cfg(), false);
        data_config(a, &resolved.unwrap(), false)
    };
    let got = data(&a);
    let plain = data(&train_args(&[]).unwrap());
    let aug = (plain.aug.clone())
        .train_crop_mode("rkrc")
        .color_jitter_prob(0.8)
        .grayscale_prob(0.2)
        .gaussian_blur_prob(0.5);
    let want = plain.aug(aug);
    assert_eq!(format!("{got:?}"), format!("{want:?}"));
    // timm's `train_crop_mode or 'rrc'`: an empty mode is rrc.
    let a = train_args(&words(&["--train-crop-mode", ""])).unwrap();
    assert_eq!(data(&a).aug.crop_mode(), "rrc");
    let a = train_args(&words(&["--train-crop-mode", "rcc"])).unwrap();
    let e = data(&a).validate().unwrap_err();
    assert!(e.to_string().contains("train_crop_mode"), "{e}");
}

#[test]
fn enum_flags_list_their_values_when_unknown() {
    for (flag, value, listed) in [
        ("--clip-mode", "l1", "agc"),
        ("--nan-policy", "ignore", "skip"),
        ("--cuda-graph", "maybe", "auto"),
        ("--dist-bn", "average", "broadcast"),
    ] {
        let e = train_args(&[flag.to_string(), value.to_string()]).unwrap_err();
        assert!(
            e.contains(flag) && e.contains(listed),
            "{flag} {value}: {e}"
        );
    }
    let a = train_args(&["--dist-bn".into(), String::new()]).unwrap();
    assert_eq!(a.dist_bn, DistBn::Off);
}
