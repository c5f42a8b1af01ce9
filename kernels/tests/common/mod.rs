//! Shared harness for kernel tests: loads kiln's modules through the registry and runs them with
//! cudarc on kiln-cuda-emu; returns `None` (after printing "skipped: ...") when either libcuda or
//! libnvrtc is missing.
#![allow(dead_code)]

use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtr, DeviceRepr, ValidAsZeroBits,
};
use kiln_kernels::cuda::{DevPtr, Kernels};
use kiln_kernels::registry;
use std::io::Write;
use std::sync::Arc;

pub mod elem;
pub mod loss;

/// A context and stream on the (emulated) device.
pub struct Gpu {
    /// The primary context.
    pub ctx: Arc<CudaContext>,
    /// Its default stream.
    pub stream: Arc<CudaStream>,
}

/// The device, or `None` with a "skipped" line saying why.
pub fn gpu() -> Option<Gpu> {
    // SAFETY: these only try to dlopen the libraries.
    let (cuda, nvrtc) = unsafe {
        (
            cudarc::driver::sys::is_culib_present(),
            cudarc::nvrtc::sys::is_culib_present(),
        )
    };
    let why = if !cuda {
        Some("libcuda.so not found (scripts/test.sh builds kiln-cuda-emu and sets LD_LIBRARY_PATH)")
    } else if !nvrtc {
        Some("libnvrtc.so not found (scripts/install-nvrtc.sh)")
    } else {
        None
    };
    if let Some(why) = why {
        let _ = writeln!(std::io::stderr(), "skipped: {why}");
        return None;
    }
    let ctx = CudaContext::new(0).expect("a CUDA context");
    let stream = ctx.default_stream();
    Some(Gpu { ctx, stream })
}

impl Gpu {
    /// Kernel `name` of module `file` (e.g. "elementwise.cu"), compiled for compute_90.
    pub fn func(&self, file: &str, name: &str) -> CudaFunction {
        let ptx = registry::module(file)
            .and_then(|m| m.ptx(90))
            .unwrap_or_else(|e| panic!("{e}"));
        self.ctx
            .load_module(ptx.into())
            .unwrap_or_else(|e| panic!("loading {file}: {e:?}"))
            .load_function(name)
            .unwrap_or_else(|e| panic!("{file} has no kernel {name}: {e:?}"))
    }

    /// The typed launchers on this stream.
    pub fn kernels(&self) -> Kernels {
        Kernels::new(self.stream.clone()).expect("kernels")
    }

    /// The device address of `s`, for the launchers.
    pub fn ptr<T>(&self, s: &CudaSlice<T>) -> DevPtr {
        let (p, _sync) = s.device_ptr(&self.stream);
        p
    }

    /// A device copy of `v`.
    pub fn upload<T: DeviceRepr>(&self, v: &[T]) -> CudaSlice<T> {
        self.stream.clone_htod(v).expect("upload")
    }

    /// `n` zeroed device elements.
    pub fn zeros<T: DeviceRepr + ValidAsZeroBits>(&self, n: usize) -> CudaSlice<T> {
        self.stream.alloc_zeros(n).expect("alloc")
    }

    /// The device buffer's contents.
    pub fn download<T: DeviceRepr + Default + Clone>(&self, d: &CudaSlice<T>) -> Vec<T> {
        self.stream.clone_dtoh(d).expect("download")
    }

    /// [`assert_close`] on the contents of the device buffer `got`.
    pub fn assert_close(
        &self,
        what: &str,
        got: &CudaSlice<f32>,
        want: &[f32],
        atol: f32,
        rtol: f32,
    ) {
        assert_close(what, &self.download(got), want, atol, rtol);
    }

    /// The launchers, or `None` (with a "skipped" line) where the device, older than sm_80, has
    /// no tensor-core `what` ("GEMM", "convolution").
    pub fn tensor_core_kernels(&self, what: &str) -> Option<Kernels> {
        let k = self.kernels();
        if k.arch() < 80 {
            eprintln!("skipped: sm_{} has no tensor-core {what}", k.arch());
            return None;
        }
        Some(k)
    }
}

/// The f16 bits of each value, rounded to nearest even.
pub fn f16_bits(v: &[f32]) -> Vec<u16> {
    v.iter()
        .map(|&x| half::f16::from_f32(x).to_bits())
        .collect()
}

/// The bf16 bits of each value, rounded to nearest even.
pub fn bf16_bits(v: &[f32]) -> Vec<u16> {
    v.iter()
        .map(|&x| half::bf16::from_f32(x).to_bits())
        .collect()
}

/// Asserts |a - b| <= atol + rtol·|b| elementwise, naming the first bad index.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], atol: f32, rtol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = g == w || (g - w).abs() <= atol + rtol * w.abs() || (g.is_nan() && w.is_nan());
        assert!(ok, "{what}[{i}]: got {g}, want {w}");
    }
}
