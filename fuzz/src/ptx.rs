//! PTX text through the CUDA emulator's `cuModuleLoadData`: the parser, the decoder and the
//! placing of module variables in device memory, then `cuModuleUnload`.
use cuda::driver::context::{cuCtxSetCurrent, cuDevicePrimaryCtxRetain};
use cuda::driver::module::{cuModuleLoadData, cuModuleUnload};
use std::ffi::{c_void, CString};

/// Loads `data` as a PTX module image and unloads it again.
pub fn run(data: &[u8]) {
    let Ok(image) = CString::new(data) else {
        return; // an image is NUL-terminated text: inner NULs end it early, as in the driver
    };
    // A module loads into the calling thread's current context: device 0's.
    let mut ctx: *mut c_void = std::ptr::null_mut();
    // SAFETY: `ctx` is a valid place for the handle.
    assert_eq!(unsafe { cuDevicePrimaryCtxRetain(&mut ctx, 0) }, 0);
    assert_eq!(cuCtxSetCurrent(ctx), 0);
    let mut module: *mut c_void = std::ptr::null_mut();
    // SAFETY: `module` is a valid place for the handle and `image` is NUL-terminated.
    let code = unsafe { cuModuleLoadData(&mut module, image.as_ptr().cast()) };
    if code == 0 {
        cuModuleUnload(module);
    }
}
