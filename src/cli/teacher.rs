//! `--kd-model-name`: the teacher of knowledge distillation, made as timm's train.py makes it
//! (`create_model(name, pretrained=True, num_classes=<student's>, in_chans=<student's>)`, in eval
//! mode), its name resolved as `--pretrained` resolves one ([`ModelSpec`]): a registry name with
//! or without a tag (weights from the Hugging Face hub cache), `hf-hub:` or `local-dir:`. The
//! teacher normalizes its input with its own pretrained config's mean and std.

use super::args::TrainArgs;
use kiln_nn::{load_pretrained, Model, ModelArgs, ModelSpec};
use kiln_train::distill::{DistillConfig, Distillation, Teacher};
use kiln_train::{Error, Result};

const FLAG: &str = "--kd-model-name";

fn flag_error(msg: impl Into<String>) -> Error {
    Error::Flag {
        flag: FLAG.into(),
        msg: msg.into(),
    }
}

/// The distillation `--kd-model-name` asks for (None without it), taught to `student`, which
/// takes `in_chans` channels.
pub fn distillation(
    a: &TrainArgs,
    config: &DistillConfig,
    student: &dyn Model,
    in_chans: usize,
) -> Result<Option<Distillation>> {
    let Some(name) = &a.kd_model_name else {
        return Ok(None);
    };
    let args = ModelArgs {
        num_classes: student.num_classes(),
        in_chans,
        ..ModelArgs::default()
    };
    let teacher = create_teacher(name, args)?;
    Distillation::new(config, teacher, student).map(Some)
}

/// The teacher model with its pretrained weights loaded (the classifier re-initialized only where
/// its classes differ from the weights', as timm's `load_pretrained` does); the Trainer lays it out
/// as the student.
fn create_teacher(name: &str, args: ModelArgs) -> Result<Teacher> {
    let in_flag = |e: kiln_nn::Error| flag_error(e.to_string());
    let spec = ModelSpec::resolve(name).map_err(in_flag)?;
    let source = spec.pretrained_source(args.num_classes).map_err(in_flag)?;
    let model = spec.create(&args)?;
    let report = load_pretrained(model.as_ref(), &source)?;
    println!(
        "Created KD teacher {name} from {}{}",
        source.file.display(),
        if report.classifier_reset {
            " (its classifier re-initialized for the student's classes)"
        } else {
            ""
        }
    );
    Ok(Teacher::new(model))
}
