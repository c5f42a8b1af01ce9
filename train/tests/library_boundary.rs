//! kiln-train is a library that never sees the command line: the CLI (parsing, YAML, launch,
//! subcommands) lives in the root package's src/cli/, which flattens this crate's config structs
//! into its commands. Cargo already forbids the import (the root package depends on this crate,
//! so this crate cannot depend on it); this test keeps the CLI's vocabulary out too: no clap
//! parser or subcommand, no command's argument struct, no `cli` module, and clap only behind the
//! optional `clap` feature (`cfg_attr(feature = "clap", derive(clap::Args))` on a config, its
//! fields' `arg(...)`, and `ValueEnum` on option enums).

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_file_of_the_library_knows_the_command_line() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 50,
        "found the library's sources: {}",
        files.len()
    );
    let forbidden = [
        "TrainArgs",
        "ValidateArgs",
        "crate::cli::",
        "crate::cli;",
        "mod cli;",
        "kiln::",
        "clap::Parser",
        "clap::Subcommand",
        "derive(Parser",
        "derive(Args",
        "#[arg(",
        "#[command(",
    ];
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for word in forbidden {
                if line.contains(word) {
                    found.push(format!("{}:{}: {word}", file.display(), n + 1));
                }
            }
            if line.contains("clap::") && !line.contains("cfg_attr(feature = \"clap\"") {
                found.push(format!(
                    "{}:{}: clap outside a cfg_attr",
                    file.display(),
                    n + 1
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the CLI leaks into kiln-train:\n{}",
        found.join("\n")
    );
    assert!(!src.join("cli").exists(), "train/src/cli/ is back");
}

#[test]
fn the_library_depends_on_clap_only_for_an_optional_derive() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let text = std::fs::read_to_string(manifest).unwrap();
    let clap: Vec<&str> = text.lines().filter(|l| l.starts_with("clap")).collect();
    assert_eq!(
        clap.len(),
        2,
        "one optional dependency and one feature: {clap:?}"
    );
    assert!(clap
        .iter()
        .all(|l| l.contains("optional = true") || l.contains("dep:clap")));
    assert!(!text
        .lines()
        .any(|l| l.starts_with("kiln =") || l.starts_with("kiln.")));
}
