//! The webdataset reader against timm's `ReaderWds` (train/tests/fixtures/wds_reader.json, made
//! by scripts/fixtures/make_wds_fixtures.py): the same samples in the same order, the same labels
//! and counts, per epoch, rank and loader worker; and bad shards skipped with the shard and
//! member named, or refused.
use kiln_train::data::wds::{WdsDataset, WdsOptions, WorkerStream};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

fn fixture() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wds_reader.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn png(v: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, 2, 2);
    enc.set_color(png::ColorType::Rgb);
    let data: Vec<u8> = (0..12).map(|k| v.wrapping_add(k as u8)).collect();
    enc.write_header().unwrap().write_image_data(&data).unwrap();
    out
}

/// Appends a regular file member.
fn add(b: &mut tar::Builder<std::fs::File>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, name, data).unwrap();
}

/// Writes the fixture's shards (image, `.cls`, `.json` per sample, in its order) and `_info.json`.
fn write_dataset(root: &Path, fx: &Value) {
    for shard in fx["shards"].as_array().unwrap() {
        let file = std::fs::File::create(root.join(shard["name"].as_str().unwrap())).unwrap();
        let mut b = tar::Builder::new(file);
        for (i, s) in shard["samples"].as_array().unwrap().iter().enumerate() {
            let key = s["key"].as_str().unwrap();
            add(
                &mut b,
                &format!("{key}.{}", s["ext"].as_str().unwrap()),
                &png(i as u8),
            );
            add(
                &mut b,
                &format!("{key}.cls"),
                s["cls"].to_string().as_bytes(),
            );
            let meta = serde_json::json!({"meta": {"y": s["y"]}});
            add(&mut b, &format!("{key}.json"), meta.to_string().as_bytes());
        }
        b.finish().unwrap();
    }
    std::fs::write(root.join("_info.json"), fx["info"].to_string()).unwrap();
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn n(v: &Value) -> usize {
    v.as_u64().unwrap() as usize
}

#[test]
fn streams_match_timm_reader() {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), &fx);
    for case in fx["cases"].as_array().unwrap() {
        let mut opts = WdsOptions::new(
            case["split"].as_str().unwrap(),
            case["is_training"].as_bool().unwrap(),
            case["seed"].as_u64().unwrap(),
            3,
        );
        opts.num_samples = case["num_samples"].as_u64().map(|v| v as usize);
        opts.input_key = opt_str(&case["input_key"]);
        opts.target_key = opt_str(&case["target_key"]);
        let ds = Arc::new(WdsDataset::open(dir.path(), opts).unwrap());
        let (epoch, rank, world) = (n(&case["epoch"]), n(&case["rank"]), n(&case["world"]));
        let (worker, workers, bs) = (
            n(&case["worker"]),
            n(&case["workers"]),
            n(&case["batch_size"]),
        );
        let expect = &case["expect"];
        assert_eq!(
            ds.len(world, workers, bs),
            n(&expect["len"]),
            "len of {case}"
        );
        let got: Vec<(String, usize)> =
            WorkerStream::new(&ds, epoch, rank, world, worker, workers, bs)
                .unwrap()
                .map(|s| {
                    let s = s.unwrap();
                    (s.key, s.label)
                })
                .collect();
        let want: Vec<(String, usize)> = expect["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_str().unwrap().to_string(), n(&p[1])))
            .collect();
        assert_eq!(got, want, "samples of {case}");
    }
}

/// Warnings logged so far (the reader's `log_and_continue` messages).
static WARNINGS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        if r.level() <= log::Level::Warn {
            WARNINGS.lock().unwrap().push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

fn keys(ds: &Arc<WdsDataset>) -> Vec<String> {
    WorkerStream::new(ds, 0, 0, 1, 0, 0, 1)
        .unwrap()
        .map(|s| s.unwrap().key)
        .collect()
}

#[test]
fn bad_shards_are_skipped_with_shard_and_member_named() {
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Warn);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let file = std::fs::File::create(root.join("a.tar")).unwrap();
    let mut b = tar::Builder::new(file);
    for k in 0..4 {
        add(&mut b, &format!("s{k}.png"), &png(k));
        if k != 2 {
            add(&mut b, &format!("s{k}.cls"), b"1");
        }
    }
    add(&mut b, "s4.txt", b"no image");
    add(&mut b, "s4.cls", b"0");
    add(&mut b, "s5.png", &png(5));
    add(&mut b, "s5.cls", b"x");
    b.finish().unwrap();
    let file = std::fs::File::create(root.join("b.tar")).unwrap();
    let mut b = tar::Builder::new(file);
    for k in 0..3 {
        add(&mut b, &format!("t{k}.png"), &png(k));
        add(&mut b, &format!("t{k}.cls"), b"0");
    }
    b.finish().unwrap();
    // b.tar cut inside t2.png's data: t0 and t1 are whole.
    let whole = std::fs::read(root.join("b.tar")).unwrap();
    std::fs::write(root.join("b.tar"), &whole[..512 * 9 + 20]).unwrap();
    let ds = Arc::new(WdsDataset::open(root, WdsOptions::new("{a,b}.tar", false, 0, 3)).unwrap());
    assert_eq!(keys(&ds), ["s0", "s1", "s3", "t0", "t1"]);
    let warned = WARNINGS.lock().unwrap().join("\n");
    for (what, why) in [
        ("a.tar:s2", "no .cls member"),
        ("a.tar:s4", "no image member"),
        ("a.tar:s5", "not an integer"),
        ("b.tar", "t2.png"),
        ("b.tar", "truncated"),
    ] {
        assert!(
            warned.lines().any(|l| l.contains(what) && l.contains(why)),
            "no warning naming {what} ({why}) in:\n{warned}"
        );
    }
    // A sample that decodes badly fails its load with the shard and member named.
    let one = WorkerStream::new(&ds, 0, 0, 1, 0, 0, 1)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let bad = kiln_train::data::wds::WdsSample {
        size: 10,
        ..one.clone()
    };
    let err = bad.load(3).unwrap_err().to_string();
    assert!(err.contains("a.tar:s0.png"), "{err}");
    assert_eq!(one.load(3).unwrap().image.w, 2);
}

#[test]
fn unresolvable_target_key_and_missing_shards_are_refused() {
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), &fx);
    let mut opts = WdsOptions::new("train", true, 0, 3);
    opts.target_key = Some("meta/nothing".into());
    let ds = Arc::new(WdsDataset::open(dir.path(), opts).unwrap());
    let err = WorkerStream::new(&ds, 0, 0, 1, 0, 0, 4)
        .unwrap()
        .find_map(Result::err)
        .unwrap()
        .to_string();
    assert!(
        err.contains("fx-t-") && err.contains("meta/nothing"),
        "{err}"
    );
    std::fs::remove_file(dir.path().join("fx-t-000003.tar")).unwrap();
    let err = WdsDataset::open(dir.path(), WdsOptions::new("train", true, 0, 3)).unwrap_err();
    assert!(err.to_string().contains("fx-t-000003.tar"), "{err}");
    // More loader workers than shards cannot each read one.
    let ds =
        Arc::new(WdsDataset::open(dir.path(), WdsOptions::new("validation", true, 0, 3)).unwrap());
    let err = WorkerStream::new(&ds, 0, 0, 1, 3, 4, 4).unwrap_err();
    assert!(err.to_string().contains("3 shards cannot feed 4"), "{err}");
}

/// The filenames of every batch of `epoch` from batch `from`.
fn batches(loader: &mut kiln_train::loader::Loader, epoch: usize, from: usize) -> Vec<Vec<String>> {
    let mut it = loader.epoch_from(epoch, from);
    let mut out = Vec::new();
    while let Some(b) = it.next() {
        let b = b.unwrap();
        out.push(b.filenames.clone());
        it.recycle(b);
    }
    out
}

#[test]
fn streamed_loader_takes_batches_from_workers_in_turn_and_resumes_mid_epoch() {
    use kiln_train::data::Source;
    use kiln_train::loader::{AugConfig, DataConfig};
    let fx = fixture();
    let dir = tempfile::tempdir().unwrap();
    write_dataset(dir.path(), &fx);
    let cfg = DataConfig {
        img_size: 2,
        batch_size: 3,
        workers: 2,
        seed: 42,
        small_images: true,
        aug: AugConfig::default().no_aug(true),
        ..DataConfig::default()
    };
    let ds = Arc::new(WdsDataset::open(dir.path(), WdsOptions::new("train", true, 42, 3)).unwrap());
    let mut loader = cfg
        .train_loader_for(Source::Streamed(ds.clone()), 1, 2)
        .unwrap();
    // 50 samples over 2 ranks x 2 workers: 13 each, 15 with whole batches of 3: 10 batches a rank.
    assert_eq!(loader.len(), 10);
    for epoch in [0, 3] {
        let all = batches(&mut loader, epoch, 0);
        let streams: Vec<Vec<String>> = (0..2)
            .map(|w| {
                WorkerStream::new(&ds, epoch, 1, 2, w, 2, 3)
                    .unwrap()
                    .map(|s| s.unwrap().filename())
                    .collect()
            })
            .collect();
        let turns: Vec<Vec<String>> = (0..10)
            .map(|b| streams[b % 2][(b / 2) * 3..(b / 2) * 3 + 3].to_vec())
            .collect();
        assert_eq!(all, turns, "epoch {epoch}");
        assert_eq!(
            batches(&mut loader, epoch, 7),
            all[7..],
            "resumed at batch 7"
        );
    }
    let val =
        Arc::new(WdsDataset::open(dir.path(), WdsOptions::new("validation", false, 0, 3)).unwrap());
    let mut eval = cfg.eval_loader_for(Source::Streamed(val), 4, 0, 1).unwrap();
    let sizes: Vec<usize> = batches(&mut eval, 0, 0).iter().map(Vec::len).collect();
    // Worker 0 reads shards 0 and 2 (9 samples), worker 1 shard 1 (6): in turn, last ones short.
    assert_eq!(sizes, [4, 4, 4, 2, 1]);
}

#[test]
fn a_corrupt_image_is_skipped_counted_and_named() {
    use kiln_train::data::Source;
    use kiln_train::loader::{AugConfig, DataConfig};
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Warn);
    let dir = tempfile::tempdir().unwrap();
    let file = std::fs::File::create(dir.path().join("c.tar")).unwrap();
    let mut b = tar::Builder::new(file);
    for k in 0..5u8 {
        let image = if k == 3 {
            b"\x89PNG\r\n\x1a\ncut".to_vec()
        } else {
            png(k)
        };
        add(&mut b, &format!("k{k}.png"), &image);
        add(&mut b, &format!("k{k}.cls"), b"0");
    }
    b.finish().unwrap();
    let cfg = DataConfig {
        img_size: 2,
        workers: 0,
        small_images: true,
        aug: AugConfig::default().no_aug(true),
        ..DataConfig::default()
    };
    let ds = WdsDataset::open(dir.path(), WdsOptions::new("c.tar|5", false, 0, 3)).unwrap();
    let mut loader = cfg
        .eval_loader_for(Source::Streamed(Arc::new(ds)), 2, 0, 1)
        .unwrap();
    let sizes: Vec<usize> = batches(&mut loader, 0, 0).iter().map(Vec::len).collect();
    assert_eq!(
        sizes,
        [2, 1, 1],
        "the corrupt k3 leaves its batch one smaller"
    );
    assert_eq!(loader.skipped(), 1);
    let warned = WARNINGS.lock().unwrap().join("\n");
    assert!(
        warned.lines().any(|l| l.contains("c.tar:k3.png")),
        "no warning naming c.tar:k3.png in:\n{warned}"
    );
}
