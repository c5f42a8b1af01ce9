//! Driver functions cudarc 0.19 can look up that the emulator does not implement: each
//! returns `CUDA_ERROR_NOT_SUPPORTED` and names itself on stderr the first time it is called.

use std::sync::atomic::{AtomicBool, Ordering};

use super::code;

/// Prints `name` once (per `flag`) and returns `CUDA_ERROR_NOT_SUPPORTED`.
fn refuse(name: &str, flag: &AtomicBool) -> u32 {
    if !flag.swap(true, Ordering::Relaxed) {
        eprintln!("kiln-cuda-emu: {name} is not supported; returning CUDA_ERROR_NOT_SUPPORTED");
    }
    code::NOT_SUPPORTED
}

/// Defines each named function with no parameters: under the C calling convention the
/// caller's arguments are simply ignored.
macro_rules! unsupported {
    ($($name:ident),* $(,)?) => {$(
        #[doc = concat!("`", stringify!($name), "`: not supported.")]
        #[no_mangle]
        pub extern "C" fn $name() -> u32 {
            static SEEN: AtomicBool = AtomicBool::new(false);
            refuse(stringify!($name), &SEEN)
        }
    )*};
}

unsupported!(
    cuCtxCreate_v3,
    cuCtxCreate_v4,
    cuCtxDestroy_v2,
    cuCtxGetCacheConfig,
    cuCtxGetLimit,
    cuCtxSetCacheConfig,
    cuCtxSetFlags,
    cuCtxSetLimit,
    cuDestroyExternalMemory,
    cuDeviceGetDefaultMemPool,
    cuDeviceGetMemPool,
    cuDeviceSetMemPool,
    cuExternalMemoryGetMappedBuffer,
    cuGetExportTable,
    cuGraphClone,
    cuImportExternalMemory,
    cuLaunchCooperativeKernel,
    cuLaunchKernelEx,
    cuMemAdvise_v2,
    cuMemAllocFromPoolAsync,
    cuMemAllocManaged,
    cuMemPoolCreate,
    cuMemPoolDestroy,
    cuMemPoolGetAttribute,
    cuMemPoolSetAttribute,
    cuMemPoolTrimTo,
    cuMemPrefetchAsync_v2,
    cuOccupancyAvailableDynamicSMemPerBlock,
    cuOccupancyMaxActiveBlocksPerMultiprocessor,
    cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags,
    cuOccupancyMaxActiveClusters,
    cuOccupancyMaxPotentialBlockSize,
    cuOccupancyMaxPotentialBlockSizeWithFlags,
    cuOccupancyMaxPotentialClusterSize,
    cuProfilerStart,
    cuProfilerStop,
    cuStreamAttachMemAsync,
);
