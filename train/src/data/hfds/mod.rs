//! Hugging Face datasets (`--dataset hfds/NAME`): a split read offline from the `datasets`
//! cache's Arrow files, as timm's `reader_hfds` reads it.
mod cache;
mod dataset;
mod flatbuf;
mod ipc;

pub use cache::{find_dataset, split_files, DatasetInfo};
pub use dataset::{
    index_file, HfdsDataset, HfdsOptions, HfdsRow, DEFAULT_IMAGE_KEY, DEFAULT_LABEL_KEY,
};
pub use ipc::{Batch, Field, Kind, Schema, Stream};
