//! argparse's reading of a command line, as timm's `train.py` and `validate.py` get it, laid over
//! clap: a unique prefix of a long option selects it (`--jsd` is `--jsd-loss`) and an exact name
//! always wins, an ambiguous prefix is argparse's error listing the candidates, `--prefix=value`
//! works, values may be negative numbers, and a later occurrence of an option replaces an earlier
//! one. Prefixes are expanded against the clap `Command` before clap parses; clap reads the values.

use clap::error::ErrorKind;
use clap::{Arg, ArgAction, Command};

/// `cmd` with argparse's value rules: every option that takes values accepts negative numbers
/// (`--head-init-bias -3`), and a repeated option keeps its last occurrence's values (argparse's
/// `store`), except the options in `appending`, whose occurrences add up.
pub fn with_argparse_values(cmd: Command, appending: &[&str]) -> Command {
    cmd.mut_args(|arg| {
        if arg.get_long().is_none() || !arg.get_action().takes_values() {
            return arg;
        }
        let append = appending.contains(&arg.get_id().as_str());
        let arg = arg.allow_negative_numbers(true);
        match arg.get_action() {
            ArgAction::Append if !append => arg.action(ArgAction::Set),
            _ => arg,
        }
    })
}

/// Every long spelling of `cmd`'s options (long names, then aliases) with its argument's id, in
/// the order argparse tries them: `--help` first (argparse adds it before any other option), then
/// the order of definition. `cmd` must be built (`Command::build`) so that `--help` exists.
fn long_spellings(cmd: &Command) -> Vec<(String, &str)> {
    let spellings = |arg: &Arg| -> Vec<String> {
        let aliases = arg.get_all_aliases().unwrap_or_default();
        arg.get_long()
            .into_iter()
            .chain(aliases)
            .map(|name| format!("--{name}"))
            .collect()
    };
    let (help, others): (Vec<&Arg>, Vec<&Arg>) = cmd
        .get_arguments()
        .partition(|a| matches!(a.get_action(), ArgAction::Help | ArgAction::HelpLong));
    help.into_iter()
        .chain(others)
        .flat_map(|arg| {
            let id = arg.get_id().as_str();
            spellings(arg).into_iter().map(move |s| (s, id))
        })
        .collect()
}

/// Expands the long options of `args` (the words after the subcommand name) against `cmd`, the
/// built subcommand, as argparse matches them: an exact spelling stays; a prefix of exactly one
/// option's spellings becomes that option (`--warmup-e=3` -> `--warmup-epochs=3`); a prefix of
/// several options is argparse's "ambiguous option" error. When `cmd` has `--config`, a prefix of
/// it selects it before anything else, as timm reads `-c/--config` with a parser of its own
/// first. Options in `kiln_only` (kiln's own, which the timm script lacks) give way to the
/// script's: a prefix they share with exactly one of the script's options selects that option, so
/// the script's own command lines read as the script reads them (`kiln export --mod M` is
/// `--model`, although kiln's export also has `--model-kwargs`). A negative value written `-.5`
/// becomes `-0.5`, which clap reads as a number. Unknown options, short options, other values and
/// everything after `--` are left to clap.
pub fn expand_prefixes(
    cmd: &mut Command,
    args: &[String],
    kiln_only: &[&str],
) -> Result<Vec<String>, clap::Error> {
    let spellings = long_spellings(cmd);
    let has_config = spellings.iter().any(|(s, _)| s == "--config");
    let mut out = Vec::with_capacity(args.len());
    let mut words = args.iter();
    for word in words.by_ref() {
        if word == "--" {
            out.push(word.clone());
            break;
        }
        let (name, value) = match word.split_once('=') {
            Some((name, _)) => (name, &word[name.len()..]),
            None => (word.as_str(), ""),
        };
        if let Some(fraction) = word.strip_prefix("-.").filter(|f| is_digits(f)) {
            // argparse's negative number `-.5`; clap reads one only with a digit before the point.
            out.push(format!("-0.{fraction}"));
            continue;
        }
        if !name.starts_with("--") || name.len() == 2 {
            out.push(word.clone());
            continue;
        }
        if has_config && "--config".starts_with(name) {
            out.push(format!("--config{value}"));
            continue;
        }
        if spellings.iter().any(|(s, _)| s == name) {
            out.push(word.clone());
            continue;
        }
        let all: Vec<&(String, &str)> = spellings
            .iter()
            .filter(|(s, _)| s.starts_with(name))
            .collect();
        let timms: Vec<&(String, &str)> = all
            .iter()
            .copied()
            .filter(|(_, id)| !kiln_only.contains(id))
            .collect();
        let one_of_timms = timms.first().is_some_and(|(_, id)| {
            timms.iter().all(|(_, other)| other == id) && timms.len() < all.len()
        });
        let matches = if one_of_timms { timms } else { all };
        let Some((first, id)) = matches.first() else {
            out.push(word.clone());
            continue;
        };
        if matches.iter().any(|(_, other)| other != id) {
            let names: Vec<&str> = matches.iter().map(|(s, _)| s.as_str()).collect();
            let msg = format!("ambiguous option: {word} could match {}", names.join(", "));
            return Err(cmd.error(ErrorKind::UnknownArgument, msg));
        }
        out.push(format!("{first}{value}"));
    }
    out.extend(words.cloned());
    Ok(out)
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd() -> Command {
        let mut cmd = Command::new("t")
            .arg(Arg::new("config").long("config").short('c'))
            .arg(Arg::new("warmup_lr").long("warmup-lr"))
            .arg(Arg::new("warmup_epochs").long("warmup-epochs"))
            .arg(
                Arg::new("local_rank")
                    .long("local_rank")
                    .alias("local-rank"),
            )
            .arg(Arg::new("cooldown").long("cooldown-epochs"))
            .arg(Arg::new("lr").long("lr"))
            .arg(Arg::new("lr_base").long("lr-base"));
        cmd.build();
        cmd
    }

    fn expand(words: &[&str]) -> Result<Vec<String>, String> {
        let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        expand_prefixes(&mut cmd(), &words, &[]).map_err(|e| e.to_string())
    }

    #[test]
    fn prefixes_exact_names_and_values() {
        assert_eq!(
            expand(&["--warmup-e=3", "--lr", "-.5", "--lr-b", "x", "--local", "0"]).unwrap(),
            [
                "--warmup-epochs=3",
                "--lr",
                "-0.5",
                "--lr-base",
                "x",
                "--local_rank",
                "0"
            ]
        );
        // Two spellings of one option are one candidate; `--co` is --config as timm's first parser
        // reads it, although --cooldown-epochs shares the prefix.
        assert_eq!(expand(&["--co", "f.yaml"]).unwrap(), ["--config", "f.yaml"]);
        assert_eq!(expand(&["--he"]).unwrap(), ["--help"]);
        // After `--`, and for unknown options, clap decides.
        assert_eq!(
            expand(&["--nope", "--", "--warmup"]).unwrap(),
            ["--nope", "--", "--warmup"]
        );
    }

    #[test]
    fn ambiguous_prefixes_list_their_candidates_in_order() {
        let e = expand(&["--warmup=1"]).unwrap_err();
        assert!(
            e.contains("ambiguous option: --warmup=1 could match --warmup-lr, --warmup-epochs"),
            "{e}"
        );
    }

    #[test]
    fn kiln_only_options_give_way_to_the_scripts_and_keep_their_own_prefixes() {
        let expand = |words: &[&str]| {
            let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
            expand_prefixes(&mut cmd(), &words, &["warmup_epochs", "lr_base"])
                .map_err(|e| e.to_string())
        };
        assert_eq!(expand(&["--warmup=1"]).unwrap(), ["--warmup-lr=1"]);
        assert_eq!(
            expand(&["--warmup-e", "2"]).unwrap(),
            ["--warmup-epochs", "2"]
        );
        // Two of the script's options still make a prefix ambiguous, kiln's listed beside them.
        let e = expand(&["--l", "1"]).unwrap_err();
        assert!(
            e.contains(
                "ambiguous option: --l could match --local_rank, --local-rank, --lr, --lr-base"
            ),
            "{e}"
        );
    }

    #[test]
    fn options_take_negative_values_and_the_last_occurrence() {
        let cmd = Command::new("t")
            .args_override_self(true)
            .arg(
                Arg::new("mean")
                    .long("mean")
                    .num_args(1..)
                    .action(ArgAction::Append),
            )
            .arg(Arg::new("files").long("files").action(ArgAction::Append));
        let cmd = with_argparse_values(cmd, &["files"]);
        let m = cmd
            .try_get_matches_from(["t", "--mean", "1", "--mean", "-1", "-2", "--files", "a"])
            .unwrap();
        let mean: Vec<&String> = m.get_many("mean").unwrap().collect();
        assert_eq!(mean, ["-1", "-2"]);
        let cmd = with_argparse_values(
            Command::new("t")
                .args_override_self(true)
                .arg(Arg::new("files").long("files").action(ArgAction::Append)),
            &["files"],
        );
        let m = cmd
            .try_get_matches_from(["t", "--files", "a", "--files", "b"])
            .unwrap();
        assert_eq!(m.get_many::<String>("files").unwrap().count(), 2);
    }
}
