//! YAML configs as timm reads them: keys are flag names (underscores or dashes), values override
//! the defaults, and the command line overrides the file. timm's own `args.yaml` reads back: null,
//! false, empty strings, lists and mappings stand for "unset" and are skipped, and a mapping
//! (`model_kwargs: {zero_init_last: false}`) becomes `key=value` items. The serializers at the end
//! write a run's `args.yaml` in the same shape, so timm's train.py reads kiln's back.

use kiln_train::{Error, Result};
use std::path::Path;

/// The built-in config for a run on the embedded Fashion-MNIST subset.
pub const FASHION_MNIST: &str = include_str!("../../configs/fashion-mnist.yaml");

/// Turns a YAML mapping into command-line flags (`lr: 0.1` -> `--lr 0.1`, `true` -> `--flag`,
/// `model_kwargs: {a: 1}` -> `--model-kwargs a=1`).
pub fn yaml_to_flags(text: &str, origin: &str) -> Result<Vec<String>> {
    let bad = |msg: String| Error::Flag {
        flag: origin.to_string(),
        msg,
    };
    let value: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| bad(format!("not valid YAML: {e}")))?;
    let map = match value {
        serde_yaml::Value::Mapping(m) => m,
        serde_yaml::Value::Null => return Ok(Vec::new()),
        _ => return Err(bad("expected a mapping of flag names to values".into())),
    };
    let mut flags = Vec::new();
    for (k, v) in map {
        let key = k
            .as_str()
            .ok_or_else(|| bad(format!("key {k:?} is not a string")))?;
        let flag = format!(
            "--{}",
            if key == "data" {
                "data-dir".to_string()
            } else {
                key.replace('_', "-")
            }
        );
        match v {
            serde_yaml::Value::Bool(true) => flags.push(flag),
            serde_yaml::Value::Bool(false) | serde_yaml::Value::Null => {}
            serde_yaml::Value::String(s) if s.is_empty() => {}
            serde_yaml::Value::Sequence(items) if items.is_empty() => {}
            serde_yaml::Value::Mapping(items) if items.is_empty() => {}
            serde_yaml::Value::Mapping(items) => {
                flags.push(flag);
                for (k, v) in items {
                    let pair = scalar(&k).zip(python_literal(&v));
                    flags.push(
                        pair.map(|(k, v)| format!("{k}={v}")).ok_or_else(|| {
                            bad(format!("{key}: entries must map names to scalars"))
                        })?,
                    );
                }
            }
            serde_yaml::Value::Sequence(items) => {
                flags.push(flag);
                for item in items {
                    flags.push(
                        scalar(&item)
                            .ok_or_else(|| bad(format!("{key}: list items must be scalars")))?,
                    );
                }
            }
            other => {
                flags.push(flag);
                flags.push(
                    scalar(&other)
                        .ok_or_else(|| bad(format!("{key}: unsupported value {other:?}")))?,
                );
            }
        }
    }
    Ok(flags)
}

fn scalar(v: &serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A scalar as Python would print it (`True`, `False`), or a list of scalars as a tuple of them
/// (`256,320`; one item `8,`), the form timm's `key=value` flags take.
fn python_literal(v: &serde_yaml::Value) -> Option<String> {
    match v {
        serde_yaml::Value::Bool(true) => Some("True".into()),
        serde_yaml::Value::Bool(false) => Some("False".into()),
        serde_yaml::Value::Null => Some("None".into()),
        serde_yaml::Value::Sequence(items) if items.is_empty() => Some("()".into()),
        serde_yaml::Value::Sequence(items) => {
            let text: Option<Vec<String>> = items.iter().map(python_literal).collect();
            let text = text?.join(",");
            Some(if items.len() == 1 { text + "," } else { text })
        }
        other => scalar(other),
    }
}

/// Reads a YAML config file into flags.
pub fn read_config(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    yaml_to_flags(&text, &format!("--config {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_becomes_flags() {
        let flags = yaml_to_flags(
            "lr: 0.5\nchannels_last: true\namp: false\nscale: [0.5, 1.0]\nmodel: resnet18\n",
            "test",
        )
        .unwrap();
        assert_eq!(
            flags,
            [
                "--lr",
                "0.5",
                "--channels-last",
                "--scale",
                "0.5",
                "1.0",
                "--model",
                "resnet18"
            ]
        );
    }

    #[test]
    fn unset_values_are_skipped_and_mappings_become_pairs() {
        let flags = yaml_to_flags(
            "resume: ''\nwandb_tags: []\nopt_kwargs: {}\ngp: null\nmodel_kwargs: {zero_init_last: false, drop_rate: 0.1, img_size: [256, 320]}\n",
            "test",
        )
        .unwrap();
        assert_eq!(
            flags,
            [
                "--model-kwargs",
                "zero_init_last=False",
                "drop_rate=0.1",
                "img_size=256,320"
            ]
        );
    }
}
