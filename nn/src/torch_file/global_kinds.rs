//! The globals a torch file may name (allow-listed reconstructors) and the storage classes it may
//! hold: names only; what calling one builds is in globals.rs.

use kiln_engine::DType;

/// A global the file may name, and what calling it builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Global {
    /// `collections.OrderedDict`: a dict.
    OrderedDict,
    /// `builtins.set` / `builtins.frozenset`.
    Set,
    /// `argparse.Namespace` (timm's `args`).
    Namespace,
    /// `torch.device('cuda', 0)`: kept as the string `cuda:0`.
    Device,
    /// `torch.Size`: a tuple.
    Size,
    /// `_codecs.encode(str, 'latin1')`: how protocol 2 pickles `bytes`.
    Encode,
    /// `builtins.bytearray`.
    ByteArray,
    /// `torch._utils._rebuild_tensor` / `_rebuild_tensor_v2`: a tensor from a storage.
    RebuildTensor,
    /// `torch._utils._rebuild_parameter` / `_rebuild_parameter_with_state`: a parameter's data.
    RebuildParameter,
    /// A storage class (`torch.FloatStorage`, ...), named in a storage's persistent id.
    Storage(StorageType),
}

/// A storage class's element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StorageType {
    /// One kiln reads.
    Known(DType),
    /// One kiln does not read (int16, int8, complex, quantized): its class name and element
    /// size in bytes.
    Unsupported(&'static str, usize),
}

impl StorageType {
    /// Bytes per element.
    pub fn elem_size(self) -> usize {
        match self {
            StorageType::Known(d) => d.size_in_bytes(),
            StorageType::Unsupported(_, size) => size,
        }
    }
}
