//! Shared test harness: compiles CUDA C++ with NVRTC and runs it through cudarc on the
//! emulator; returns `None` (after printing "skipped: ...") when either library is missing.
#![allow(dead_code)]

use std::ffi::{c_char, CStr};
use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream, DriverError};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions};

/// A context and stream on the emulated device.
pub struct Gpu {
    /// The primary context.
    pub ctx: Arc<CudaContext>,
    /// Its default stream.
    pub stream: Arc<CudaStream>,
}

type LastError = unsafe extern "C" fn() -> *const c_char;

/// The emulator, or `None` with a "skipped" line saying why.
pub fn gpu() -> Option<Gpu> {
    // SAFETY: these only try to dlopen the libraries.
    let (cuda, nvrtc) = unsafe {
        (
            cudarc::driver::sys::is_culib_present(),
            cudarc::nvrtc::sys::is_culib_present(),
        )
    };
    let why = if !cuda {
        Some("libcuda.so not found (run scripts/test.sh, which builds kiln-cuda-emu and sets LD_LIBRARY_PATH)")
    } else if !nvrtc {
        Some("libnvrtc.so not found (run scripts/install-nvrtc.sh and put its folders on LD_LIBRARY_PATH)")
    } else if last_error_fn().is_none() {
        Some("the libcuda.so on LD_LIBRARY_PATH is not kiln-cuda-emu")
    } else {
        None
    };
    if let Some(why) = why {
        println!("skipped: {why}");
        return None;
    }
    let ctx = CudaContext::new(0).expect("context on the emulator");
    let stream = ctx.default_stream();
    Some(Gpu { ctx, stream })
}

fn last_error_fn() -> Option<LastError> {
    // SAFETY: culib only opens the library; the symbol has the declared signature.
    unsafe {
        let lib = cudarc::driver::sys::culib();
        lib.get::<LastError>(b"kiln_emu_last_error\0")
            .ok()
            .map(|s| *s)
    }
}

/// The emulator's message about the last failed load or launch.
pub fn last_error() -> String {
    let f = last_error_fn().expect("emulator loaded");
    // SAFETY: the emulator returns null or a NUL-terminated string valid until the next failure.
    unsafe {
        let p = f();
        if p.is_null() {
            String::new()
        } else {
            CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}

/// Folder of the CUDA headers (cuda_fp16.h) from the NVRTC wheels.
fn include_dir() -> String {
    concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../.cache/nvidia/nvidia/cu13/include"
    )
    .to_string()
}

impl Gpu {
    /// Compiles `src` for compute_90 and loads it.
    pub fn module(&self, src: &str) -> Arc<CudaModule> {
        let opts = CompileOptions {
            arch: Some("compute_90"),
            include_paths: vec![include_dir()],
            name: Some("kernel.cu".into()),
            ..Default::default()
        };
        let ptx = compile_ptx_with_opts(src, opts).expect("NVRTC compiles the test kernel");
        self.ctx
            .load_module(ptx)
            .expect("the emulator loads the PTX")
    }

    /// Compiles `src` and returns its function `name`.
    pub fn func(&self, src: &str, name: &str) -> CudaFunction {
        self.module(src)
            .load_function(name)
            .expect("function exists")
    }
}

/// Whether a launch failed with the given CUDA error name.
pub fn failed_with(r: Result<(), DriverError>, name: &str) -> bool {
    match r {
        Ok(()) => false,
        Err(e) => format!("{e:?}").contains(name),
    }
}
