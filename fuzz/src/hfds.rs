//! Hugging Face datasets cache files: an Arrow IPC stream read by `HfdsDataset::open` (the
//! FlatBuffers metadata, schema, record batches, validity bitmaps and offsets, all bounds-checked)
//! from a scratch cache folder, then every row decoded.
use kiln_train::data::hfds::{index_file, HfdsDataset, HfdsOptions};
use kiln_train::data::Dataset;

/// Reads `data` as the one Arrow file of split `train`, its image column `image` and labels
/// `label`; the info file's count is the rows the reader indexes, so a readable stream opens.
pub fn run(data: &[u8]) {
    crate::tolerate_decoder_panics();
    let opts = HfdsOptions::new("train", 3);
    let rows = index_file(data, 0, &opts, None).map_or(0, |r| r.len());
    let dir = crate::scratch::fresh_dir("hfds");
    crate::scratch::write("hfds/fuzz-train.arrow", data);
    let info = serde_json::json!({
        "dataset_name": "fuzz",
        "features": {"image": {"_type": "Image"}, "label": {"_type": "ClassLabel", "names": ["a", "b", "c"]}},
        "splits": {"train": {"name": "train", "num_examples": rows}},
    });
    crate::scratch::write("hfds/dataset_info.json", info.to_string().as_bytes());
    if let Ok(ds) = HfdsDataset::open(&dir, "org/fuzz", &opts) {
        crate::idx::use_dataset(&ds);
        for i in 0..ds.len().min(64) {
            let _ = ds.image_path(i);
        }
    }
}
