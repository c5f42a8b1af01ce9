//! The Hugging Face datasets reader against timm's `ReaderHfds` (train/tests/fixtures/hfds/, a
//! `datasets` cache written by the `datasets` library and expected.json, both made by
//! scripts/fixtures/make_hfds_fixtures.py): the same rows in the same order, the same image
//! paths, labels, classes and counts per split; images decode to the sizes PIL saw, and the one
//! PIL could not open is an error naming the file and row. Bad caches (truncated Arrow file,
//! missing column, split or shard, counts that disagree) are refused with the file named.
use kiln_train::data::hfds::{HfdsDataset, HfdsOptions};
use kiln_train::data::Dataset;
use kiln_train::Error;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn cache() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hfds/cache")
}

fn expected() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hfds/expected.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn options(case: &Value) -> HfdsOptions {
    let mut opts = HfdsOptions::new(case["split"].as_str().unwrap(), 3);
    if let Some(k) = case["input_key"].as_str() {
        opts.input_key = k.into();
    }
    if let Some(k) = case["target_key"].as_str() {
        opts.target_key = k.into();
    }
    opts
}

fn name(case: &Value) -> String {
    format!("kiln-fixture/{}", case["dataset"].as_str().unwrap())
}

#[test]
fn rows_labels_and_classes_match_timm() {
    let fx = expected();
    let cases = fx["cases"].as_array().unwrap();
    assert!(cases.len() >= 5);
    for case in cases {
        let what = format!("{} {}", name(case), case["split"]);
        let ds = HfdsDataset::open(&cache(), &name(case), &options(case)).unwrap();
        assert_eq!(ds.len() as u64, case["len"].as_u64().unwrap(), "{what}");
        let mut classes: Vec<(&String, &Value)> =
            case["class_to_idx"].as_object().unwrap().iter().collect();
        classes.sort_by_key(|(_, i)| i.as_u64().unwrap());
        let names: Vec<&str> = classes.iter().map(|(n, _)| n.as_str()).collect();
        let got: Vec<&str> = ds
            .class_names()
            .unwrap()
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(got, names, "{what}");
        assert_eq!(ds.num_classes(), names.len(), "{what}");
        let samples = case["samples"].as_array().unwrap();
        assert_eq!(samples.len(), ds.len(), "{what}");
        for (i, s) in samples.iter().enumerate() {
            assert_eq!(ds.image_path(i), s["path"].as_str(), "{what} row {i}");
            assert_eq!(
                ds.label(i) as u64,
                s["label"].as_u64().unwrap(),
                "{what} row {i}"
            );
            match s.get("size") {
                Some(size) => {
                    let sample = ds.load(i).unwrap();
                    let (w, h) = (size[0].as_u64().unwrap(), size[1].as_u64().unwrap());
                    assert_eq!((sample.image.w as u64, sample.image.h as u64), (w, h));
                    assert_eq!(sample.image.c, 3);
                    assert_eq!(sample.label, ds.label(i));
                }
                None => {
                    let err = ds.load(i).unwrap_err().to_string();
                    let file = ds.filename(i);
                    assert!(file.ends_with(&format!(".arrow#{i}")), "{file}");
                    assert!(err.contains(&file), "{what} row {i}: {err}");
                }
            }
        }
    }
}

#[test]
fn sharded_split_reads_its_shards_in_order() {
    let opts = HfdsOptions::new("train", 1);
    let ds = HfdsDataset::open(&cache(), "kiln-fixture/fmnist", &opts).unwrap();
    let files: Vec<String> = (0..ds.len()).map(|i| ds.filename(i)).collect();
    let first = files
        .iter()
        .filter(|f| f.contains("-00000-of-00002.arrow#"))
        .count();
    let second = files
        .iter()
        .filter(|f| f.contains("-00001-of-00002.arrow#"))
        .count();
    assert_eq!(first + second, ds.len());
    assert!(first > 0 && second > 0);
    assert!(files[..first].iter().all(|f| f.contains("-00000-of-")));
    assert_eq!(ds.load(0).unwrap().image.c, 1);
}

/// A copy of the `fmnist` cache folder (the hash folder itself, which `open` also takes).
fn copy_fmnist(tmp: &Path) -> PathBuf {
    let base = cache().join("kiln-fixture___fmnist/default/0.0.0");
    let hash = std::fs::read_dir(&base)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let dst = tmp.join("fmnist");
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(&hash).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dst.join(p.file_name().unwrap())).unwrap();
    }
    dst
}

fn shard(dir: &Path, k: usize) -> PathBuf {
    dir.join(format!("fmnist-train-{k:05}-of-00002.arrow"))
}

fn open_err(dir: &Path, opts: &HfdsOptions) -> (Error, String) {
    let err = HfdsDataset::open(dir, "kiln-fixture/fmnist", opts).unwrap_err();
    let text = err.to_string();
    (err, text)
}

#[test]
fn truncated_arrow_file_is_refused_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_fmnist(tmp.path());
    let bytes = std::fs::read(shard(&dir, 1)).unwrap();
    for cut in [bytes.len() - 9, bytes.len() / 2, 100, 5] {
        std::fs::write(shard(&dir, 1), &bytes[..cut]).unwrap();
        let (err, text) = open_err(&dir, &HfdsOptions::new("train", 3));
        match err {
            Error::Arrow { path, .. } => assert_eq!(path, shard(&dir, 1), "{text}"),
            e => panic!("cut at {cut}: {e}"),
        }
    }
    // Without only its 8-byte end-of-stream marker, the stream is whole: every row is there.
    assert_eq!(
        &bytes[bytes.len() - 8..],
        &[0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]
    );
    std::fs::write(shard(&dir, 1), &bytes[..bytes.len() - 8]).unwrap();
    let ds = HfdsDataset::open(&dir, "kiln-fixture/fmnist", &HfdsOptions::new("train", 3));
    assert_eq!(ds.unwrap().len(), 24);
}

#[test]
fn missing_column_split_and_shard_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_fmnist(tmp.path());
    let mut opts = HfdsOptions::new("train", 3);
    opts.input_key = "picture".into();
    let (err, text) = open_err(&dir, &opts);
    assert!(matches!(err, Error::Arrow { .. }), "{text}");
    assert!(
        text.contains("\"picture\"") && text.contains("\"image\""),
        "{text}"
    );
    assert!(text.contains("-00000-of-00002.arrow"), "{text}");

    let mut opts = HfdsOptions::new("train", 3);
    opts.target_key = "fine_label".into();
    let (_, text) = open_err(&dir, &opts);
    assert!(
        text.contains("\"fine_label\"") && text.contains("\"label\""),
        "{text}"
    );

    let (_, text) = open_err(&dir, &HfdsOptions::new("val", 3));
    assert!(
        text.contains("no split \"val\"") && text.contains("validation"),
        "{text}"
    );

    std::fs::remove_file(shard(&dir, 0)).unwrap();
    let (_, text) = open_err(&dir, &HfdsOptions::new("train", 3));
    assert!(text.contains("not all there"), "{text}");
}

#[test]
fn counts_that_disagree_with_the_info_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_fmnist(tmp.path());
    let info_path = dir.join("dataset_info.json");
    let mut info: Value =
        serde_json::from_str(&std::fs::read_to_string(&info_path).unwrap()).unwrap();
    info["splits"]["test"]["num_examples"] = Value::from(6);
    std::fs::write(&info_path, info.to_string()).unwrap();
    let (err, text) = open_err(&dir, &HfdsOptions::new("test", 3));
    assert!(matches!(err, Error::Hfds { .. }), "{text}");
    assert!(
        text.contains("6 examples") && text.contains("5 rows"),
        "{text}"
    );
}

#[test]
fn missing_dataset_names_the_folder_looked_for() {
    let err = HfdsDataset::open(
        &cache(),
        "kiln-fixture/cifar",
        &HfdsOptions::new("train", 3),
    );
    let text = err.unwrap_err().to_string();
    assert!(text.contains("kiln-fixture___cifar"), "{text}");
}

/// Every cut and every single-byte change of the fuzz target's seeds (fuzz/seeds/hfds, the
/// fixture's Arrow files) and any crash input kept in fuzz/regressions/hfds: indexed without a
/// panic, and what is indexed lies inside the file.
#[test]
fn damaged_arrow_files_are_errors_never_panics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut inputs = Vec::new();
    for dir in ["seeds/hfds", "regressions/hfds"] {
        for e in std::fs::read_dir(root.join(dir)).into_iter().flatten() {
            inputs.push(std::fs::read(e.unwrap().path()).unwrap());
        }
    }
    assert!(inputs.len() >= 5, "the seeds are missing");
    let opts = HfdsOptions::new("train", 3);
    let (mut ok, mut refused) = (0, 0);
    let mut check = |buf: &[u8]| match kiln_train::data::hfds::index_file(buf, 0, &opts, None) {
        Ok(rows) => {
            ok += 1;
            for r in rows {
                assert!(r.bytes.is_none_or(|(s, e)| s <= e && e <= buf.len()));
            }
        }
        Err(msg) => {
            refused += 1;
            assert!(!msg.is_empty());
        }
    };
    for input in &inputs {
        for cut in 0..input.len() {
            check(&input[..cut]);
        }
        let mut buf = input.clone();
        for i in 0..buf.len() {
            for flip in [0x01, 0x80, 0xFF] {
                buf[i] ^= flip;
                check(&buf);
                buf[i] ^= flip;
            }
        }
    }
    assert!(ok > 0 && refused > 0, "{ok} read, {refused} refused");
}
