//! Datasets: the `Dataset` trait, IDX (MNIST), image folders (single- and multi-label), tar
//! archives, webdataset shards (streamed), Hugging Face datasets cache files, decoding, and
//! writing a dataset as a JPEG folder.
mod classes;
mod dataset;
mod decode;
mod folder;
pub mod hfds;
mod idx;
mod image;
mod jpeg_folder;
mod multi_label;
mod source;
mod tar;
pub mod wds;

pub use classes::{class_map_sorted, load_class_map, natural_cmp, ClassMap};
pub use dataset::{Dataset, Sample};
pub use decode::decode;
pub(crate) use decode::panic_text;
pub use folder::{is_image, ImageFolder, IMAGE_EXTENSIONS};
pub use idx::IdxDataset;
pub use image::Image;
pub use jpeg_folder::{write_jpeg_folder, JpegFolder};
pub use multi_label::{find_label_file, read_label_file, LabelRow, MultiLabelFolder, LABEL_FILES};
pub use source::Source;
pub use tar::TarDataset;
