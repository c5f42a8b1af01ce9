//! Inputs that broke kiln's readers of outside bytes, fed to the same readers as the fuzz targets
//! in fuzz/ feed them: each must come back as an error naming the file (or, where the input is
//! valid, as data), never as a panic, an abort or a hang. The files under
//! fuzz/regressions/<target>/ are the fuzzers' crash inputs; the cases built here were found by
//! reading the code the fuzzers cover.
use kiln_train::data::{decode, Dataset, IdxDataset, ImageFolder, TarDataset};
use std::path::{Path, PathBuf};

/// The crash inputs kept for fuzz target `target`, by file name.
fn crash_inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().path())
                .map(|p| (name_of(&p), std::fs::read(&p).unwrap()))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn name_of(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// Loads every sample of `ds` (as a loader would), whatever each load returns.
fn load_all(ds: &dyn Dataset) -> usize {
    (0..ds.len()).filter(|&i| ds.load(i).is_ok()).count()
}

/// A tar header block for `name` whose size field is `size` (12 bytes), checksum not checked.
fn tar_header(name: &str, size: [u8; 12]) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[124..136].copy_from_slice(&size);
    h[156] = b'0';
    h
}

#[test]
fn tar_member_sizes_past_the_archive_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    // GNU base-256 sizes: all ones (past usize, once an overflow in the shift) and a size that
    // wrapped `offset + size` around to a small number.
    let mut huge = [0xFFu8; 12];
    huge[0] = 0x80;
    let mut wraps = [0u8; 12];
    wraps[0] = 0x80;
    wraps[4..].copy_from_slice(&(u64::MAX - 511).to_be_bytes());
    let octal = *b"77777777777\0";
    for (what, size) in [
        ("base-256 max", huge),
        ("wrapping", wraps),
        ("octal", octal),
    ] {
        let mut tar = tar_header("cls/a.png", size);
        tar.extend_from_slice(&[0u8; 1024]);
        let path = dir.path().join("bad.tar");
        std::fs::write(&path, &tar).unwrap();
        let err = TarDataset::open(&path, None, 3).unwrap_err().to_string();
        assert!(err.contains("bad.tar"), "{what}: {err}");
    }
}

#[test]
fn tar_crash_inputs_open_but_their_bad_members_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = crash_inputs("tar");
    assert!(!inputs.is_empty());
    for (name, bytes) in inputs {
        let path = dir.path().join(format!("{name}.tar"));
        std::fs::write(&path, bytes).unwrap();
        let ds = TarDataset::open(&path, None, 3).unwrap();
        assert!(
            load_all(&ds) < ds.len(),
            "{name}: its bad member is skipped"
        );
    }
}

/// Writes an IDX pair to `dir` (`t-images-idx3-ubyte`, `t-labels-idx1-ubyte`).
fn write_idx(dir: &Path, images: &[u8], labels: &[u8]) {
    std::fs::write(dir.join("t-images-idx3-ubyte"), images).unwrap();
    std::fs::write(dir.join("t-labels-idx1-ubyte"), labels).unwrap();
}

#[test]
fn idx_dimensions_whose_product_overflows_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    // 2^32-1 cubed overflows usize: the size check once panicked in debug and wrapped in release.
    let mut images = vec![0, 0, 8, 3];
    images.extend([0xFF; 12]);
    let labels = [0, 0, 8, 1, 0, 0, 0, 0];
    write_idx(dir.path(), &images, &labels);
    let err = IdxDataset::open(dir.path(), "t", 1)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("t-images-idx3-ubyte") && err.contains("more than fits"),
        "{err}"
    );
}

fn write_png(path: &Path) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(file, 2, 2);
    enc.set_color(png::ColorType::Grayscale);
    enc.write_header()
        .unwrap()
        .write_image_data(&[1, 2, 3, 4])
        .unwrap();
}

#[test]
fn image_folder_symlink_loops_are_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let deep = root.join("cat/sub");
    std::fs::create_dir_all(&deep).unwrap();
    write_png(&root.join("cat/a.png"));
    write_png(&deep.join("b.png"));
    // Two links back to the class folder: without a guard, 2^40 paths until ELOOP.
    std::os::unix::fs::symlink(root.join("cat"), deep.join("up")).unwrap();
    std::os::unix::fs::symlink(root.join("cat"), deep.join("again")).unwrap();
    std::os::unix::fs::symlink(root.join("nowhere"), root.join("cat/dangling.png")).unwrap();
    let ds = ImageFolder::open(root, None, 3).unwrap();
    let mut files: Vec<String> = (0..ds.len()).map(|i| ds.filename(i)).collect();
    files.sort();
    let want: Vec<PathBuf> = vec![
        root.join("cat/a.png"),
        root.join("cat/dangling.png"),
        deep.join("b.png"),
    ];
    let want: Vec<String> = want.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(files, want);
    assert_eq!(load_all(&ds), 2, "the dangling link is skipped at load");
}

#[test]
fn decode_refuses_channel_counts_it_cannot_make() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.png");
    write_png(&path);
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(decode(&bytes, 3, "a.png").unwrap().data.len(), 12);
    let err = decode(&bytes, 2, "a.png").unwrap_err().to_string();
    assert!(err.contains("a.png") && err.contains("2 channels"), "{err}");
}

/// A 2x2 gray PNG whose header claims `w` x `h` (its IHDR checksum fixed up).
fn png_claiming(w: u32, h: u32) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.png");
    write_png(&path);
    let mut png = std::fs::read(&path).unwrap();
    // Signature (8), IHDR length and type (8), then width and height; the CRC covers type + data.
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&png[12..29]);
    png[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    png
}

#[test]
fn png_headers_claiming_huge_images_are_refused_before_allocating() {
    // 947 GB of pixels from a few bytes once aborted the process on allocation.
    let err = decode(&png_claiming(1 << 20, 1 << 20), 3, "bomb.png")
        .unwrap_err()
        .to_string();
    assert!(err.contains("bomb.png") && err.contains("pixels"), "{err}");
    assert!(decode(&png_claiming(2, 2), 1, "ok.png").is_ok());
}

#[test]
fn decode_crash_inputs_are_refused() {
    let inputs = crash_inputs("decode");
    assert!(!inputs.is_empty());
    for (name, bytes) in inputs {
        for chans in [1, 3] {
            let err = decode(&bytes, chans, &name).unwrap_err().to_string();
            assert!(err.contains(&name), "{err}");
        }
    }
}
