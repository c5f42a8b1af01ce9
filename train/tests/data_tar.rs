//! Tar archives read in place give the same samples as the folder they were made from.
use kiln_train::data::{Dataset, ImageFolder, TarDataset};
use std::path::Path;

fn write_png(path: &Path, v: u8) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(file, 5, 4);
    enc.set_color(png::ColorType::Rgb);
    let data: Vec<u8> = (0..5 * 4 * 3).map(|k| v.wrapping_add(k as u8)).collect();
    enc.write_header().unwrap().write_image_data(&data).unwrap();
}

/// root/<class>/... with a long (over 100 bytes) class folder name, to need GNU long names.
fn make_tree(root: &Path) -> Vec<String> {
    let long = format!("c{}", "x".repeat(120));
    let classes = vec![
        "dog".to_string(),
        "cat10".to_string(),
        "cat2".to_string(),
        long,
    ];
    for (k, class) in classes.iter().enumerate() {
        std::fs::create_dir_all(root.join(class)).unwrap();
        for j in 0..3 {
            write_png(
                &root.join(class).join(format!("img{j}.png")),
                (40 * k + j) as u8,
            );
        }
        std::fs::write(root.join(class).join("notes.txt"), "not an image").unwrap();
    }
    classes
}

fn make_tar(dst: &Path, root: &Path, classes: &[String]) {
    let mut b = tar::Builder::new(std::fs::File::create(dst).unwrap());
    for c in classes {
        b.append_dir_all(c, root.join(c)).unwrap();
    }
    b.finish().unwrap();
}

fn assert_same(folder: &ImageFolder, tar: &TarDataset) {
    assert_eq!(folder.len(), tar.len());
    assert_eq!(folder.classes(), tar.classes());
    for i in 0..folder.len() {
        let (a, b) = (folder.load(i).unwrap(), tar.load(i).unwrap());
        let rel = Path::new(&a.filename)
            .strip_prefix(folder.root())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(rel, tar.member_name(i));
        assert!(b.filename.ends_with(&rel), "{}", b.filename);
        assert_eq!((a.label, a.image), (b.label, b.image), "sample {i}");
    }
}

#[test]
fn tar_matches_folder() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    let classes = make_tree(&root);
    make_tar(&dir.path().join("all.tar"), &root, &classes);
    let folder = ImageFolder::open(&root, None, 3).unwrap();
    let tar = TarDataset::open(&dir.path().join("all.tar"), None, 3).unwrap();
    assert_eq!(tar.len(), 12);
    assert_same(&folder, &tar);
}

#[test]
fn tar_shards_in_a_folder_read_as_one() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    let classes = make_tree(&root);
    let shards = dir.path().join("shards");
    std::fs::create_dir_all(&shards).unwrap();
    make_tar(&shards.join("part-0.tar"), &root, &classes[..2]);
    make_tar(&shards.join("part-1.tar"), &root, &classes[2..]);
    let folder = ImageFolder::open(&root, None, 1).unwrap();
    let tar = TarDataset::open(&shards, None, 1).unwrap();
    assert_same(&folder, &tar);
}

#[test]
fn tar_truncated_names_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    let classes = make_tree(&root);
    let path = dir.path().join("cut.tar");
    make_tar(&path, &root, &classes);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..1100]).unwrap();
    let err = TarDataset::open(&path, None, 3).unwrap_err().to_string();
    assert!(
        err.contains("cut.tar") && err.contains("truncated"),
        "{err}"
    );
}

/// timm's `ReaderImageInTar` over a tar of class folders and over a folder of per-class tars
/// (train/tests/fixtures/image_in_tar, made by scripts/fixtures/make_image_in_tar_fixtures.py):
/// the same members in the same order, the same classes and labels.
#[test]
fn members_and_labels_match_timm() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/image_in_tar");
    let text = std::fs::read_to_string(dir.join("expected.json")).unwrap();
    let fx: serde_json::Value = serde_json::from_str(&text).unwrap();
    for case in fx["cases"].as_array().unwrap() {
        let root = dir.join(case["root"].as_str().unwrap());
        let tar = TarDataset::open(&root, None, 3).unwrap();
        assert_eq!(tar.len() as u64, case["len"].as_u64().unwrap(), "{root:?}");
        let mut classes: Vec<(&String, u64)> = (case["class_to_idx"].as_object().unwrap())
            .iter()
            .map(|(k, v)| (k, v.as_u64().unwrap()))
            .collect();
        classes.sort_by_key(|c| c.1);
        for (name, idx) in classes {
            assert_eq!(
                tar.classes().get(name).map(|&i| i as u64),
                Some(idx),
                "{root:?} {name}"
            );
        }
        assert_eq!(
            tar.num_classes() as u64,
            case["class_to_idx"].as_object().unwrap().len() as u64
        );
        for (i, s) in case["samples"].as_array().unwrap().iter().enumerate() {
            assert_eq!(
                tar.member_name(i),
                s["name"].as_str().unwrap(),
                "{root:?} {i}"
            );
            assert_eq!(
                tar.label(i) as u64,
                s["label"].as_u64().unwrap(),
                "{root:?} {i}"
            );
            assert_eq!(tar.load(i).unwrap().image.w, 2);
        }
    }
}
