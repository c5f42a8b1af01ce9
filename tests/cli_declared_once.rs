//! Each flag of `kiln train` is declared in one place: a field of `TrainArgs`, or of the library
//! config `TrainArgs` flattens (`OptimizerConfig`, `SchedulerConfig`, `AugConfig`, `LossConfig`,
//! `MixConfig`, `SizeScheduleConfig`, `DistillConfig`, `MultiLabelConfig`), or of a flag group the
//! commands share (`DataSource`, `InputFlags`), which carries its name, default and help.
//! A flag the command copies into a same-named field of another struct (`batch_size:
//! a.batch_size`) is declared a second time there, with a second default; the copies left are
//! listed below with their reason, and the list may only shrink: a listed copy that is gone fails
//! too, so the list stays the truth.

use clap::CommandFactory;
use kiln::cli::{Cli, DataSource, InputFlags, TrainArgs};
use kiln::train::distill::DistillConfig;
use kiln::train::loader::{AugConfig, MixConfig, MultiLabelConfig, SizeScheduleConfig};
use kiln::train::loss::LossConfig;
use kiln::train::optim::OptimizerConfig;
use kiln::train::sched::SchedulerConfig;
use std::collections::BTreeSet;
use std::path::Path;

/// The files where `kiln train` turns its flags into the library's structs.
const FILES: [&str; 2] = ["src/cli/configs.rs", "src/cli/train.rs"];

/// The run-wide seed, which every stage that draws random numbers takes.
const SEED: &str =
    "--seed seeds the optimizer's, the schedule's noise, the loader's and the loop's draws";
/// DataConfig's fields outside its three flattened groups, from timm's model and misc groups.
const DATA: &str = "a DataConfig field whose flag sits in timm's model or misc group, apart from the data flags clap flattens in one run";
/// TrainConfig's loop settings, spread over timm's groups and kiln's own flags.
const LOOP: &str =
    "a TrainConfig loop setting whose flag sits in timm's model or misc group, or among kiln's own";

/// The copies left: (file, field, why).
const COPIES: [(&str, &str, &str); 15] = [
    ("src/cli/configs.rs", "batch_size", DATA),
    ("src/cli/configs.rs", "workers", DATA),
    ("src/cli/configs.rs", "use_multi_epochs_loader", DATA),
    (
        "src/cli/configs.rs",
        "aug_splits",
        "the loader makes the views the JSD loss compares: DataConfig and LossConfig both need --aug-splits",
    ),
    ("src/cli/configs.rs", "seed", SEED),
    (
        "src/cli/configs.rs",
        "eval_metric",
        "the plateau schedule and the checkpoint saver both follow --eval-metric",
    ),
    ("src/cli/configs.rs", "grad_accum_steps", LOOP),
    ("src/cli/configs.rs", "nan_policy", LOOP),
    ("src/cli/configs.rs", "cuda_graph", LOOP),
    ("src/cli/configs.rs", "val_interval", LOOP),
    ("src/cli/configs.rs", "slim_lambda", LOOP),
    ("src/cli/train.rs", "log_interval", LOOP),
    ("src/cli/train.rs", "dist_bn", "DdpOptions, beside --no-ddp-bb's inverted broadcast_buffers"),
    (
        "src/cli/train.rs",
        "global_pool",
        "ModelArgs, timm's create_model keyword arguments, which --model-kwargs also fills",
    ),
    (
        "src/cli/train.rs",
        "drop_rate",
        "ModelArgs, timm's create_model keyword arguments, which --model-kwargs also fills",
    ),
];

/// The ids (field names) of `kiln train`'s flags.
fn train_flags() -> BTreeSet<String> {
    let cli = Cli::command();
    let train = cli
        .find_subcommand("train")
        .expect("kiln has a train command");
    (train.get_arguments())
        .map(|a| a.get_id().as_str().to_string())
        .collect()
}

/// The field a line of a struct literal sets from the flag of the same name (`name: a.name`,
/// `name: a.group.name.clone()`), if it does.
fn copied_field(line: &str) -> Option<&str> {
    let (field, value) = line.trim().split_once(": ")?;
    let value = value.trim_start_matches('(').strip_prefix("a.")?;
    let path_len = value
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(value.len());
    let mut segments: Vec<&str> = value[..path_len].split('.').collect();
    if value[path_len..].starts_with('(') {
        segments.pop(); // a method call on the value: `.clone()`
    }
    let named = field.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    (named && segments.last() == Some(&field)).then_some(field)
}

/// (file, field) of each copy of a `kiln train` flag in [`FILES`], once per pair.
fn copies() -> BTreeSet<(String, String)> {
    let flags = train_flags();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = BTreeSet::new();
    for file in FILES {
        let src = std::fs::read_to_string(root.join(file)).unwrap();
        for field in src.lines().filter_map(copied_field) {
            if flags.contains(field) {
                found.insert((file.to_string(), field.to_string()));
            }
        }
    }
    found
}

#[test]
fn the_copy_finder_reads_struct_literals() {
    assert_eq!(copied_field("        seed: a.seed,"), Some("seed"));
    assert_eq!(copied_field("  aug: a.aug.clone(),"), Some("aug"));
    assert_eq!(copied_field("  m: a.m.clone(),"), Some("m"));
    assert_eq!(copied_field("  m: a.x.clone(),"), None);
    assert_eq!(copied_field("  n: (a.loss.n).max(1),"), Some("n"));
    assert_eq!(copied_field("  lr: a.sched.lr_rule.lr,"), Some("lr"));
    assert_eq!(copied_field("  lr: lr,"), None);
    assert_eq!(copied_field("  tta: a.tta == 2,"), Some("tta"));
    assert_eq!(copied_field("  a: b.a,"), None);
}

#[test]
fn no_flag_is_copied_into_a_second_declaration_but_the_listed() {
    let found = copies();
    let listed: BTreeSet<(String, String)> = COPIES
        .iter()
        .map(|(f, n, _)| (f.to_string(), n.to_string()))
        .collect();
    let new: Vec<_> = found.difference(&listed).collect();
    assert!(
        new.is_empty(),
        "flags copied into a second declaration (declare them once, on the library config, or \
         list them with the reason): {new:?}"
    );
    let gone: Vec<_> = listed.difference(&found).collect();
    assert!(gone.is_empty(), "listed copies that are gone: {gone:?}");
}

#[test]
fn the_flattened_configs_default_as_the_command_line() {
    let a = TrainArgs::default();
    assert_eq!(a.aug, AugConfig::default());
    assert_eq!(a.loss, LossConfig::default());
    assert_eq!(a.mix, MixConfig::default());
    assert_eq!(a.sizes, SizeScheduleConfig::default());
    assert_eq!(a.distill, DistillConfig::default());
    assert_eq!(a.multi_label, MultiLabelConfig::default());
    assert_eq!(a.source, DataSource::default());
    assert_eq!(a.input, InputFlags::default());
    let sched = SchedulerConfig {
        seed: a.sched.seed,
        eval_metric: a.sched.eval_metric.clone(),
        ..SchedulerConfig::default()
    };
    assert_eq!(a.sched, sched);
    // timm's train.py defaults --weight-decay to 2e-5 where create_optimizer_v2 takes 0.
    assert_eq!(a.optim, OptimizerConfig::default().weight_decay(2e-5));
}
