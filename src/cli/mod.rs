//! The `kiln` command line: `train`, `validate`, `infer`, `export`, `schedule`, `plot`, `launch`
//! and `models`, with timm's flags and YAML configs. Flags become the library's config structs in
//! `configs.rs`; kiln-train never sees them.

mod argparse;
mod args;
#[cfg(feature = "onnx-check")]
mod check_forward;
mod config;
mod data_source;
#[macro_use]
mod configs;
#[macro_use]
mod model_record;
mod devices;
mod elastic;
mod eval_args;
mod export;
mod hfds;
mod infer;
mod infer_args;
mod input_flags;
mod launch;
mod limits;
mod logger;
mod model_flags;
mod plot;
mod pretrained;
mod prune;
mod ranges;
mod retry;
mod run_dir;
mod schedule;
mod setup;
mod teacher;
mod train;
mod unsupported;
mod validate;
mod validate_scores;
mod wds;

pub use args::{TrainArgs, ValidateArgs};
pub use configs::{
    batch_size_reference, data_config, data_flags, optimizer_config, resolve_lr, scheduler_config,
    train_config, variable_batch_loss_scale,
};
pub use data_source::DataSource;
pub use export::ExportArgs;
pub use input_flags::InputFlags;
pub use launch::LaunchArgs;
pub use prune::PruneArgs;
pub use schedule::ScheduleArgs;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use kiln_train::Result;

/// kiln: timm's train.py, validate.py and models in Rust, on the CPU or NVIDIA GPUs, without
/// libtorch.
#[derive(Debug, Parser)]
#[command(
    name = "kiln",
    version,
    about = "kiln: timm's train.py, validate.py and models in Rust, on the CPU or NVIDIA GPUs, without libtorch.",
    after_help = "`kiln train` with no flags trains resnet18 on the Fashion-MNIST subset shipped in data/.\nIt takes timm's flags with timm's meaning; the few it cannot honour are refused with the reason (docs/flags.md).",
    arg_required_else_help = true
)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// What `kiln` can do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a model (timm's train.py flags; without DATA, on the embedded Fashion-MNIST subset).
    #[command(args_override_self = true)]
    Train(Box<TrainArgs>),
    /// Evaluate checkpoints (timm's validate.py).
    #[command(args_override_self = true)]
    Validate(Box<ValidateArgs>),
    /// Predict the top-k classes of every image in a folder (timm's inference.py).
    #[command(args_override_self = true)]
    Infer(Box<infer_args::InferArgs>),
    /// Print the lr of every optimizer update of a run (`epoch,update,lr`) and plot it to a PNG.
    #[command(args_override_self = true)]
    Schedule(Box<ScheduleArgs>),
    /// Draw a run folder's summary.csv as loss.png, accuracy.png and lr.png in that folder.
    Plot {
        /// The run folder (holding summary.csv).
        run_dir: std::path::PathBuf,
    },
    /// Write a model as ONNX (timm's onnx_export.py): `kiln export resnet50 -o resnet50.onnx`.
    #[command(args_override_self = true)]
    Export(Box<ExportArgs>),
    /// Remove channels by importance until the MACs or parameters fall by a ratio:
    /// `kiln prune --model resnet50 --criterion l1 --ratio 0.5 -o resnet50-pruned.safetensors`.
    Prune(Box<PruneArgs>),
    /// Start this node's ranks of a data-parallel run, as torchrun does:
    /// `kiln launch --nproc-per-node 2 -- train ...`.
    Launch(Box<LaunchArgs>),
    /// List the registered models, optionally filtered by a wildcard pattern.
    Models {
        /// Shell-style pattern, e.g. 'resnet*d'.
        pattern: Option<String>,
        /// List the pretrained tags instead (`arch.tag`, timm's default first), as timm's
        /// `list_pretrained`.
        #[arg(long)]
        pretrained: bool,
    },
}

/// timm's two-letter short flag `-vb` (clap's short flags are one letter) as its long form.
fn long_vb(arg: &str) -> String {
    match arg.strip_prefix("-vb") {
        Some("") => "--validation-batch-size".into(),
        Some(rest) if rest.starts_with('=') => format!("--validation-batch-size{rest}"),
        _ => arg.to_string(),
    }
}

/// The subcommands that read their flags as argparse does (see `argparse.rs`), each with the
/// options whose repeats add up instead of replacing each other.
const ARGPARSE_COMMANDS: [(&str, &[&str]); 5] = [
    ("train", &[]),
    ("schedule", &[]),
    ("validate", &["checkpoint"]),
    ("infer", &[]),
    ("export", &[]),
];

/// kiln's own options of a subcommand, which the timm script it replaces lacks: a prefix they
/// share with one of the script's options selects the script's (`kiln export --mod` is
/// onnx_export.py's `--model`, not ambiguous with kiln's `--model-kwargs`). train's own options
/// stay full candidates, as they always were.
const KILN_ONLY: [(&str, &[&str]); 2] = [
    ("validate", &["tta"]),
    (
        "export",
        &[
            "format",
            "output",
            "use_ema",
            "pretrained",
            "in_chans",
            "crop_pct",
            "interpolation",
            "model_kwargs",
        ],
    ),
];

/// The `kiln` command with argparse's value rules on the commands that take timm's flags.
fn command() -> clap::Command {
    ARGPARSE_COMMANDS
        .iter()
        .fold(Cli::command(), |cmd, (name, appending)| {
            cmd.mut_subcommand(name, |sub| argparse::with_argparse_values(sub, appending))
        })
}

/// `argv` with timm's `-vb` spelled long and, after a subcommand that takes timm's flags, each
/// long-option prefix expanded to the option it names (an ambiguous one is an error).
fn expand(argv: &[String]) -> std::result::Result<Vec<String>, clap::Error> {
    let argv: Vec<String> = argv.iter().map(|a| long_vb(a)).collect();
    let Some(name) = argv
        .get(1)
        .filter(|n| ARGPARSE_COMMANDS.iter().any(|(c, _)| c == n))
    else {
        return Ok(argv);
    };
    let mut cmd = command();
    cmd.build();
    let sub = cmd
        .find_subcommand_mut(name)
        .expect("ARGPARSE_COMMANDS names subcommands of Cli");
    let kiln_only = KILN_ONLY
        .iter()
        .find(|(c, _)| c == name)
        .map_or(&[][..], |(_, ids)| ids);
    let rest = argparse::expand_prefixes(sub, &argv[2..], kiln_only)?;
    Ok(argv[..2].iter().cloned().chain(rest).collect())
}

fn parse_from(argv: &[String]) -> std::result::Result<Cli, clap::Error> {
    let matches = command().try_get_matches_from(argv)?;
    Cli::from_arg_matches(&matches)
}

/// Parses `argv` (program name first) with argparse's semantics for timm's flags (unique prefixes,
/// `--flag=value`, negative values, the last occurrence winning), applying a YAML config under the
/// command-line flags: an explicit `--config`, or for `train` without data the built-in
/// Fashion-MNIST config. The config's keys are exact flag names, never prefixes, as timm reads them.
/// For `train` it notes whether `--model` was given (`TrainArgs::model_given`).
pub fn parse(argv: &[String]) -> std::result::Result<Cli, clap::Error> {
    let argv = expand(argv)?;
    let first = parse_from(&argv)?;
    let Command::Train(t) = &first.command else {
        return Ok(first);
    };
    let on_command_line = command()
        .try_get_matches_from(&argv)?
        .subcommand_matches("train")
        .is_some_and(|m| m.value_source("model") == Some(clap::parser::ValueSource::CommandLine));
    let yaml = match (&t.config, t.source.is_unset()) {
        (Some(path), _) => Some((config::read_config(path), true)),
        (None, true) => Some((
            config::yaml_to_flags(config::FASHION_MNIST, "configs/fashion-mnist.yaml"),
            false,
        )),
        (None, false) => None,
    };
    let (mut cli, in_config) = match yaml {
        None => (first, false),
        Some((yaml, explicit)) => {
            let flags = yaml.map_err(|e| {
                command().error(clap::error::ErrorKind::InvalidValue, e.to_string())
            })?;
            let in_config = explicit && flags.iter().any(|f| f == "--model");
            let pos = argv.iter().position(|a| a == "train").map_or(1, |p| p + 1);
            let merged: Vec<String> = argv[..pos]
                .iter()
                .cloned()
                .chain(flags)
                .chain(argv[pos..].iter().cloned())
                .collect();
            (parse_from(&merged)?, in_config)
        }
    };
    if let Command::Train(t) = &mut cli.command {
        // The built-in config's model, like timm's default, gives way to a checkpoint's.
        t.model_given = on_command_line || in_config;
    }
    Ok(cli)
}

/// Runs a parsed command. Call it from `main`: train, validate and infer make the calling thread
/// a worker of rayon's pool for the rest of the process (`compute_on_calling_thread`).
pub fn run(cli: Cli) -> Result<()> {
    logger::init();
    match cli.command {
        Command::Train(a) => train::train(*a),
        Command::Validate(a) => validate::validate(*a),
        Command::Infer(a) => infer::infer(*a),
        Command::Schedule(a) => schedule::schedule(*a),
        Command::Plot { run_dir } => plot::plot(&run_dir),
        Command::Launch(a) => launch::launch(&a),
        Command::Export(a) => export::export(*a),
        Command::Prune(a) => prune::prune_cmd(*a),
        Command::Models {
            pattern,
            pretrained,
        } => {
            let pattern = pattern.as_deref().unwrap_or("*");
            let names = match pretrained {
                true => kiln_nn::list_pretrained(pattern),
                false => kiln_nn::list_models(pattern),
            };
            for name in names {
                println!("{name}");
            }
            Ok(())
        }
    }
}
