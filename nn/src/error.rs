//! The nn crate's one error type.

/// Everything model building and weight loading can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An engine op failed.
    #[error(transparent)]
    Engine(#[from] kiln_engine::Error),
    /// `create_model` was given a name no model is registered under.
    #[error("unknown model '{name}'{}", suggest(.suggestions))]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// Registered names close to it.
        suggestions: Vec<String>,
    },
    /// A model argument out of range.
    #[error("{model}: {msg}")]
    BadArgument {
        /// The model or layer.
        model: String,
        /// What is wrong.
        msg: String,
    },
    /// A state dict whose keys do not match the model's.
    #[error("state dict does not match the model: missing keys {missing:?}, unexpected keys {unexpected:?}")]
    KeyMismatch {
        /// Model tensors the file lacks.
        missing: Vec<String>,
        /// File tensors the model lacks.
        unexpected: Vec<String>,
    },
    /// A state-dict tensor with the wrong shape.
    #[error("state dict tensor '{key}' has shape {got:?}, the model expects {expected:?}")]
    ShapeMismatch {
        /// The tensor's name.
        key: String,
        /// The model's shape.
        expected: Vec<usize>,
        /// The file's shape.
        got: Vec<usize>,
    },
    /// A pickle (in a file `torch.save` wrote) names a global kiln does not accept: loading it
    /// with torch would run that code.
    #[error("refusing pickle global '{global}' in {path}: only tensors and containers are read")]
    UnsafePickle {
        /// The file at fault.
        path: String,
        /// The global's `module.name`.
        global: String,
    },
    /// A model name with a tag its architecture does not have.
    #[error("{arch} has no pretrained tag '{tag}' (known: {})", .known.join(", "))]
    UnknownTag {
        /// The architecture.
        arch: String,
        /// The tag asked for.
        tag: String,
        /// Its tags, timm's default first.
        known: Vec<String>,
    },
    /// Pretrained weights (or a hub model's config) missing from the Hugging Face hub cache.
    #[error("{repo}{} is not in the Hugging Face hub cache {cache}: looked for {}; download it with {}", at_revision(.revision), .looked.join(", "), download(.repo, .revision))]
    NotCached {
        /// The hub repo, `org/name`.
        repo: String,
        /// Its revision, when not `main`.
        revision: Option<String>,
        /// The cache folder and the setting that chose it.
        cache: String,
        /// Every path looked at.
        looked: Vec<String>,
    },
    /// A model cannot be written as ONNX (an op, an opset, a dtype).
    #[error("ONNX export: {0}")]
    Export(String),
    /// An export option the model's forward does not allow (`option`: `dynamic_size` or
    /// `training`, as the flags are named), with the reason.
    #[error("ONNX export with {option}: {msg}")]
    ExportOption {
        /// The option refused.
        option: &'static str,
        /// What in the forward stands against it.
        msg: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {msg}")]
    File {
        /// The file at fault.
        path: String,
        /// What went wrong.
        msg: String,
    },
}

fn suggest(s: &[String]) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", s.join(", "))
    }
}

fn at_revision(revision: &Option<String>) -> String {
    revision
        .as_ref()
        .map(|r| format!("@{r}"))
        .unwrap_or_default()
}

/// The commands that download `repo` into the hub cache (`hf` since huggingface_hub 1.0).
fn download(repo: &str, revision: &Option<String>) -> String {
    let rev = revision
        .as_ref()
        .map(|r| format!(" --revision {r}"))
        .unwrap_or_default();
    format!("`hf download {repo}{rev}` (or `huggingface-cli download {repo}{rev}`)")
}

/// The nn crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
