//! timm's `pretrained=True` read offline from the Hugging Face hub cache: a tag's weights, an
//! `hf-hub:` repo and a `local-dir:` folder give the model timm gives (its logits, with the first
//! conv adapted and the head kept or re-initialized), and a missing file is one error naming
//! every place looked. Fixtures: tests/fixtures/hub_cache (laid out as huggingface_hub lays it
//! out), tests/fixtures/local_dir and nn/tests/fixtures/hub_pretrained.safetensors, made by
//! scripts/fixtures/make_hub_cache_fixtures.py.

mod common;

use common::{hashed_input, max_rel_diff};
use kiln_engine::Tensor;
use kiln_nn::{load_safetensors, HubCache, Model, ModelArgs, ModelSpec};
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture_cache() -> HubCache {
    HubCache::at(repo_root().join("tests/fixtures/hub_cache"))
}

fn local_dir() -> String {
    let dir = repo_root().join("tests/fixtures/local_dir/mnv3_small_050");
    format!("local-dir:{}", dir.display())
}

/// `name` with its pretrained weights, `in_chans` inputs and `num_classes` classes (the weights'
/// when `None`), as `timm.create_model(name, pretrained=True, ...)` builds it; eval mode.
fn pretrained(name: &str, in_chans: usize, num_classes: Option<usize>) -> Box<dyn Model> {
    let spec = ModelSpec::resolve_in(name, &fixture_cache()).unwrap();
    let num_classes = num_classes.unwrap_or(spec.cfg.num_classes);
    let args = ModelArgs {
        num_classes,
        in_chans,
        pretrained: Some(spec.pretrained_source(num_classes).unwrap()),
        ..Default::default()
    };
    let mut model = spec.create(&args).unwrap();
    model.set_training(false);
    model
}

fn output(model: &dyn Model, in_chans: usize, pre_logits: bool) -> Tensor {
    let features = model.forward_features(&hashed_input(in_chans)).unwrap();
    model.forward_head(&features, pre_logits).unwrap()
}

#[test]
fn cached_weights_give_timms_outputs() {
    let expected = load_safetensors(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hub_pretrained.safetensors"),
    )
    .unwrap();
    let local = local_dir();
    let cases = [
        ("logits.tag.c3", "mobilenetv3_small_050.lamb_in1k", 3, None),
        ("logits.tag.c3", "mobilenetv3_small_050", 3, None),
        ("logits.tag.c5", "mobilenetv3_small_050.lamb_in1k", 5, None),
        (
            "features.tag.c1.k10",
            "mobilenetv3_small_050.lamb_in1k",
            1,
            Some(10),
        ),
        (
            "logits.hf_hub.c3",
            "hf-hub:kiln-fixtures/mnv3_small_050",
            3,
            None,
        ),
        ("logits.local_dir.c3", local.as_str(), 3, None),
    ];
    for (key, name, in_chans, num_classes) in cases {
        let model = pretrained(name, in_chans, num_classes);
        let got = output(model.as_ref(), in_chans, num_classes.is_some());
        let want = &expected[key];
        assert_eq!(got.shape(), want.shape(), "{name} ({key})");
        // Both sides load the same float16 weights into float32: float32 rounding only.
        let diff = max_rel_diff(&got, want);
        assert!(diff < 1e-5, "{name} ({key}): off by {diff}");
    }
}

#[test]
fn a_hub_repos_config_gives_the_architecture_and_pretrained_cfg() {
    let spec =
        ModelSpec::resolve_in("hf-hub:kiln-fixtures/mnv3_small_050", &fixture_cache()).unwrap();
    assert_eq!(spec.arch, "mobilenetv3_small_050");
    let cfg = &spec.cfg;
    assert_eq!(cfg.name, "mobilenetv3_small_050.kiln_fixture");
    assert_eq!(
        cfg.hf_hub_id.as_deref(),
        Some("kiln-fixtures/mnv3_small_050")
    );
    assert_eq!(
        (cfg.crop_pct, cfg.interpolation.as_str()),
        (0.888, "bilinear")
    );
    assert_eq!((cfg.mean, cfg.std), ([0.5, 0.4, 0.3], [0.2, 0.25, 0.3]));
    assert_eq!(
        (cfg.num_classes, cfg.classifier.as_str()),
        (1000, "classifier")
    );
    let local = ModelSpec::resolve_in(&local_dir(), &HubCache::at("/nonexistent")).unwrap();
    assert_eq!(
        (local.arch.as_str(), &local.cfg.mean),
        ("mobilenetv3_small_050", &cfg.mean)
    );
    // A revision given as its commit is the snapshot of that name.
    let refs = repo_root()
        .join("tests/fixtures/hub_cache/models--kiln-fixtures--mnv3_small_050/refs/main");
    let commit = std::fs::read_to_string(refs).unwrap();
    let pinned = format!("hf-hub:kiln-fixtures/mnv3_small_050@{commit}");
    let at_commit = ModelSpec::resolve_in(&pinned, &fixture_cache()).unwrap();
    assert_eq!(
        at_commit.weights_file().unwrap(),
        spec.weights_file().unwrap()
    );
}

#[test]
fn the_tags_cached_file_is_its_snapshots() {
    let spec = ModelSpec::resolve_in("mobilenetv3_small_050", &fixture_cache()).unwrap();
    let file = spec.weights_file().unwrap();
    let snapshots = "models--timm--mobilenetv3_small_050.lamb_in1k/snapshots/";
    let file = file.display().to_string();
    assert!(
        file.contains(snapshots) && file.ends_with("/model.safetensors"),
        "{file}"
    );
    assert!(!spec.pretrained_source(1000).unwrap().reset_classifier);
    assert!(spec.pretrained_source(10).unwrap().reset_classifier);
}

/// A cache with `files` (empty) in the snapshot of `repo`, `refs/main` naming it.
fn cache_with(root: &Path, repo: &str, files: &[&str]) {
    let folder = root.join(format!("models--{}", repo.replace('/', "--")));
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let snapshot = folder.join("snapshots").join(commit);
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::create_dir_all(folder.join("refs")).unwrap();
    std::fs::write(folder.join("refs/main"), commit).unwrap();
    for f in files {
        std::fs::write(snapshot.join(f), b"").unwrap();
    }
}

#[test]
fn pytorch_model_bin_is_taken_without_model_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    cache_with(dir.path(), "timm/resnet18.a1_in1k", &["pytorch_model.bin"]);
    let cache = HubCache::at(dir.path());
    let file = ModelSpec::resolve_in("resnet18", &cache)
        .unwrap()
        .weights_file()
        .unwrap();
    assert!(file.ends_with("pytorch_model.bin"), "{}", file.display());
    cache_with(
        dir.path(),
        "timm/resnet18.a1_in1k",
        &["model.safetensors", "pytorch_model.bin"],
    );
    let file = ModelSpec::resolve_in("resnet18", &cache)
        .unwrap()
        .weights_file()
        .unwrap();
    assert!(file.ends_with("model.safetensors"), "{}", file.display());
}

#[test]
fn missing_weights_are_one_line_naming_every_place_looked() {
    let dir = tempfile::tempdir().unwrap();
    let cache = HubCache::at(dir.path());
    let spec = ModelSpec::resolve_in("resnet50.tv_in1k", &cache).unwrap();
    let err = spec.weights_file().unwrap_err().to_string();
    let repo = dir.path().join("models--timm--resnet50.tv_in1k");
    assert!(!err.contains('\n'), "{err}");
    assert!(
        err.contains(&format!("{} (absent)", repo.display())),
        "{err}"
    );
    assert!(err.contains("`hf download timm/resnet50.tv_in1k`"), "{err}");
    assert!(
        err.contains("`huggingface-cli download timm/resnet50.tv_in1k`"),
        "{err}"
    );

    cache_with(dir.path(), "timm/resnet50.tv_in1k", &[]);
    let err = spec.weights_file().unwrap_err().to_string();
    let snapshot = repo.join("snapshots/0123456789abcdef0123456789abcdef01234567");
    for f in ["model.safetensors", "pytorch_model.bin"] {
        assert!(
            err.contains(&snapshot.join(f).display().to_string()),
            "{err}"
        );
    }

    let err = ModelSpec::resolve_in("hf-hub:someone/model@v2", &cache)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("someone/model@v2 is not in the Hugging Face hub cache"),
        "{err}"
    );
    assert!(
        err.contains("`hf download someone/model --revision v2`"),
        "{err}"
    );
}

#[test]
fn names_without_weights_or_config_are_refused() {
    let cache = fixture_cache();
    let untrained = ModelSpec::resolve_in("mobilenetv3_large_075", &cache).unwrap();
    let err = untrained.weights_file().unwrap_err().to_string();
    assert!(err.contains("no pretrained weights exist"), "{err}");
    let err = ModelSpec::resolve_in("local-dir:/nonexistent/model", &cache)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("config file not found: /nonexistent/model/config.json"),
        "{err}"
    );
}

/// The pretrained cfg's `crop_mode` (validate.py's default `--crop-mode`) is read from a
/// config.json, and is timm's `center` where it has none.
#[test]
fn a_configs_crop_mode_is_read_and_defaults_to_center() {
    let fixture = Path::new(&local_dir()["local-dir:".len()..]).join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let name = format!("local-dir:{}", dir.path().display());
    for (mode, want) in [(Some("squash"), "squash"), (None, "center")] {
        let pcfg = config["pretrained_cfg"].as_object_mut().unwrap();
        match mode {
            Some(m) => pcfg.insert("crop_mode".into(), m.into()),
            None => pcfg.remove("crop_mode"),
        };
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        let spec = ModelSpec::resolve_in(&name, &HubCache::at("/nonexistent")).unwrap();
        assert_eq!(spec.cfg.crop_mode, want);
    }
}
