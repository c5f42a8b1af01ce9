//! `--pretrained` and `--pretrained-path`: the weights a model starts from, loaded as timm's
//! `load_pretrained` loads them, and the log line saying what was adapted.

use kiln_nn::{load_pretrained, Model, ModelSpec, PretrainedReport, PretrainedSource};
use kiln_train::Result;
use std::path::Path;

/// The weights to start from: `--pretrained-path` when given (timm's `file` overlay takes
/// precedence, its classifier always re-initialized), else with `--pretrained` the model's own
/// (its tag's in the Hugging Face hub cache, or its hf-hub: / local-dir: source), the classifier
/// re-initialized when `num_classes` differs from theirs.
pub fn pretrained_source(
    spec: &ModelSpec,
    pretrained: bool,
    pretrained_path: Option<&Path>,
    num_classes: usize,
) -> Result<Option<PretrainedSource>> {
    Ok(match (pretrained_path, pretrained) {
        (Some(file), _) => Some(PretrainedSource {
            file: file.to_path_buf(),
            reset_classifier: true,
        }),
        (None, true) => Some(spec.pretrained_source(num_classes)?),
        (None, false) => None,
    })
}

/// Loads `source` into `model` and logs it, as timm does, with what was adapted.
pub fn start_from(model: &dyn Model, source: &PretrainedSource) -> Result<()> {
    let report = load_pretrained(model, source)?;
    println!(
        "Loaded pretrained weights from {}{}",
        source.file.display(),
        describe_adaptation(&report, model)
    );
    Ok(())
}

/// What loading changed, as timm logs it.
fn describe_adaptation(r: &PretrainedReport, model: &dyn Model) -> String {
    let cfg = model.pretrained_cfg();
    let mut parts = Vec::new();
    if let Some((from, to)) = r.converted_input_conv {
        parts.push(format!(
            "{} converted from {from} to {to} input channel(s)",
            cfg.first_convs().collect::<Vec<_>>().join(" and ")
        ));
    }
    if r.input_conv_left_random {
        parts.push(format!(
            "{} left at random init (its channels cannot be converted)",
            cfg.first_convs().collect::<Vec<_>>().join(" and ")
        ));
    }
    if r.classifier_reset {
        parts.push(format!(
            "{} re-initialized",
            cfg.classifiers().collect::<Vec<_>>().join(" and ")
        ));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join("; "))
    }
}
