//! ImageFolder: natural class order, class-map files, errors naming the path, corrupt files skipped.
use kiln_train::augment::Pipeline;
use kiln_train::data::{Dataset, ImageFolder};
use kiln_train::loader::{DistributedSampler, Loader, LoaderOptions};
use std::path::Path;
use std::sync::Arc;

/// Writes an 8×6 RGB PNG whose every pixel is `v`.
fn write_png(path: &Path, v: u8) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(file, 8, 6);
    enc.set_color(png::ColorType::Rgb);
    enc.write_header()
        .unwrap()
        .write_image_data(&[v; 8 * 6 * 3])
        .unwrap();
}

/// root/{a2,a10,b}/ with two PNGs each, plus a corrupt `.jpg` in `b`.
fn make_tree(root: &Path) {
    for (k, class) in ["b", "a10", "a2"].iter().enumerate() {
        std::fs::create_dir_all(root.join(class)).unwrap();
        write_png(&root.join(class).join("x1.png"), 10 * k as u8);
        write_png(&root.join(class).join("x2.PNG"), 10 * k as u8 + 1);
    }
    std::fs::write(root.join("b/broken.jpg"), b"\xFF\xD8 not really a jpeg").unwrap();
}

#[test]
fn folder_classes_in_natural_order() {
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path());
    let ds = ImageFolder::open(dir.path(), None, 3).unwrap();
    let names: Vec<(&str, usize)> = ds.classes().iter().map(|(n, &i)| (n.as_str(), i)).collect();
    assert_eq!(names, [("a10", 1), ("a2", 0), ("b", 2)]);
    assert_eq!(ds.len(), 7);
    let s = ds.load(0).unwrap();
    assert_eq!(
        (s.label, s.image.w, s.image.h, s.image.data[0]),
        (0, 8, 6, 20)
    );
    assert!(s.filename.ends_with("a2/x1.png"));
}

#[test]
fn folder_class_map_file_sets_indices() {
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path());
    let map = dir.path().join("map.txt");
    std::fs::write(&map, "b\na2\n").unwrap();
    let ds = ImageFolder::open(dir.path(), Some(&map), 1).unwrap();
    assert_eq!(ds.num_classes(), 2);
    assert_eq!(ds.len(), 5, "a10 is not in the map");
    let first_b = (0..ds.len())
        .find(|&i| ds.filename(i).ends_with("/b/x1.png"))
        .unwrap();
    assert_eq!(ds.label(first_b), 0);
    assert_eq!(ds.load(first_b).unwrap().image.c, 1);
}

#[test]
fn folder_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = ImageFolder::open(&missing, None, 3)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nope") && err.contains("does not exist"),
        "{err}"
    );
    std::fs::create_dir_all(dir.path().join("empty_class")).unwrap();
    let err = ImageFolder::open(dir.path(), None, 3)
        .unwrap_err()
        .to_string();
    assert!(err.contains("empty_class"), "{err}");
}

#[test]
fn corrupt_file_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    make_tree(dir.path());
    let ds = Arc::new(ImageFolder::open(dir.path(), None, 3).unwrap());
    let broken = (0..ds.len())
        .find(|&i| ds.filename(i).ends_with("broken.jpg"))
        .unwrap();
    let err = ds.load(broken).unwrap_err().to_string();
    assert!(err.contains("broken.jpg"), "{err}");
    let sampler = Box::new(DistributedSampler::single(ds.len(), false, 0));
    let opts = LoaderOptions {
        batch_size: 4,
        workers: 2,
        drop_last: false,
        prefetch: 0,
        seed: 0,
        rank: 0,
        shape: (6, 8, 3),
    };
    let mut loader = Loader::new(ds.clone(), Pipeline::default(), sampler, opts).unwrap();
    for epoch in 0..2 {
        let batches: Vec<_> = loader.epoch(epoch).map(Result::unwrap).collect();
        assert_eq!(batches.iter().map(|b| b.skipped).sum::<usize>(), 1);
        assert_eq!(batches.iter().map(|b| b.n).sum::<usize>(), 6);
        for b in &batches {
            for (i, name) in b.filenames.iter().enumerate() {
                let k = (0..ds.len()).find(|&k| &ds.filename(k) == name).unwrap();
                assert_eq!(b.targets[i], ds.label(k), "label of {name}");
                assert_eq!(b.image(i)[0], ds.load(k).unwrap().image.data[0]);
            }
        }
    }
    assert_eq!(loader.skipped(), 2);
}

/// Images directly in the root form the class `""` (timm's label for them), so a plain folder of
/// images reads as one class; those in subfolders keep their folder's class, at any depth.
#[test]
fn images_in_the_root_are_the_class_of_the_empty_name() {
    let dir = tempfile::tempdir().unwrap();
    write_png(&dir.path().join("a.png"), 1);
    std::fs::create_dir_all(dir.path().join("sub/deeper")).unwrap();
    write_png(&dir.path().join("sub/deeper/b.png"), 2);
    let ds = ImageFolder::open(dir.path(), None, 1).unwrap();
    let names: Vec<&str> = ds.classes().keys().map(String::as_str).collect();
    assert_eq!(names, ["", "sub"]);
    assert_eq!(ds.len(), 2);
    let a = (0..2)
        .find(|&i| ds.filename(i).ends_with("/a.png"))
        .unwrap();
    assert_eq!((ds.label(a), ds.label(1 - a)), (0, 1));
}
