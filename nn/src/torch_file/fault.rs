//! Why a torch file cannot be read ([`Fault`]), before the file's path is known.

use crate::Error;
use std::path::Path;

/// Why a torch file cannot be read.
#[derive(Debug)]
pub(super) enum Fault {
    /// It names a global kiln does not accept.
    Refused(String),
    /// It is malformed or holds what kiln does not read.
    Bad(String),
}

/// What a step of reading returns.
pub(super) type Res<T> = std::result::Result<T, Fault>;

/// A malformed input's fault.
pub(super) fn bad(msg: impl Into<String>) -> Fault {
    Fault::Bad(msg.into())
}

impl Fault {
    /// The fault with what was being read in front.
    pub(super) fn context(self, what: &str) -> Fault {
        match self {
            Fault::Bad(msg) => Fault::Bad(format!("{what}: {msg}")),
            refused => refused,
        }
    }

    /// The error naming `path`.
    pub(super) fn at(self, path: &Path) -> Error {
        let path = path.display().to_string();
        match self {
            Fault::Refused(global) => Error::UnsafePickle { path, global },
            Fault::Bad(msg) => Error::File { path, msg },
        }
    }
}

impl From<kiln_engine::Error> for Fault {
    fn from(e: kiln_engine::Error) -> Fault {
        Fault::Bad(e.to_string())
    }
}
