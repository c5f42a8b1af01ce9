//! `kiln train --train-img-sizes`: timm's scheduled-resolution training end to end. A
//! progressive schedule with spread 0 and no random mix trains each epoch at one size (24, 28,
//! then 32 pixels), as timm's does; with timm's default spread and mix, every epoch trains the
//! scheduled batch count at the scheduled sizes and batch sizes, and a run resumed from a
//! mid-epoch recovery checkpoint ends with the bits of the run never interrupted.
//! `--train-batches-per-epoch` without scheduled sizes has no effect, as in timm, and says so.

mod common;

use common::{assert_same_bits, dataset, summary_rows, train};

/// Three epochs of a progressive schedule over 24, 28 and 32 pixels.
const PROGRESSIVE: [&str; 8] = [
    "--epochs",
    "3",
    "--train-img-sizes",
    "24",
    "28",
    "32",
    "--train-size-schedule",
    "progressive",
];

/// Per epoch line, its `batches by size` part as (side, batches, images).
fn sizes_by_epoch(stdout: &str) -> Vec<Vec<(usize, usize, usize)>> {
    let parse = |item: &str| -> Option<(usize, usize, usize)> {
        let (shape, rest) = item.split_once(": ")?;
        let (h, w) = shape.split_once('x')?;
        let (batches, images) = rest.strip_suffix(" images)")?.split_once(" (")?;
        (h == w).then_some(())?;
        Some((h.parse().ok()?, batches.parse().ok()?, images.parse().ok()?))
    };
    (stdout.lines())
        .filter(|l| l.starts_with("Epoch "))
        .map(|l| {
            let (_, sizes) = l.split_once(", batches by size: ").expect(l);
            sizes.split(", ").map_while(parse).collect()
        })
        .collect()
}

#[test]
fn progressive_sizes_without_spread_train_one_size_an_epoch() {
    let data = dataset("sched-progressive", 256, 64);
    let out = data.join("runs");
    let no_spread = [
        "--train-size-schedule-spread",
        "0",
        "--train-size-random-mix",
        "0",
    ];
    let flags = [&PROGRESSIVE[..], &no_spread].concat();
    let stdout = train(&data, &out, "progressive", &flags);
    for line in [
        "Using scheduled training resolutions [24, 28, 32] with batch sizes [32, 32, 32].",
        "Using progressive resolution schedule over 3 epochs with spread=0 and random_mix=0.",
        "Scheduled loader has 8 batches/epoch using policy-average batch size 32.00.",
    ] {
        assert!(stdout.contains(line), "{line} missing:\n{stdout}");
    }
    let want = vec![vec![(24, 8, 256)], vec![(28, 8, 256)], vec![(32, 8, 256)]];
    assert_eq!(sizes_by_epoch(&stdout), want, "{stdout}");
    assert_eq!(summary_rows(&out.join("progressive")).len(), 3);
}

#[test]
fn mixed_sizes_follow_the_schedule_and_resume_mid_epoch_exactly() {
    let data = dataset("sched-mixed", 256, 64);
    let out = data.join("runs");
    let more = [
        "--train-batch-sizes",
        "32",
        "24",
        "16",
        "--recovery-interval",
        "7",
    ];
    let flags = [&PROGRESSIVE[..], &more].concat();
    let stdout = train(&data, &out, "straight", &flags);
    let line = (stdout.lines())
        .find(|l| l.starts_with("Scheduled loader has "))
        .expect(&stdout);
    let batches: usize = line["Scheduled loader has ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let epochs = sizes_by_epoch(&stdout);
    assert_eq!(epochs.len(), 3, "{stdout}");
    let batch_of = |side: usize| [32, 24, 16][(side - 24) / 4];
    for sizes in &epochs {
        assert_eq!(sizes.iter().map(|s| s.1).sum::<usize>(), batches);
        for &(side, n, images) in sizes {
            assert!([24, 28, 32].contains(&side), "{sizes:?}");
            assert_eq!(images, n * batch_of(side), "{sizes:?}");
        }
    }
    assert_ne!(epochs[0], epochs[2], "the schedule moves towards 32 pixels");

    // The newest recovery checkpoint lies inside epoch 2; resume there in a fresh run folder.
    let straight = out.join("straight");
    let recovery = (std::fs::read_dir(&straight).unwrap())
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("recovery-"))
        .expect("a recovery checkpoint");
    let update: usize = (recovery.file_stem().unwrap().to_str().unwrap())
        .rsplit('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        !update.is_multiple_of(batches),
        "{} is at an epoch's end",
        recovery.display()
    );
    let resumed = [&flags[..], &["--resume", recovery.to_str().unwrap()]].concat();
    let stdout = train(&data, &out, "resumed", &resumed);
    assert!(stdout.contains("Resumed from"), "{stdout}");
    assert_same_bits(
        &straight.join("last.safetensors"),
        &out.join("resumed/last.safetensors"),
        "after resuming mid-epoch",
    );
}

#[test]
fn batches_per_epoch_without_scheduled_sizes_has_no_effect() {
    let data = dataset("sched-none", 64, 32);
    let out = data.join("runs");
    let flags = [
        "--epochs",
        "1",
        "--train-batches-per-epoch",
        "5",
        "--log-interval",
        "1",
    ];
    let stdout = train(&data, &out, "plain", &flags);
    assert!(
        stdout.contains("--train-batches-per-epoch 5 has no effect without --train-img-sizes"),
        "{stdout}"
    );
    // 64 samples in batches of 32: two batches, as without the flag.
    assert!(stdout.contains("Train: 0 [   1/2 "), "{stdout}");
    assert!(!stdout.contains("batches by size"), "{stdout}");
}
