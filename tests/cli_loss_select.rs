//! The training loss is chosen as timm's train.py chooses it, in its order, from timm's flags:
//! --jsd-loss, then mixup/cutmix (soft-target CE or --bce-loss), then --smoothing (label
//! smoothing or BCE), else plain CE; validation always uses plain CE.

use kiln::cli::{parse, Command, TrainArgs};
use kiln::engine::{DType, Tensor};
use kiln::train::clip::ClipMode;
use kiln::train::loss::{
    create_loss, create_val_loss, BinaryCrossEntropy, CrossEntropy, JsdCrossEntropy,
    LabelSmoothingCrossEntropy, Loss, LossConfig, SoftTargetCrossEntropy,
};

fn train_args(flags: &[&str]) -> TrainArgs {
    let argv: Vec<String> = ["kiln", "train", "data/some-folder"]
        .iter()
        .chain(flags)
        .map(|s| s.to_string())
        .collect();
    match parse(&argv)
        .unwrap_or_else(|e| panic!("{flags:?}: {e}"))
        .command
    {
        Command::Train(t) => *t,
        _ => unreachable!(),
    }
}

fn logits() -> Tensor {
    Tensor::randn(&[6, 5], DType::F32, 7).unwrap()
}

fn labels() -> Tensor {
    Tensor::from_vec(vec![0i64, 3, 4, 1, 2, 3], &[6]).unwrap()
}

fn soft() -> Tensor {
    Tensor::rand(&[6, 5], DType::F32, 8)
        .unwrap()
        .softmax(-1)
        .unwrap()
}

/// The loss `create_loss` picks for `flags` gives `want`'s value on the same batch.
fn picks(flags: &[&str], targets: &Tensor, want: &dyn Loss) {
    let a = train_args(flags);
    let got = create_loss(&a.loss, &a.mix).unwrap();
    let x = logits();
    let (g, w) = (
        got.forward(&x, targets).unwrap().item().unwrap(),
        want.forward(&x, targets).unwrap().item().unwrap(),
    );
    assert_eq!(g, w, "{flags:?}");
}

#[test]
fn flags_parse_with_timms_defaults() {
    let a = train_args(&[]);
    assert_eq!(a.optim.clip_mode, ClipMode::Norm);
    let l = a.loss;
    assert!(!l.jsd_loss && !l.bce_loss && !l.bce_sum);
    assert_eq!((l.bce_target_thresh, l.bce_pos_weight), (None, None));
    let a = train_args(&[
        "--jsd-loss",
        "--aug-splits",
        "3",
        "--bce-loss",
        "--bce-sum",
        "--bce-target-thresh",
        "0.2",
        "--bce-pos-weight",
        "2.5",
        "--smoothing",
        "0.05",
    ]);
    let want = LossConfig {
        jsd_loss: true,
        aug_splits: 3,
        bce_loss: true,
        bce_sum: true,
        bce_target_thresh: Some(0.2),
        bce_pos_weight: Some(2.5),
    };
    assert_eq!(a.loss, want);
    assert_eq!(a.mix.smoothing, 0.05);
}

#[test]
fn jsd_comes_first_and_needs_aug_splits() {
    let jsd = JsdCrossEntropy {
        num_splits: 3,
        alpha: 12.0,
        smoothing: 0.1,
    };
    let flags = [
        "--jsd-loss",
        "--aug-splits",
        "3",
        "--mixup",
        "0.2",
        "--bce-loss",
    ];
    picks(&flags, &labels(), &jsd);
    let a = train_args(&["--jsd-loss"]);
    let e = create_loss(&a.loss, &a.mix).err().unwrap();
    assert!(e.to_string().contains("--jsd-loss"), "{e}");
}

#[test]
fn mixup_picks_soft_target_ce_or_bce() {
    picks(&["--mixup", "0.2"], &soft(), &SoftTargetCrossEntropy);
    picks(&["--cutmix", "1.0"], &soft(), &SoftTargetCrossEntropy);
    let bce = BinaryCrossEntropy {
        target_threshold: Some(0.2),
        sum_classes: true,
        ..BinaryCrossEntropy::default()
    };
    let flags = ["--cutmix-minmax", "0.2", "0.8", "--bce-loss", "--bce-sum"];
    picks(
        &[&flags[..], &["--bce-target-thresh", "0.2"]].concat(),
        &soft(),
        &bce,
    );
}

#[test]
fn smoothing_picks_label_smoothing_or_bce_and_zero_picks_plain_ce() {
    let ls = LabelSmoothingCrossEntropy { smoothing: 0.3 };
    picks(&["--smoothing", "0.3"], &labels(), &ls);
    let bce = BinaryCrossEntropy {
        smoothing: 0.3,
        pos_weight: Some(2.0),
        ..BinaryCrossEntropy::default()
    };
    let flags = ["--smoothing", "0.3", "--bce-loss", "--bce-pos-weight", "2"];
    picks(&flags, &labels(), &bce);
    let plain = CrossEntropy::default();
    picks(&["--smoothing", "0", "--bce-loss"], &labels(), &plain);
    let a = train_args(&["--smoothing", "1"]);
    let e = create_loss(&a.loss, &a.mix).err();
    assert!(e.unwrap().to_string().contains("--smoothing"));
}

#[test]
fn validation_uses_plain_ce() {
    let (x, y) = (logits(), labels());
    let val = create_val_loss().forward(&x, &y).unwrap().item().unwrap();
    let ce = CrossEntropy::default().forward(&x, &y).unwrap();
    assert_eq!(val, ce.item().unwrap());
}
