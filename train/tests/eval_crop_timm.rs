//! validate.py's `--crop-mode` (center, squash, border) and `--crop-border-pixels` against timm's
//! `transforms_imagenet_eval`, image for image, through `DataConfig::eval_pipeline`. Fixtures:
//! `scripts/fixtures/make_eval_crop_fixtures.py` -> `tests/fixtures/data/eval_crop/`.
use kiln_train::augment::derive_rng;
use kiln_train::data::{decode, Image};
use kiln_train::loader::DataConfig;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data")
}

fn png(path: &Path, chans: usize) -> Image {
    decode(
        &std::fs::read(path).unwrap(),
        chans,
        &path.to_string_lossy(),
    )
    .unwrap()
}

/// PIL's `Image.transpose(TRANSPOSE)`: rows become columns.
fn transpose(img: &Image) -> Image {
    let mut data = Vec::with_capacity(img.data.len());
    for x in 0..img.w {
        for y in 0..img.h {
            data.extend_from_slice(img.px(x, y));
        }
    }
    Image::new(img.h, img.w, img.c, data)
}

/// The case's source: `rgb`, `gray`, `rgb_t` (transposed) or `rgb_small` (the script's 20x15).
fn source(name: &str) -> Image {
    match name {
        "rgb" => png(&dir().join("src_rgb.png"), 3),
        "gray" => png(&dir().join("src_gray.png"), 1),
        "rgb_t" => transpose(&source("rgb")),
        "rgb_small" => png(&dir().join("eval_crop/src_rgb_small.png"), 3),
        other => panic!("unknown source {other}"),
    }
}

/// The eval pipeline of the case's arguments, as validate.py passes them to timm.
fn config(case: &Value, chans: usize) -> DataConfig {
    let mean: Vec<f32> = case["mean"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    DataConfig {
        img_size: case["size"].as_u64().unwrap() as usize,
        in_chans: chans,
        crop_pct: case["crop_pct"].as_f64(),
        crop_mode: case["mode"].as_str().unwrap().into(),
        crop_border_pixels: case["border"].as_u64().map(|b| b as usize),
        interpolation: case["interpolation"].as_str().unwrap().into(),
        mean: Some(mean),
        ..DataConfig::default()
    }
}

#[test]
fn eval_crop_modes_match_timms_eval_transform() {
    let text = std::fs::read_to_string(dir().join("eval_crop/cases.json")).unwrap();
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(cases.len(), 69);
    let (mut nearest, mut padded) = (0, 0);
    for case in &cases {
        let what = case["out"].as_str().unwrap();
        let img = source(case["src"].as_str().unwrap());
        let pipeline = config(case, img.c).eval_pipeline().unwrap();
        let mut views = pipeline.views(img.clone(), &mut derive_rng(&[0]));
        assert_eq!(views.len(), 1);
        let got = views.remove(0);
        let want = png(&dir().join("eval_crop").join(what), img.c);
        assert_eq!((got.w, got.h, got.c), (want.w, want.h, want.c), "{what}");
        let max = got
            .data
            .iter()
            .zip(&want.data)
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        // Resizing is PIL's to the byte, the crops only copy pixels and the border mode's
        // padding writes the mean colour: every case matches exactly.
        assert_eq!(max, 0, "{what}: max difference {max}");
        nearest += (case["interpolation"] == "nearest") as usize;
        // timm's fill, round(255 * mean): RGB (124, 116, 104); gray round(76.5 - 3e-15) = 76.
        let fill: &[u8] = if img.c == 3 { &[124, 116, 104] } else { &[76] };
        padded += (case["mode"] == "border" && got.data.chunks(img.c).any(|p| p == fill)) as usize;
    }
    assert!(
        nearest == 6 && padded >= 20,
        "nearest {nearest}, padded {padded}"
    );
}

#[test]
fn a_border_trimmed_to_nothing_leaves_an_empty_image_the_loader_skips() {
    let case = serde_json::json!({
        "size": 8, "crop_pct": 1.0, "mode": "center", "border": 15,
        "interpolation": "bilinear", "mean": [0.5, 0.5, 0.5],
    });
    let img = source("rgb"); // 40x30: a 15-pixel border leaves no row
    let views = config(&case, 3)
        .eval_pipeline()
        .unwrap()
        .views(img, &mut derive_rng(&[0]));
    assert_eq!((views[0].w, views[0].h), (0, 0));
}

#[test]
fn an_unknown_crop_mode_is_named() {
    let cfg = DataConfig {
        crop_mode: "letterbox".into(),
        ..DataConfig::default()
    };
    let e = cfg.eval_pipeline().unwrap_err().to_string();
    assert!(e.contains("crop_mode") && e.contains("letterbox"), "{e}");
}
