//! The cuDNN library as both convolution paths use it: loading and checking it (version, entry
//! points, sub-libraries), its errors, the workspace limit of the benchmark mode, and binding a
//! handle to the calling thread's stream.

use super::vendor::{call_stream, OnStream, StreamHandle};
use super::CudaDevice;
use crate::{Error, Result};
use cudarc::cudnn::result::{self, CudnnError};
use cudarc::cudnn::sys;
use cudarc::driver::sys::CUstream;
use std::ffi::c_void;

/// The cuDNN entry points the legacy path calls; a library lacking one is not used.
const SYMBOLS: [&str; 26] = [
    "cudnnGetVersion",
    "cudnnCnnVersionCheck",
    "cudnnOpsVersionCheck",
    "cudnnCreate",
    "cudnnDestroy",
    "cudnnSetStream",
    "cudnnCreateTensorDescriptor",
    "cudnnSetTensor4dDescriptor",
    "cudnnDestroyTensorDescriptor",
    "cudnnCreateFilterDescriptor",
    "cudnnSetFilter4dDescriptor",
    "cudnnDestroyFilterDescriptor",
    "cudnnCreateConvolutionDescriptor",
    "cudnnSetConvolution2dDescriptor",
    "cudnnSetConvolutionGroupCount",
    "cudnnSetConvolutionMathType",
    "cudnnDestroyConvolutionDescriptor",
    "cudnnGetConvolutionForwardAlgorithm_v7",
    "cudnnGetConvolutionBackwardDataAlgorithm_v7",
    "cudnnGetConvolutionBackwardFilterAlgorithm_v7",
    "cudnnFindConvolutionForwardAlgorithmEx",
    "cudnnFindConvolutionBackwardDataAlgorithmEx",
    "cudnnFindConvolutionBackwardFilterAlgorithmEx",
    "cudnnConvolutionForward",
    "cudnnConvolutionBackwardData",
    "cudnnConvolutionBackwardFilter",
];

/// The oldest cuDNN whose ABI matches cudarc's bindings (9.0).
const MIN_VERSION: usize = 90000;

/// The largest workspace the benchmark mode lets an algorithm ask for.
pub(super) const MAX_BENCH_WORKSPACE: usize = 1 << 30;

/// A cuDNN status as kiln's error, naming the call.
pub(super) fn cudnn_err(what: &str, e: CudnnError) -> Error {
    Error::Cuda(format!("cuDNN {what}: {e}"))
}

/// Checks that a usable cuDNN loads: 9.x, with every entry point kiln calls and the convolution
/// sub-libraries; Err says why not.
pub(super) fn load() -> std::result::Result<(), String> {
    require_symbols(&SYMBOLS)?;
    let version = result::get_version();
    if version < MIN_VERSION {
        return Err(format!("cuDNN {version} is older than 9.0"));
    }
    // SAFETY: plain queries whose symbols exist (checked above): they load the convolution and
    // ops sub-libraries and compare their versions with the main library's.
    let checks = unsafe { [sys::cudnnCnnVersionCheck(), sys::cudnnOpsVersionCheck()] };
    for status in checks {
        status.result().map_err(|e| {
            format!(
                "cuDNN sub-libraries: {e}; loaded: {} (cudarc opens the unversioned libcudnn.so \
                 first: put one cuDNN's folder, with a libcudnn.so link, first on LD_LIBRARY_PATH)",
                mapped_cudnn_files().join(", ")
            )
        })?;
    }
    Ok(())
}

/// Err names the first of `names` that `has` says is missing.
fn check_symbols(names: &[&str], has: impl Fn(&str) -> bool) -> std::result::Result<(), String> {
    match names.iter().find(|name| !has(name)) {
        Some(name) => Err(format!("libcudnn lacks {name}")),
        None => Ok(()),
    }
}

/// Checks that the loaded libcudnn exports every one of `names`; Err names one it lacks.
pub(super) fn require_symbols(names: &[&str]) -> std::result::Result<(), String> {
    // SAFETY: only tries to open the shared library by its candidate names.
    if !unsafe { sys::is_culib_present() } {
        return Err("libcudnn was not found on the library path".into());
    }
    // SAFETY: the library opens (checked above), so `culib` returns it instead of panicking.
    let lib = unsafe { sys::culib() };
    // SAFETY: symbol lookups; the pointers are neither called nor kept.
    check_symbols(names, |name| {
        unsafe { lib.get::<*const c_void>(name.as_bytes()) }.is_ok()
    })
}

/// The cuDNN files this process has mapped, from /proc/self/maps (empty where it cannot be read).
fn mapped_cudnn_files() -> Vec<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let mut files: Vec<String> = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .filter(|path| path.contains("libcudnn"))
        .map(String::from)
        .collect();
    files.dedup();
    files
}

/// A raw cuDNN handle, for [`OnStream`].
pub(super) struct DnnHandle(sys::cudnnHandle_t);

impl StreamHandle for DnnHandle {
    const NAME: &'static str = "cuDNN";

    unsafe fn set_stream(&mut self, stream: CUstream) -> Result<()> {
        // SAFETY: the caller's contract (a live handle and stream of one context).
        unsafe { result::set_stream(self.0, stream as sys::cudaStream_t) }
            .map_err(|e| cudnn_err("cudnnSetStream", e))
    }
}

/// Binds `h`, the handle of `dev`'s `Dnn` (which the caller holds locked until the guard
/// drops), to this thread's stream on `dev` (a capture's, while capturing) until the guard
/// drops; cuDNN takes workspaces per call.
pub(super) fn on_call_stream(
    dev: &CudaDevice,
    h: sys::cudnnHandle_t,
) -> Result<OnStream<DnnHandle>> {
    let home = dev.compute_stream().cu_stream();
    // SAFETY: the handle lives as long as the device's Dnn, which the caller holds locked over
    // the call; both streams belong to the device's context, and a capture's outlives its
    // capture.
    unsafe { OnStream::bind(DnnHandle(h), home, call_stream(dev), None) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The symbol check names the first missing entry point.
    #[test]
    fn symbol_check_names_the_missing_one() {
        let has = |name: &str| name != "cudnnBackendExecute";
        assert_eq!(check_symbols(&["cudnnCreate", "cudnnDestroy"], has), Ok(()));
        assert_eq!(
            check_symbols(&["cudnnCreate", "cudnnBackendExecute", "x"], has),
            Err("libcudnn lacks cudnnBackendExecute".into())
        );
    }
}
