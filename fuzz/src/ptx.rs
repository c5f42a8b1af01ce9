//! PTX text through the CUDA emulator's `cuModuleLoadData`: the parser, the decoder and the
//! placing of module variables in device memory, then `cuModuleUnload`.
use cuda::driver::module::{cuModuleLoadData, cuModuleUnload};
use std::ffi::{c_void, CString};

/// Loads `data` as a PTX module image and unloads it again.
pub fn run(data: &[u8]) {
    let Ok(image) = CString::new(data) else {
        return; // an image is NUL-terminated text: inner NULs end it early, as in the driver
    };
    let mut module: *mut c_void = std::ptr::null_mut();
    // SAFETY: `module` is a valid place for the handle and `image` is NUL-terminated.
    let code = unsafe { cuModuleLoadData(&mut module, image.as_ptr().cast()) };
    if code == 0 {
        cuModuleUnload(module);
    }
}
