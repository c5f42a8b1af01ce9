//! Tar archives: `TarDataset::open` memory-maps the file and indexes it (truncated archives,
//! overlapping members, huge sizes, long names), then every member is decoded.
use kiln_train::data::TarDataset;

/// Reads `data` as a `.tar` file.
pub fn run(data: &[u8]) {
    crate::tolerate_decoder_panics();
    let path = crate::scratch::write("fuzz.tar", data);
    if let Ok(ds) = TarDataset::open(&path, None, 3) {
        crate::idx::use_dataset(&ds);
    }
}
