//! The flags of timm's `train.py` that kiln parses but cannot honour. Each is refused, only when
//! set away from timm's default, with one line saying why and what to use instead. Flags that
//! only qualify a refused one (`--wandb-project` under `--log-wandb`, `--kd-*` under
//! `--kd-model-name`, `--naflex-*` under `--naflex-loader`) are accepted and, as in timm
//! without their main flag, have no effect.

use super::args::TrainArgs;
use kiln_train::{Error, Result};

/// One refused flag: its name, whether the user set it, and why kiln refuses it.
pub struct Refusal {
    /// The flag as timm spells it.
    pub flag: &'static str,
    /// Whether `args` set the flag away from timm's default.
    pub is_set: fn(&TrainArgs) -> bool,
    /// Why kiln cannot honour it, and what to use instead.
    pub reason: &'static str,
}

/// Every refused flag, in timm's argument order.
pub const REFUSED: &[Refusal] = &[
    Refusal {
        flag: "--dataset",
        is_set: |a| hub_dataset(&a.dataset),
        reason: "torch/, hfds/, hfids/, tfds/ and wds/ datasets need Python packages or the network; kiln reads ImageFolder trees and IDX folders from --data-dir",
    },
    Refusal {
        flag: "--train-num-samples",
        is_set: |a| a.train_num_samples.is_some(),
        reason: "only iterable (streamed) datasets take a sample count; kiln's datasets count their files",
    },
    Refusal {
        flag: "--val-num-samples",
        is_set: |a| a.val_num_samples.is_some(),
        reason: "only iterable (streamed) datasets take a sample count; kiln's datasets count their files",
    },
    Refusal {
        flag: "--dataset-download",
        is_set: |a| a.dataset_download,
        reason: "kiln downloads nothing; fetch the data first (scripts/get-data.sh) and pass --data-dir",
    },
    Refusal {
        flag: "--input-img-mode",
        is_set: |a| a.input_img_mode.is_some(),
        reason: "kiln converts images to --in-chans channels (1: L, 3: RGB); set --in-chans instead",
    },
    Refusal {
        flag: "--input-key",
        is_set: |a| a.input_key.is_some(),
        reason: "keys select columns of hub and webdataset datasets, which kiln does not read",
    },
    Refusal {
        flag: "--target-key",
        is_set: |a| a.target_key.is_some(),
        reason: "keys select columns of hub and webdataset datasets, which kiln does not read",
    },
    Refusal {
        flag: "--dataset-trust-remote-code",
        is_set: |a| a.dataset_trust_remote_code,
        reason: "kiln does not read Hugging Face datasets (no network, no Python)",
    },
    Refusal {
        flag: "--pretrained",
        is_set: |a| a.pretrained && a.pretrained_path.is_none(),
        reason: "pretrained weights come from the Hugging Face hub and kiln has no network access; save them to a file (torch.save or safetensors) and pass --pretrained-path",
    },
    Refusal {
        flag: "--fuser",
        is_set: |a| !a.fuser.is_empty(),
        reason: "a TorchScript JIT setting; kiln runs its own compiled kernels, without a JIT",
    },
    Refusal {
        flag: "--grad-checkpointing",
        is_set: |a| a.grad_checkpointing,
        reason: "kiln's tape keeps every activation (no recomputation yet); lower --batch-size and use --grad-accum-steps",
    },
    Refusal {
        flag: "--fast-norm",
        is_set: |a| a.fast_norm,
        reason: "timm's experimental fast LayerNorm/GroupNorm path; kiln's norms already run on its own fused kernels",
    },
    Refusal {
        flag: "--torchcompile-mode",
        is_set: |a| a.torchcompile_mode.is_some(),
        reason: "kiln is compiled Rust with handwritten kernels; there is no graph for torch.compile",
    },
    Refusal {
        flag: "--torchscript",
        is_set: |a| a.torchscript,
        reason: "kiln is compiled Rust with handwritten kernels; there is no Python model to script",
    },
    Refusal {
        flag: "--torchcompile",
        is_set: |a| a.torchcompile.is_some(),
        reason: "kiln is compiled Rust with handwritten kernels; there is no graph for torch.compile",
    },
    Refusal {
        flag: "--model-dtype",
        is_set: |a| a.model_dtype.as_deref().is_some_and(|d| d != "float32"),
        reason: "kiln keeps f32 weights; use --amp --amp-dtype bfloat16 (or float16) for low-precision compute",
    },
    Refusal {
        flag: "--device-modules",
        is_set: |a| a.device_modules.is_some(),
        reason: "these import Python device backends for PyTorch; kiln's devices are cpu and cuda (--device)",
    },
    Refusal {
        flag: "--epoch-repeats",
        is_set: |a| a.epoch_repeats != 0.0,
        reason: "a kiln epoch is one pass over the train split; set the run's length with --epochs",
    },
    Refusal {
        flag: "--drop-connect",
        is_set: |a| a.drop_connect.is_some(),
        reason: "deprecated by timm and ignored by its train.py; use --drop-path",
    },
    Refusal {
        flag: "--split-bn",
        is_set: |a| a.split_bn,
        reason: "kiln has no per-split BatchNorm layers; --aug-splits trains the splits through the model's own BN",
    },
    Refusal {
        flag: "--worker-seeding",
        is_set: |a| a.worker_seeding != "all",
        reason: "kiln's batches depend only on --seed, the epoch and the batch index (that makes resume exact), never on a worker",
    },
    Refusal {
        flag: "--val-interval",
        is_set: |a| a.val_interval != 1,
        reason: "kiln validates and checkpoints after every epoch; an interval is not implemented yet",
    },
    Refusal {
        flag: "--tta",
        is_set: |a| a.tta != 0,
        reason: "validation during training does not oversample; run kiln validate --tta 2 on a checkpoint",
    },
    Refusal {
        flag: "--log-wandb",
        is_set: |a| a.log_wandb,
        reason: "Weights & Biases needs the network; use --log-tensorboard (event files in the run folder)",
    },
    Refusal {
        flag: "--naflex-loader",
        is_set: |a| a.naflex_loader,
        reason: "NaFlex feeds variable-length patch sequences to ViT-family models; kiln's ViTs train at one --img-size",
    },
    Refusal {
        flag: "--kd-model-name",
        is_set: |a| a.kd_model_name.is_some(),
        reason: "knowledge distillation is not implemented; kiln trains one model per run",
    },
];

/// Whether a `--dataset` value names a framework or hub dataset (not a folder, tar or IDX root).
fn hub_dataset(name: &str) -> bool {
    let name = name.to_lowercase();
    ["torch/", "hfds/", "hfids/", "tfds/", "wds/"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// Fails on the first refused flag the user set, naming it with its reason.
pub fn check_supported(a: &TrainArgs) -> Result<()> {
    match REFUSED.iter().find(|r| (r.is_set)(a)) {
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
        check_supported(&TrainArgs::default()).unwrap();
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
    fn folder_datasets_are_not_hub_datasets() {
        assert!(hub_dataset("hfds/imagenet-1k"));
        assert!(hub_dataset("TFDS/cifar10"));
        assert!(!hub_dataset(""));
        assert!(!hub_dataset("folder"));
    }
}
