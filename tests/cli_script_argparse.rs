//! `kiln validate`, `kiln infer` and `kiln export` read the command lines of timm's validate.py,
//! inference.py and onnx_export.py as those scripts do: every command line below was parsed by the
//! script's own argparse parser (scripts/fixtures/make_script_flag_fixtures.py), among them the
//! ones timm documents and every option once, and kiln's parsed arguments, serialized under
//! timm's dest names, must equal timm's namespace field by field. Where kiln differs on purpose
//! the difference is listed in [`KILN_DEFAULTS`] or [`error_case`] with its reason.

mod common;

use common::argparse::{argv_of, long_options, to_f32, unset_or};
use kiln::cli::{parse, run, Command};
use serde_json::Value;

/// A default of kiln's own where timm's differs: (script, dest, timm's default, kiln's default,
/// why). A case passes on such a dest only when timm holds its default and kiln holds its own.
const KILN_DEFAULTS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "*",
        "device",
        r#""cuda""#,
        r#""auto""#,
        "kiln's --device auto takes the first GPU when there is one, else the CPU",
    ),
    (
        "validate.py",
        "model",
        r#""dpn92""#,
        "null",
        "kiln's model defaults to the checkpoint's record (timm's dpn92 is a placeholder)",
    ),
    (
        "inference.py",
        "model",
        r#""resnet50""#,
        "null",
        "kiln's model defaults to the checkpoint's record (timm's resnet50 is a placeholder)",
    ),
    (
        "onnx_export.py",
        "model",
        r#""mobilenetv3_large_100""#,
        "null",
        "kiln's model defaults to the checkpoint's record",
    ),
    (
        "onnx_export.py",
        "opset",
        "null",
        "17",
        "timm's None is the running torch.onnx's default opset; kiln writes 17 unless told 18",
    ),
];

/// A value timm's parser takes and kiln's refuses: (script, option, value, why). A case with the
/// option and value passes when kiln's error names the option.
const KILN_REFUSES: &[(&str, &str, &str, &str)] = &[(
    "validate.py",
    "--seed",
    "-3",
    "argparse's type=int takes it, but validate.py then stops in np.random.seed, which takes \
     0..2**32-1; kiln's --seed is unsigned",
)];

/// Whether kiln's error `e` on `argv` is one of [`KILN_REFUSES`].
fn kiln_refuses(script: &str, argv: &[&str], e: &str) -> bool {
    KILN_REFUSES.iter().any(|(s, option, value, _)| {
        *s == script && argv.windows(2).any(|w| w == [*option, *value]) && e.contains(option)
    })
}

/// Whether `dest` differs from timm only by one of [`KILN_DEFAULTS`].
fn kiln_default(script: &str, dest: &str, timm: &Value, kiln: &Value) -> bool {
    KILN_DEFAULTS.iter().any(|(s, d, t, k, _)| {
        (*s == "*" || *s == script)
            && *d == dest
            && serde_json::from_str::<Value>(t).unwrap() == *timm
            && serde_json::from_str::<Value>(k).unwrap() == *kiln
    })
}

/// kiln's serialized arguments of `kiln SUBCOMMAND argv...`, or clap's error.
fn kiln_parse(subcommand: &str, argv: &[&str]) -> Result<Value, String> {
    let full: Vec<String> = ["kiln", subcommand]
        .iter()
        .chain(argv)
        .map(|w| w.to_string())
        .collect();
    let cli = parse(&full).map_err(|e| e.to_string())?;
    let value = match &cli.command {
        Command::Validate(a) => serde_json::to_value(a),
        Command::Infer(a) => serde_json::to_value(a),
        Command::Export(a) => serde_json::to_value(a),
        other => panic!("{subcommand} parsed as {other:?}"),
    };
    Ok(value.unwrap())
}

/// Where kiln's serialized arguments differ from timm's namespace `want`.
fn differences(script: &str, ours: &Value, want: &serde_json::Map<String, Value>) -> Vec<String> {
    let mut differ = Vec::new();
    for (dest, timm) in want {
        let Some(kiln) = ours.get(dest) else {
            differ.push(format!("{dest}: kiln has no such field"));
            continue;
        };
        if kiln_default(script, dest, timm, kiln) {
            continue;
        }
        let kiln = match (script, dest.as_str(), kiln) {
            // kiln validate evaluates every --checkpoint given (its repeats add up, as the
            // binary test in cli_argparse.rs shows); timm's keeps one, the last.
            ("validate.py", "checkpoint", Value::Array(all)) => {
                all.last().cloned().unwrap_or(Value::Null)
            }
            _ => kiln.clone(),
        };
        let (mut want, mut got) = (unset_or(timm), unset_or(&kiln));
        if dest == "mean" || dest == "std" {
            (want, got) = (want.map(to_f32), got.map(to_f32));
        }
        if want != got {
            differ.push(format!("{dest}: timm {want:?}, kiln {got:?}"));
        }
    }
    differ
}

/// Whether kiln's outcome on a command line timm's parser refuses with `want` is timm's: an
/// ambiguous prefix must be refused naming (at least) timm's candidates, any other error refused
/// in clap's words. One difference is kiln's on purpose: onnx_export.py requires its OUTPUT
/// positional, while kiln's parser accepts a missing one (kiln's own form names the file with
/// `-o`) and `kiln export` then stops, before building anything, with "no file to write".
fn error_case(subcommand: &str, argv: &[&str], want: &str) -> Option<String> {
    let got = kiln_parse(subcommand, argv);
    if let Some(rest) = want.strip_prefix("ambiguous option: ") {
        let (word, candidates) = rest.split_once(" could match ").unwrap();
        let Err(e) = got else {
            return Some(format!("timm: {want}; kiln parses it"));
        };
        let head = format!("ambiguous option: {word} could match ");
        let listed = e
            .split_once(&head)
            .map(|(_, l)| l.lines().next().unwrap_or(""));
        let missing: Vec<&str> = candidates
            .split(", ")
            .filter(|c| !listed.is_some_and(|l| l.split(", ").any(|k| k == *c)))
            .collect();
        return (!missing.is_empty())
            .then(|| format!("timm: {want}; kiln: {e} (missing {missing:?})"));
    }
    match got {
        Err(_) => None,
        Ok(_) if want.contains("required: ONNX_FILE") => {
            let full: Vec<String> = ["kiln", subcommand]
                .iter()
                .chain(argv)
                .map(|w| w.to_string())
                .collect();
            let e = run(parse(&full).unwrap()).unwrap_err().to_string();
            (!e.contains("no file to write")).then(|| format!("timm: {want}; kiln: {e}"))
        }
        Ok(_) => Some(format!("timm fails ({want}), kiln parses it")),
    }
}

/// Replays every case of `fixture` through `kiln SUBCOMMAND`; `documented` is how many of them
/// timm's documentation gives.
fn replay(fixture: &str, subcommand: &str, documented: usize) {
    let fixture: Value = serde_json::from_str(fixture).unwrap();
    let script = fixture["script"].as_str().unwrap();
    let cases = fixture["cases"].as_array().unwrap();
    let given = cases.iter().filter(|c| c["documented"] == true).count();
    assert_eq!(given, documented, "{script}'s documented command lines");
    let mut failures = Vec::new();
    for case in cases {
        let argv = argv_of(case);
        if let Value::String(want) = &case["error"] {
            failures.extend(error_case(subcommand, &argv, want).map(|f| format!("{argv:?}: {f}")));
            continue;
        }
        match kiln_parse(subcommand, &argv) {
            Err(e) if kiln_refuses(script, &argv, &e) => {}
            Err(e) => failures.push(format!("{argv:?}: timm parses it, kiln fails: {e}")),
            Ok(ours) => {
                let want = case["args"].as_object().unwrap();
                for d in differences(script, &ours, want) {
                    failures.push(format!("{argv:?}: {d}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{script}:\n{}", failures.join("\n"));
}

#[test]
fn validate_reads_validate_pys_command_lines() {
    replay(
        include_str!("fixtures/timm_validate_argparse.json"),
        "validate",
        4,
    );
}

#[test]
fn infer_reads_inference_pys_command_lines() {
    replay(
        include_str!("fixtures/timm_inference_argparse.json"),
        "infer",
        2,
    );
}

#[test]
fn export_reads_onnx_export_pys_command_lines() {
    replay(
        include_str!("fixtures/timm_onnx_export_argparse.json"),
        "export",
        4,
    );
}

/// Every option of the three scripts is an option of kiln's command, under the same spelling.
#[test]
fn every_timm_option_is_a_kiln_option() {
    use clap::CommandFactory;
    let cli = kiln::cli::Cli::command();
    let mut missing = Vec::new();
    for (fixture, subcommand) in [
        (
            include_str!("fixtures/timm_validate_argparse.json"),
            "validate",
        ),
        (
            include_str!("fixtures/timm_inference_argparse.json"),
            "infer",
        ),
        (
            include_str!("fixtures/timm_onnx_export_argparse.json"),
            "export",
        ),
    ] {
        let fixture: Value = serde_json::from_str(fixture).unwrap();
        let sub = cli.find_subcommand(subcommand).unwrap();
        let mut ours = long_options(sub);
        ours.push("--help".to_string());
        for option in fixture["option_order"].as_array().unwrap() {
            let option = option.as_str().unwrap();
            if !ours.iter().any(|o| o == option) {
                missing.push(format!("kiln {subcommand}: {option}"));
            }
        }
    }
    assert!(missing.is_empty(), "{missing:?}");
}
