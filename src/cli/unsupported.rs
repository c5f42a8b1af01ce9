//! The flags of timm's `train.py` and `validate.py` that kiln parses but cannot honour. Each is
//! refused, only when set away from timm's default, with one line saying why and what to use
//! instead. A few others change nothing in timm either, or name a mechanism kiln replaces: those
//! are accepted with a one-line note ([`NOTED`], [`VALIDATE_NOTED`]). Flags that only qualify a
//! refused one (`--wandb-project` under `--log-wandb`, `--naflex-*` under `--naflex-loader`) are
//! accepted and, as in timm without their main flag, have no effect.

use super::args::{TrainArgs, ValidateArgs};
use super::data_source::is_stream_or_cache;
use super::hfds::is_hfds;
use super::wds::is_wds;
use kiln_train::{Error, Result};

/// One refused flag of a command whose arguments are `A`: its name, whether the user set it, and
/// why kiln refuses it.
pub struct Refusal<A> {
    /// The flag as timm spells it.
    pub flag: &'static str,
    /// Whether `args` set the flag away from timm's default.
    pub is_set: fn(&A) -> bool,
    /// Why kiln cannot honour it, and what to use instead.
    pub reason: &'static str,
}

const NO_JIT: &str =
    "kiln is compiled Rust with handwritten kernels; there is no graph for torch.compile";
const NO_SCRIPT: &str =
    "kiln is compiled Rust with handwritten kernels; there is no Python model to script";
const NO_NAFLEX: &str = "NaFlex feeds variable-resolution patch sequences to NaFlexVit models, which kiln does not have; its ViTs run at one --img-size";
const FAST_NORM: &str = "kiln's LayerNorm, GroupNorm and BatchNorm always run on its fused kernels with f32 statistics; there is no slower path to switch from";

/// Why `--num-samples` and its per-split forms need a wds/ dataset.
const NUM_SAMPLES: &str = "only iterable (streamed, wds/) datasets take a sample count; folder and IDX datasets count their files";
/// Why `--dataset-download` is refused.
const NO_DOWNLOAD: &str = "kiln downloads nothing; fetch the data first (scripts/get-data.sh) and pass --data-dir; for hfds/NAME, load the dataset once with datasets.load_dataset(NAME, cache_dir=DIR) and pass --data-dir DIR";
/// Why `--input-key` and `--target-key` need an hfds/ or wds/ dataset.
const KEYS: &str = "keys select columns of hfds/ datasets and members of wds/ samples (with --dataset hfds/NAME or wds/NAME)";
/// Why `--dataset-trust-remote-code` is refused.
const NO_LOADING_SCRIPT: &str = "kiln runs no dataset loading script (no Python); hfds/ datasets are read from the Arrow files of the datasets cache";
/// Why `--fuser` is refused.
const NO_FUSER: &str =
    "a TorchScript JIT setting; kiln runs its own compiled kernels, without a JIT";

/// Every refused flag of `kiln validate`, in validate.py's argument order.
pub const VALIDATE_REFUSED: &[Refusal<ValidateArgs>] = &[
    Refusal {
        flag: "--dataset",
        is_set: |a| {
            hub_dataset(&a.eval.source.dataset)
                && !is_wds(&a.eval.source.dataset)
                && !is_hfds(&a.eval.source.dataset)
        },
        reason: "torch/, hfids/ and tfds/ datasets need Python packages or the network; kiln validate reads ImageFolder trees, IDX folders, local wds/ shards and hfds/ datasets from the datasets cache in --data-dir",
    },
    Refusal {
        flag: "--num-samples",
        is_set: |a| a.num_samples.is_some() && !is_wds(&a.eval.source.dataset),
        reason: NUM_SAMPLES,
    },
    Refusal {
        flag: "--dataset-download",
        // timm's wds/ reader drops the flag; so does kiln.
        is_set: |a| a.dataset_download && !is_wds(&a.eval.source.dataset),
        reason: NO_DOWNLOAD,
    },
    Refusal {
        flag: "--input-key",
        is_set: |a| a.input_key.is_some() && !is_stream_or_cache(&a.eval.source.dataset),
        reason: KEYS,
    },
    Refusal {
        flag: "--target-key",
        is_set: |a| a.target_key.is_some() && !is_stream_or_cache(&a.eval.source.dataset),
        reason: KEYS,
    },
    Refusal {
        flag: "--dataset-trust-remote-code",
        is_set: |a| a.dataset_trust_remote_code,
        reason: NO_LOADING_SCRIPT,
    },
    Refusal {
        flag: "--tf-preprocessing",
        is_set: |a| a.tf_preprocessing,
        reason: "TensorFlow's preprocessing needs TensorFlow; kiln resolves timm's own eval transforms",
    },
    Refusal {
        flag: "--torchscript",
        is_set: |a| a.eval.torchscript,
        reason: NO_SCRIPT,
    },
    Refusal {
        flag: "--torchcompile",
        is_set: |a| a.eval.torchcompile.is_some(),
        reason: NO_JIT,
    },
    Refusal {
        flag: "--torchcompile-mode",
        is_set: |a| a.eval.torchcompile_mode.is_some(),
        reason: NO_JIT,
    },
    Refusal {
        flag: "--aot-autograd",
        is_set: |a| a.eval.aot_autograd,
        reason: NO_JIT,
    },
    Refusal {
        flag: "--fuser",
        is_set: |a| !a.eval.fuser.is_empty(),
        reason: NO_FUSER,
    },
    Refusal {
        flag: "--num-gpu",
        is_set: |a| a.eval.num_gpu > 1,
        reason: "kiln validate runs on one device (--device cuda:N); for several GPUs start one kiln validate per GPU (say, a checkpoint each), or validate while training, which kiln train --device cuda:0,1,... spreads over its ranks",
    },
    Refusal {
        flag: "--naflex-loader",
        is_set: |a| a.naflex_loader,
        reason: NO_NAFLEX,
    },
];

/// Every refused flag, in timm's argument order.
pub const REFUSED: &[Refusal<TrainArgs>] = &[
    Refusal {
        flag: "--dataset",
        is_set: |a| {
            hub_dataset(&a.source.dataset)
                && !is_wds(&a.source.dataset)
                && !is_hfds(&a.source.dataset)
        },
        reason: "torch/, hfids/ and tfds/ datasets need Python packages or the network; kiln reads ImageFolder trees, IDX folders, local wds/ shards and hfds/ datasets from the datasets cache in --data-dir",
    },
    Refusal {
        flag: "--train-num-samples",
        is_set: |a| a.train_num_samples.is_some() && !is_wds(&a.source.dataset),
        reason: NUM_SAMPLES,
    },
    Refusal {
        flag: "--val-num-samples",
        is_set: |a| a.val_num_samples.is_some() && !is_wds(&a.source.dataset),
        reason: NUM_SAMPLES,
    },
    Refusal {
        flag: "--dataset-download",
        // timm's wds/ reader drops the flag; so does kiln.
        is_set: |a| a.dataset_download && !is_wds(&a.source.dataset),
        reason: NO_DOWNLOAD,
    },
    Refusal {
        flag: "--input-key",
        is_set: |a| {
            a.input_key.is_some() && !is_wds(&a.source.dataset) && !is_hfds(&a.source.dataset)
        },
        reason: KEYS,
    },
    Refusal {
        flag: "--target-key",
        is_set: |a| {
            a.target_key.is_some() && !is_wds(&a.source.dataset) && !is_hfds(&a.source.dataset)
        },
        reason: KEYS,
    },
    Refusal {
        flag: "--dataset-trust-remote-code",
        is_set: |a| a.dataset_trust_remote_code,
        reason: NO_LOADING_SCRIPT,
    },
    Refusal {
        flag: "--fuser",
        is_set: |a| !a.fuser.is_empty(),
        reason: NO_FUSER,
    },
    Refusal {
        flag: "--torchcompile-mode",
        is_set: |a| a.torchcompile_mode.is_some(),
        reason: NO_JIT,
    },
    Refusal {
        flag: "--torchscript",
        is_set: |a| a.torchscript,
        reason: NO_SCRIPT,
    },
    Refusal {
        flag: "--torchcompile",
        is_set: |a| a.torchcompile.is_some(),
        reason: NO_JIT,
    },
    Refusal {
        flag: "--device-modules",
        is_set: |a| a.device_modules.is_some(),
        reason: "these import Python device backends for PyTorch; kiln's devices are cpu and cuda (--device)",
    },
    Refusal {
        flag: "--log-wandb",
        is_set: |a| a.log_wandb,
        reason: "Weights & Biases needs the network; use --log-tensorboard (event files in the run folder)",
    },
    Refusal {
        flag: "--naflex-loader",
        is_set: |a| a.naflex_loader,
        reason: NO_NAFLEX,
    },
];

/// A flag of a command whose arguments are `A` accepted with a note: set, it changes nothing,
/// and kiln says why once.
pub struct Note<A> {
    /// The flag as timm spells it.
    pub flag: &'static str,
    /// Whether `args` set the flag away from timm's default.
    pub is_set: fn(&A) -> bool,
    /// What kiln does instead.
    pub note: &'static str,
}

/// Every flag of `kiln validate` accepted with a note, in validate.py's argument order.
pub const VALIDATE_NOTED: &[Note<ValidateArgs>] = &[
    Note {
        flag: "--fast-norm",
        is_set: |a| a.fast_norm,
        note: FAST_NORM,
    },
    Note {
        flag: "--reparam",
        is_set: |a| a.reparam,
        note: "timm's reparameterize_model fuses the branches of RepVGG-, MobileOne- and FastViT-style blocks; kiln's models (as timm's same models) have none, so the model is evaluated as it is",
    },
];

/// Every flag of `kiln train` accepted with a note, in timm's argument order.
pub const NOTED: &[Note<TrainArgs>] = &[
    Note {
        flag: "--fast-norm",
        is_set: |a| a.fast_norm,
        note: FAST_NORM,
    },
    Note {
        flag: "--epoch-repeats",
        is_set: |a| a.sched.epoch_repeats != 0.0,
        note: "timm repeats only streamed tfds/ and hfids/ datasets (its wds/ reader takes the value and does not use it); folder, IDX and wds/ datasets ignore it there, and here",
    },
    Note {
        flag: "--drop-connect",
        is_set: |a| a.drop_connect.is_some(),
        note: "deprecated; timm's train.py parses it and ignores it, and so does kiln: use --drop-path",
    },
    Note {
        flag: "--worker-seeding",
        is_set: |a| a.worker_seeding != "all",
        note: "kiln's augmentation draws depend only on --seed, the epoch and the batch (so resume is exact), never on a worker",
    },
];

/// The note of each flag of `table` the user set, as `--flag: note`.
pub fn notes<A>(a: &A, table: &[Note<A>]) -> Vec<String> {
    table
        .iter()
        .filter(|n| (n.is_set)(a))
        .map(|n| format!("{}: {}", n.flag, n.note))
        .collect()
}

/// The image channels `--input-img-mode` decodes to, checked against the model's input
/// channels (timm converts with PIL's `Image.convert(mode)`; kiln decodes to L or RGB).
pub fn check_input_img_mode(mode: Option<&str>, in_chans: usize) -> Result<()> {
    let Some(mode) = mode else {
        return Ok(());
    };
    let chans = match mode {
        "L" => 1,
        "RGB" => 3,
        other => {
            return Err(Error::Flag {
                flag: "--input-img-mode".into(),
                msg: format!("{other:?}: kiln decodes images to L (1 channel) or RGB (3 channels)"),
            })
        }
    };
    if chans != in_chans {
        return Err(Error::Flag {
            flag: "--input-img-mode".into(),
            msg: format!(
                "{mode} images have {chans} channel(s) but the model takes {in_chans} (--in-chans)"
            ),
        });
    }
    Ok(())
}

/// Whether a `--dataset` value names a framework or hub dataset (not a folder, tar or IDX root).
fn hub_dataset(name: &str) -> bool {
    let name = name.to_lowercase();
    ["torch/", "hfds/", "hfids/", "tfds/", "wds/"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// Fails on the first refused flag the user set, naming it with its reason.
pub fn check_supported<A>(a: &A, refused: &[Refusal<A>]) -> Result<()> {
    match refused.iter().find(|r| (r.is_set)(a)) {
        Some(r) => Err(Error::Flag {
            flag: r.flag.into(),
            msg: format!("not supported by kiln: {}", r.reason),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_every_reason_is_one_line() {
        check_supported(&TrainArgs::default(), REFUSED).unwrap();
        for r in REFUSED {
            assert!(
                !(r.is_set)(&TrainArgs::default()),
                "{} set by default",
                r.flag
            );
            assert!(!r.reason.contains('\n'), "{}", r.flag);
        }
    }

    #[test]
    fn noted_flags_are_quiet_by_default_and_one_line_each() {
        assert!(notes(&TrainArgs::default(), NOTED).is_empty());
        for n in NOTED {
            assert!(!n.note.contains('\n'), "{}", n.flag);
            assert!(REFUSED.iter().all(|r| r.flag != n.flag), "{}", n.flag);
        }
        for n in VALIDATE_NOTED {
            assert!(!n.note.contains('\n'), "{}", n.flag);
            assert!(
                VALIDATE_REFUSED.iter().all(|r| r.flag != n.flag),
                "{}",
                n.flag
            );
        }
    }

    #[test]
    fn input_img_mode_must_give_the_models_channels() {
        check_input_img_mode(None, 3).unwrap();
        check_input_img_mode(Some("RGB"), 3).unwrap();
        check_input_img_mode(Some("L"), 1).unwrap();
        let e = check_input_img_mode(Some("L"), 3).unwrap_err().to_string();
        assert!(
            e.contains("--input-img-mode") && e.contains("--in-chans"),
            "{e}"
        );
        let e = check_input_img_mode(Some("CMYK"), 3)
            .unwrap_err()
            .to_string();
        assert!(e.contains("CMYK"), "{e}");
    }

    #[test]
    fn folder_datasets_are_not_hub_datasets() {
        assert!(hub_dataset("hfds/imagenet-1k"));
        assert!(hub_dataset("TFDS/cifar10"));
        assert!(!hub_dataset(""));
        assert!(!hub_dataset("folder"));
    }
}
