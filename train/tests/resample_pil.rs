//! Resizing equals PIL's `Image.resize` (through torchvision's `F.resize`, as timm's transforms
//! call it) byte for byte, for every filter timm offers, upscaling and downscaling, one axis or
//! both. Fixtures: `scripts/fixtures/make_resample_fixtures.py` -> `tests/fixtures/resample/`.

mod common;

use common::fixture_image;
use kiln_train::augment::{resize, Interpolation};
use kiln_train::data::Image;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/resample")
}

fn load(name: &str) -> Image {
    fixture_image(&dir(), name, name.contains("gray"))
}

#[test]
fn every_filter_resizes_as_pil_does_to_the_byte() {
    let manifest = std::fs::read_to_string(dir().join("manifest.txt")).unwrap();
    let mut failures = Vec::new();
    let mut filters = std::collections::BTreeSet::new();
    let (mut up, mut down) = (0, 0);
    for line in manifest.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (w, h) = (f[0].parse().unwrap(), f[1].parse().unwrap());
        let interp: Interpolation = f[2].parse().unwrap();
        let src = load(f[3]);
        up += (w > src.w || h > src.h) as usize;
        down += (w < src.w || h < src.h) as usize;
        filters.insert(f[2]);
        let got = resize(&src, w, h, interp);
        let want = load(f[4]);
        assert_eq!((got.w, got.h, got.c), (want.w, want.h, want.c), "{line}");
        let differing = got
            .data
            .iter()
            .zip(&want.data)
            .filter(|(a, b)| a != b)
            .count();
        if differing > 0 {
            failures.push(format!(
                "{line}: {differing} of {} bytes differ",
                got.data.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(filters.len(), 6, "{filters:?}");
    assert!(
        up >= 100 && down >= 100,
        "{up} upscaling and {down} downscaling cases"
    );
}
