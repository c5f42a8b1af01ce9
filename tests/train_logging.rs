//! What a run shows: TensorBoard event files read back record by record (lengths and masked
//! CRC-32C checked, events decoded), batch image grids, the end-of-run plots, and the progress bar
//! on a terminal.

mod common;

use common::{dataset, train, train_args};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// CRC-32C bit by bit (independent of kiln's table-driven one), masked as TensorFlow masks it.
fn masked_crc(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    (!crc).rotate_right(15).wrapping_add(0xA282_EAD8)
}

/// A protobuf message's fields: (field number, varint or fixed value, or bytes).
fn fields(mut msg: &[u8]) -> Vec<(u64, u64, Vec<u8>)> {
    fn varint(buf: &mut &[u8]) -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let b = buf[0];
            *buf = &buf[1..];
            v |= u64::from(b & 0x7F) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return v;
            }
        }
    }
    let mut out = Vec::new();
    while !msg.is_empty() {
        let key = varint(&mut msg);
        let (field, wire) = (key >> 3, key & 7);
        let (value, bytes) = match wire {
            0 => (varint(&mut msg), Vec::new()),
            1 => {
                let v = u64::from_le_bytes(msg[..8].try_into().unwrap());
                msg = &msg[8..];
                (v, Vec::new())
            }
            2 => {
                let n = varint(&mut msg) as usize;
                let b = msg[..n].to_vec();
                msg = &msg[n..];
                (0, b)
            }
            5 => {
                let v = u64::from(u32::from_le_bytes(msg[..4].try_into().unwrap()));
                msg = &msg[4..];
                (v, Vec::new())
            }
            w => panic!("unexpected wire type {w}"),
        };
        out.push((field, value, bytes));
    }
    out
}

/// Every record of an event file, with both CRCs checked.
fn records(path: &Path) -> Vec<Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let mut rest = &bytes[..];
    let mut out = Vec::new();
    while !rest.is_empty() {
        let len_bytes = &rest[..8];
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
        let crc = |b: &[u8]| u32::from_le_bytes(b.try_into().unwrap());
        assert_eq!(crc(&rest[8..12]), masked_crc(len_bytes), "length CRC");
        let data = &rest[12..12 + len];
        assert_eq!(crc(&rest[12 + len..16 + len]), masked_crc(data), "data CRC");
        out.push(data.to_vec());
        rest = &rest[16 + len..];
    }
    out
}

#[test]
fn tensorboard_events_read_back_record_by_record() {
    let data = dataset("tensorboard", 64, 32);
    let out = data.join("runs");
    let extra = ["--epochs", "2", "--log-tensorboard", "--save-images"];
    train(&data, &out, "tb", &extra);
    let run = out.join("tb");
    let events: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("events.out.tfevents."))
        .collect();
    assert_eq!(events.len(), 1);
    let recs = records(&events[0]);
    let first = fields(&recs[0]);
    assert!(first.iter().any(|f| f.0 == 3 && f.2 == b"brain.Event:2"));
    // tag -> (steps, values); images counted separately.
    let mut scalars: BTreeMap<String, Vec<(u64, f32)>> = BTreeMap::new();
    let mut images = 0;
    for rec in &recs[1..] {
        let event = fields(rec);
        let step = event.iter().find(|f| f.0 == 2).map_or(0, |f| f.1);
        let summary = &event.iter().find(|f| f.0 == 5).expect("a summary").2;
        for value in fields(summary).into_iter().filter(|f| f.0 == 1) {
            let v = fields(&value.2);
            let tag = String::from_utf8(v.iter().find(|f| f.0 == 1).unwrap().2.clone()).unwrap();
            if let Some(simple) = v.iter().find(|f| f.0 == 2) {
                let value = f32::from_bits(simple.1 as u32);
                scalars.entry(tag).or_default().push((step, value));
            } else if let Some(image) = v.iter().find(|f| f.0 == 4) {
                let img = fields(&image.2);
                let png = &img.iter().find(|f| f.0 == 4).unwrap().2;
                assert_eq!(&png[1..4], b"PNG");
                images += 1;
            }
        }
    }
    // 64 images in batches of 32: 2 updates an epoch.
    let steps: Vec<u64> = scalars["train/loss"].iter().map(|s| s.0).collect();
    assert_eq!(steps, [1, 2, 3, 4]);
    assert!(scalars["train/lr"]
        .iter()
        .all(|s| (s.1 - 0.05).abs() < 1e-7));
    for tag in [
        "epoch/train_loss",
        "epoch/eval_loss",
        "epoch/eval_top1",
        "epoch/eval_top5",
    ] {
        let epochs: Vec<u64> = scalars[tag].iter().map(|s| s.0).collect();
        assert_eq!(epochs, [0, 1], "{tag}");
    }
    let top1 = scalars["epoch/eval_top1"][1].1;
    assert!((0.0..=100.0).contains(&top1));
    assert_eq!(images, 2, "one batch grid an epoch at log interval 100");
    assert!(run.join("train-batch-0.png").is_file());
    // The end-of-run plots: 960×600 PNGs (width and height from the IHDR chunk).
    for plot in ["loss.png", "accuracy.png", "lr.png"] {
        let png = std::fs::read(run.join(plot)).unwrap();
        let dim = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
        assert_eq!(
            (&png[12..16], dim(16), dim(20)),
            (&b"IHDR"[..], 960, 600),
            "{plot}"
        );
    }
}

#[test]
fn progress_bar_draws_on_a_terminal() {
    let data = dataset("progress", 64, 32);
    let out = data.join("runs");
    let args = train_args(&data, &out, "bar", &["--epochs", "2"]);
    let line = std::iter::once(env!("CARGO_BIN_EXE_kiln").to_string())
        .chain(args)
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    // util-linux `script` runs the command on a pseudo-terminal.
    let o = Command::new("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .output()
        .expect("script (util-linux) runs kiln under a pseudo-terminal");
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}");
    assert!(text.contains("Epoch 1/2 ["), "no bar drawn:\n{text}");
    assert!(text.contains("img/s"), "{text}");
    assert!(
        !text.contains("Train: 0 ["),
        "timm's batch lines under a bar:\n{text}"
    );
    let last = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap();
    assert!(last.starts_with("*** Best metric"), "last line: {last:?}");
}
