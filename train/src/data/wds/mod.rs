//! WebDataset: local tar shards streamed as timm's `reader_wds` reads them.
mod braces;
mod dataset;
mod info;
mod keys;
mod sample;
mod shard;
mod shuffle;
mod stream;

pub use braces::expand_urls;
pub use dataset::{WdsDataset, WdsOptions, SAMPLE_INITIAL_SIZE, SAMPLE_SHUFFLE_SIZE};
pub use info::{load_info, parse_split_info, SplitInfo};
pub use keys::{Label, SampleKeys, DEFAULT_INPUT_KEY};
pub use sample::WdsSample;
pub use shard::read_shard;
pub use shuffle::{shuffled, ShuffleBuffer};
pub use stream::{WorkerStream, SHARD_SHUFFLE_INITIAL, SHARD_SHUFFLE_SIZE};
