//! kiln-train's one error type.
use std::path::PathBuf;

/// Everything that can go wrong in kiln-train, naming the file or setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // === Files ===
    /// A file or folder could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file or folder could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The path that failed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The data folder does not exist.
    #[error("data folder {0} does not exist (hint: check --data-dir)")]
    MissingDataDir(PathBuf),
    /// A class folder holds no image.
    #[error("class folder {0} holds no image file (jpg, jpeg, png)")]
    EmptyClass(PathBuf),
    /// The dataset holds no sample.
    #[error("no sample found in {0}")]
    EmptyDataset(PathBuf),
    /// A class-map file names a class twice, or a folder names a class the map lacks.
    #[error("class map {path}: {msg}")]
    ClassMap {
        /// The class-map file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },

    // === Formats ===
    /// An IDX file (MNIST) is malformed.
    #[error("IDX file {path}: {msg}")]
    Idx {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A tar archive is malformed.
    #[error("tar archive {path}: {msg}")]
    Tar {
        /// The archive.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A webdataset (its info file, split or shards) is malformed or does not fit the run.
    #[error("webdataset {path}: {msg}")]
    Wds {
        /// The info file, shard or dataset folder at fault.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// An Arrow IPC stream file (a Hugging Face datasets cache file) is malformed or lacks a column.
    #[error("Arrow file {path}: {msg}")]
    Arrow {
        /// The Arrow file.
        path: PathBuf,
        /// What is wrong, with the byte offset or row where it applies.
        msg: String,
    },
    /// A Hugging Face datasets cache folder (its layout, dataset_info.json or split) is unusable.
    #[error("Hugging Face dataset {path}: {msg}")]
    Hfds {
        /// The cache folder or info file at fault.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A CSV file (a run's summary.csv) is malformed.
    #[error("CSV file {path}, line {line}: {msg}")]
    Csv {
        /// The file.
        path: PathBuf,
        /// The line at fault (1 = header).
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// A multi-label file (`labels.csv` / `labels.json`) is malformed or names what the
    /// folder or the classes lack.
    #[error("label file {path}: {msg}")]
    LabelFile {
        /// The label file.
        path: PathBuf,
        /// Where (line or entry) and what is wrong.
        msg: String,
    },
    /// An image could not be decoded.
    #[error("cannot decode image {path}: {msg}")]
    Decode {
        /// The file (or tar member) at fault.
        path: String,
        /// The decoder's message.
        msg: String,
    },
    /// An image could not be encoded (save_images).
    #[error("cannot encode PNG {path}: {msg}")]
    Encode {
        /// The output file.
        path: PathBuf,
        /// The encoder's message.
        msg: String,
    },

    // === Settings ===
    /// A setting (augmentation string, mixup mode, ...) is invalid.
    #[error("invalid {what} {value:?}: {hint}")]
    Config {
        /// Which setting.
        what: &'static str,
        /// Its value.
        value: String,
        /// What would be valid.
        hint: String,
    },
    /// A worker thread died.
    #[error("loader worker died: {0}")]
    Worker(String),

    // === Training ===
    /// An engine op failed.
    #[error(transparent)]
    Engine(#[from] kiln_engine::Error),
    /// Building a model or loading its weights failed.
    #[error(transparent)]
    Nn(#[from] kiln_nn::Error),
    /// A command-line flag or config-file value is invalid.
    #[error("{flag}: {msg}")]
    Flag {
        /// The flag or config key at fault.
        flag: String,
        /// What is wrong and what is accepted.
        msg: String,
    },
    /// A checkpoint could not be written or resumed from.
    #[error("checkpoint {path}: {msg}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What went wrong.
        msg: String,
    },
    /// A loss was given logits or targets it cannot take.
    #[error("{loss}: {msg}")]
    Loss {
        /// The loss (timm's class name).
        loss: &'static str,
        /// What is wrong with which shape.
        msg: String,
    },
    /// Distributed training failed: a launcher variable, the rendezvous or a collective.
    #[error("distributed: {0}")]
    Dist(String),
    /// The loss became NaN or infinite (under `--nan-policy stop`).
    #[error("{0}")]
    NonFiniteLoss(Box<crate::trainer::NonFinite>),
}

/// kiln-train's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A flag's value refused, with why (`--flag: msg`).
    pub fn flag(flag: &str, msg: impl Into<String>) -> Self {
        Error::Flag {
            flag: flag.into(),
            msg: msg.into(),
        }
    }

    /// Wraps an I/O error with the path that caused it.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Wraps an I/O error met writing `path`.
    pub fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Write {
            path: path.into(),
            source,
        }
    }

    /// An invalid setting.
    pub fn config(what: &'static str, value: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Config {
            what,
            value: value.into(),
            hint: hint.into(),
        }
    }
}
