//! `kiln train` reads a command line as timm's train.py does through argparse: unique prefixes
//! (`--jsd`), exact names before prefixes, argparse's "ambiguous option" error, `--flag=value`,
//! negative values, the last occurrence winning, `-vb`, and `--config` read first with its
//! prefixes. The truth is train.py's own `_parse_args` run on the same command lines, among them
//! every training command timm documents (scripts/fixtures/make_train_flag_fixtures.py).

mod common;

use clap::CommandFactory;
use common::argparse::{argv_of, long_options, strings, to_f32, unset_or};
use common::{kiln_run as kiln, parse_train as train_args};
use kiln::cli::{Cli, TrainArgs};
use serde_json::Value;

const ARGPARSE: &str = include_str!("fixtures/timm_train_argparse.json");

/// Where kiln's parsed values differ from timm's namespace `want`.
fn differences(
    argv: &[&str],
    ours: &TrainArgs,
    want: &serde_json::Map<String, Value>,
) -> Vec<String> {
    let ours = serde_json::to_value(ours).unwrap();
    let mut differ = Vec::new();
    for (dest, timm) in want {
        // kiln's one default of its own: --device auto (the first GPU, else the CPU; timm: cuda).
        if dest == "device" && !argv.contains(&"--device") {
            continue;
        }
        let Some(kiln) = ours.get(dest) else {
            differ.push(format!("{dest}: kiln has no such field"));
            continue;
        };
        let (mut want, mut got) = (unset_or(timm), unset_or(kiln));
        // kiln keeps --mean and --std as f32.
        if dest == "mean" || dest == "std" {
            (want, got) = (want.map(to_f32), got.map(to_f32));
        }
        // --gp: timm's None is the model's default pool, which kiln writes as avg.
        let model_default = dest == "gp" && got == Some(Value::from("avg"));
        if want != got && !model_default {
            differ.push(format!("{dest}: timm {want:?}, kiln {got:?}"));
        }
    }
    differ
}

#[test]
fn command_lines_read_as_timms_train_py_reads_them() {
    let fixture: Value = serde_json::from_str(ARGPARSE).unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    let documented = cases.iter().filter(|c| c["documented"] == true).count();
    assert_eq!(documented, 9, "timm's documented training commands");
    let mut failures = Vec::new();
    for case in cases {
        let argv = argv_of(case);
        let got = train_args(&argv);
        match (&case["error"], got) {
            (Value::String(want), Err(e)) => {
                // argparse's ambiguity message word for word; other errors in clap's words.
                if want.starts_with("ambiguous option") && !e.contains(want.as_str()) {
                    failures.push(format!("{argv:?}: timm says {want:?}, kiln {e:?}"));
                }
            }
            (Value::String(want), Ok(_)) => {
                failures.push(format!("{argv:?}: timm fails ({want}), kiln parses it"))
            }
            (_, Err(e)) => failures.push(format!("{argv:?}: timm parses it, kiln fails: {e}")),
            (_, Ok(a)) => {
                let want = case["args"].as_object().unwrap();
                for d in differences(&argv, &a, want) {
                    failures.push(format!("{argv:?}: {d}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// argparse tries options in the order they were added, which orders its ambiguity lists: kiln's
/// train options are defined in timm's order, its own (and its hidden `--local-rank`) among them.
#[test]
fn options_are_defined_in_timms_order() {
    let fixture: Value = serde_json::from_str(ARGPARSE).unwrap();
    let timm = strings(&fixture["option_order"]);
    let cli = Cli::command();
    let train = cli.find_subcommand("train").unwrap();
    let kiln: Vec<String> = long_options(train)
        .into_iter()
        .filter(|o| timm.contains(&o.as_str()))
        .collect();
    let timm_without_help: Vec<&str> = timm.into_iter().filter(|o| *o != "--help").collect();
    assert_eq!(kiln, timm_without_help);
}

#[test]
fn kilns_own_options_are_candidates_too() {
    let a = train_args(&[
        "--data-dir",
        "d",
        "--log-t",
        "--nan",
        "skip",
        "--early",
        "3",
    ])
    .unwrap();
    assert!(a.log_tensorboard);
    assert_eq!(a.early_stop, Some(3));
    let e = train_args(&["--data-dir", "d", "--log", "5"]).unwrap_err();
    assert!(
        e.contains(
            "ambiguous option: --log could match --log-interval, --log-tensorboard, --log-wandb"
        ),
        "{e}"
    );
    // --local_rank and kiln's --local-rank spelling are one option, not two candidates.
    assert_eq!(
        train_args(&["--data-dir", "d", "--local", "1"])
            .unwrap()
            .local_rank,
        1
    );
}

#[test]
fn a_config_sits_under_prefixed_flags() {
    let path = std::env::temp_dir().join(format!("kiln-argparse-{}.yaml", std::process::id()));
    std::fs::write(
        &path,
        "warmup_epochs: 3\njsd_loss: true\naug_splits: 3\nscale: [0.5, 1.0]\n",
    )
    .unwrap();
    let a = train_args(&[
        "--data-dir",
        "d",
        "--conf",
        path.to_str().unwrap(),
        "--warmup-e=7",
        "--sca",
        "0.25",
        "0.75",
    ]);
    std::fs::remove_file(&path).ok();
    let a = a.unwrap();
    assert_eq!(
        a.sched.warmup_epochs, 7,
        "the command line's prefix wins over the file"
    );
    assert_eq!(
        a.aug.scale,
        [0.25, 0.75],
        "a list flag is replaced, not extended"
    );
    assert!(
        a.loss.jsd_loss && a.loss.aug_splits == 3,
        "the file's keys stay"
    );
}

#[test]
fn the_binary_stops_on_an_ambiguous_prefix_and_reads_validates_flags_as_argparse() {
    let (code, _, stderr) = kiln(&["train", "--warmup", "3"]);
    assert_eq!(code, Some(2), "argparse's exit status:\n{stderr}");
    assert!(
        stderr.contains(
            "error: ambiguous option: --warmup could match --warmup-lr, --warmup-epochs, \
             --warmup-prefix"
        ),
        "{stderr}"
    );
    // validate: prefixes too, and --checkpoint's repeats add up (both files are named).
    let (code, _, stderr) = kiln(&[
        "validate",
        "/no/such/data",
        "--check",
        "a.safetensors",
        "--checkpoint=b.safetensors",
        "--use-t",
        "--crop-p=0.9",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("/no/such/data does not exist"), "{stderr}");
    let (code, _, stderr) = kiln(&["validate", "--c", "a.safetensors"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "ambiguous option: --c could match --class-map, --crop-pct, --crop-mode, \
             --channels-last, --checkpoint, --crop-border-pixels"
        ),
        "{stderr}"
    );
}

#[test]
fn schedule_takes_train_flags_by_prefix() {
    let (code, stdout, stderr) = kiln(&[
        "schedule",
        "--sched",
        "step",
        "--warmup-e",
        "0",
        "--decay-e",
        "1",
        "--dr",
        "0.5",
        "--epochs=2",
        "--updates-per",
        "1",
        "--lr",
        "0.4",
        "--plot",
        std::env::temp_dir()
            .join(format!("kiln-argparse-{}.png", std::process::id()))
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(code, Some(0), "{stderr}");
    let lrs: Vec<f64> = stdout
        .lines()
        .filter_map(|l| l.rsplit(',').next()?.parse().ok())
        .collect();
    assert_eq!(lrs, [0.4, 0.2], "{stdout}");
}

/// A YAML value's kind, with ints and floats one kind (timm's `aug_repeats: 0` is kiln's `0.0`).
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(s) if s.is_empty() => "''",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "mapping",
    }
}

/// The run folder's args.yaml holds every key of timm's namespace (train.py's args.yaml is that
/// namespace dumped), each with the kind of value timm holds there, so `train.py --config` reads
/// kiln's args.yaml as it reads its own. kiln's value may be set where timm's is None: kiln writes
/// the resolved default (`gp: avg`, `device: auto`).
#[test]
fn args_yaml_holds_timms_keys_with_timms_kinds() {
    let fixture: Value = serde_json::from_str(ARGPARSE).unwrap();
    let mut failures = Vec::new();
    for case in fixture["cases"].as_array().unwrap() {
        if case["error"].is_string() {
            continue;
        }
        let argv = argv_of(case);
        let yaml = train_args(&argv).unwrap().args_yaml().unwrap();
        let ours: Value = serde_yaml::from_str(&yaml).unwrap();
        for (dest, timm) in case["args"].as_object().unwrap() {
            match ours.get(dest) {
                None => failures.push(format!("{argv:?}: args.yaml has no key {dest}")),
                Some(v) if kind(v) != kind(timm) && !timm.is_null() => failures.push(format!(
                    "{argv:?}: {dest} is {} ({v}) where timm's is {} ({timm})",
                    kind(v),
                    kind(timm)
                )),
                Some(_) => {}
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `--model-kwargs` and `--opt-kwargs` land in args.yaml as timm's `ParseKwargs` leaves them
/// (each value `ast.literal_eval`'d, else its text), and read back through `--config` unchanged.
#[test]
fn kwargs_in_args_yaml_are_timms_mappings_and_read_back() {
    let a = train_args(&[
        "--data-dir",
        "d",
        "--model-kwargs",
        "zero_init_last=False",
        "drop_rate=0.1",
        "img_size=32",
        "global_pool='avg'",
        "act_layer=gelu",
        "--opt-kwargs",
        "foreach=None",
    ])
    .unwrap();
    let yaml = a.args_yaml().unwrap();
    let ours: Value = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(
        ours["model_kwargs"],
        serde_json::json!({"zero_init_last": false, "drop_rate": 0.1, "img_size": 32,
                           "global_pool": "avg", "act_layer": "gelu"})
    );
    assert_eq!(ours["opt_kwargs"], serde_json::json!({"foreach": null}));
    let path = std::env::temp_dir().join(format!("kiln-args-yaml-{}.yaml", std::process::id()));
    std::fs::write(&path, &yaml).unwrap();
    let back = train_args(&["--config", path.to_str().unwrap()]);
    std::fs::remove_file(&path).ok();
    let back = back.unwrap();
    assert_eq!(
        back.model_kwargs,
        [
            "zero_init_last=False",
            "drop_rate=0.1",
            "img_size=32",
            "global_pool=avg",
            "act_layer=gelu"
        ]
    );
    assert_eq!(back.optim.kwargs, [("foreach".into(), "None".into())]);
}
