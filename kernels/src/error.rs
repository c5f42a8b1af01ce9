//! The kernels crate's one error type.

/// What can go wrong turning a kernel module into PTX.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// libnvrtc could not be loaded.
    #[error("NVRTC (libnvrtc.so) was not found on LD_LIBRARY_PATH; scripts/install-nvrtc.sh installs the pinned 13.0 wheels")]
    NoNvrtc,
    /// NVRTC rejected the source.
    #[error("NVRTC could not compile kernels/cuda/{file} ({options}):\n{log}")]
    Compile {
        /// The module's file name.
        file: String,
        /// The options it was compiled with.
        options: String,
        /// NVRTC's log.
        log: String,
    },
    /// An NVRTC call other than the compile itself failed.
    #[error("NVRTC failed on kernels/cuda/{file}: {msg}")]
    Nvrtc {
        /// The module's file name.
        file: String,
        /// What failed.
        msg: String,
    },
    /// A driver call (module load, launch) failed.
    #[error("CUDA launch failed: {0}")]
    Launch(String),
    /// No module has this name.
    #[error("no kernel module named {0:?}")]
    UnknownModule(String),
    /// The scratch allocator the engine installed failed (its own error inside).
    #[error("scratch memory: {0}")]
    Scratch(Box<dyn std::error::Error + Send + Sync>),
}

/// Result with the kernels crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
