//! `--class-map` files: one class per line.
use kiln_train::data::load_class_map;

/// Reads `data` as a class-map file.
pub fn run(data: &[u8]) {
    let path = crate::scratch::write("fuzz-classes.txt", data);
    if let Ok(map) = load_class_map(&path) {
        let mut seen: Vec<usize> = map.values().copied().collect();
        seen.sort_unstable();
        assert!(seen.iter().enumerate().all(|(i, &v)| i == v));
    }
}
