//! Typed launchers for the CUDA modules, one family a file (the host side of `kernels/cuda/*.cu`).
//! They take raw device pointers (`u64`), shapes and strides on a stream; tensors, allocation and
//! dtype dispatch belong to the engine.

pub mod amp;
pub mod attention;
pub mod bce;
pub mod bn_relu;
pub mod conv;
pub mod depthwise;
pub mod elementwise;
pub mod gemm;
pub mod gemm_tc;
pub mod grad_norm;
pub mod layer_norm;
pub mod layout;
pub mod optim;
pub mod pool;
pub mod reduce;
pub mod rng;
pub mod softmax_xent;
pub mod squeeze_excite;

use crate::error::{Error, Result};
use crate::registry;
use cudarc::driver::{sys, PushKernelArg};
use cudarc::driver::{CudaFunction, CudaModule, CudaStream, DeviceRepr, LaunchArgs, LaunchConfig};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A device pointer.
pub type DevPtr = u64;

/// The most dimensions a strided kernel takes (the prelude's `KILN_MAX_DIMS`).
pub const MAX_DIMS: usize = 6;

/// A shape, as the prelude's `Shape`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Shape {
    d: [i64; MAX_DIMS],
    rank: i32,
}

/// Element strides of one operand, as the prelude's `Strides`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Strides {
    s: [i64; MAX_DIMS],
}

// SAFETY: plain-old-data with the C layout the kernels declare.
unsafe impl DeviceRepr for Shape {}
// SAFETY: as above.
unsafe impl DeviceRepr for Strides {}

impl Shape {
    /// `dims` as a kernel argument; more than [`MAX_DIMS`] is an error.
    pub fn new(dims: &[usize]) -> Result<Shape> {
        let mut s = Shape {
            rank: dims.len() as i32,
            ..Default::default()
        };
        copy_dims(&mut s.d, dims)?;
        Ok(s)
    }
}

impl Strides {
    /// `strides` as a kernel argument.
    pub fn new(strides: &[usize]) -> Result<Strides> {
        let mut s = Strides::default();
        copy_dims(&mut s.s, strides)?;
        Ok(s)
    }
}

fn copy_dims(dst: &mut [i64; MAX_DIMS], src: &[usize]) -> Result<()> {
    if src.len() > MAX_DIMS {
        return Err(Error::Launch(format!(
            "{} dimensions after coalescing; CUDA kernels take at most {MAX_DIMS}",
            src.len()
        )));
    }
    for (d, &s) in dst.iter_mut().zip(src) {
        *d = s as i64;
    }
    Ok(())
}

/// One kernel argument: any plain value (`u64` device pointers, sizes, structs).
pub trait Arg {
    /// Pushes the value onto a launch.
    fn push<'a>(&'a self, b: &mut LaunchArgs<'a>);
}

impl<T: DeviceRepr> Arg for T {
    fn push<'a>(&'a self, b: &mut LaunchArgs<'a>) {
        b.arg(self);
    }
}

/// Loads modules for one device on first use and launches their kernels on one stream.
pub struct Kernels {
    stream: Arc<CudaStream>,
    arch: u32,
    modules: Mutex<HashMap<&'static str, Arc<CudaModule>>>,
}

impl std::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Kernels(sm_{})", self.arch)
    }
}

impl Kernels {
    /// Kernels for the device of `stream`, compiled for its compute capability.
    pub fn new(stream: Arc<CudaStream>) -> Result<Kernels> {
        let (major, minor) = stream.context().compute_capability().map_err(driver)?;
        Ok(Kernels {
            stream,
            arch: (major * 10 + minor) as u32,
            modules: Mutex::new(HashMap::new()),
        })
    }

    /// The stream kernels run on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// The device's compute capability as `major*10 + minor`.
    pub fn arch(&self) -> u32 {
        self.arch
    }

    /// Kernel `name` of module `file`, compiling and loading the module on first use.
    pub fn func(&self, file: &'static str, name: &str) -> Result<CudaFunction> {
        let module = {
            let mut modules = self.modules.lock().unwrap_or_else(|e| e.into_inner());
            match modules.get(file) {
                Some(m) => m.clone(),
                None => {
                    let ptx = registry::module(file)?.ptx(self.arch)?;
                    let m = self
                        .stream
                        .context()
                        .load_module(ptx.into())
                        .map_err(|e| Error::Launch(format!("loading {file}: {e:?}")))?;
                    modules.insert(file, m.clone());
                    m
                }
            }
        };
        module
            .load_function(name)
            .map_err(|e| Error::Launch(format!("{file} has no kernel {name}: {e:?}")))
    }

    /// Launches `file`'s kernel `name` with `args`.
    ///
    /// # Safety
    /// `args` must match the kernel's parameters in number, order and type, and every pointer
    /// must address device memory large enough for what the kernel touches under `cfg`.
    pub unsafe fn launch(
        &self,
        file: &'static str,
        name: &str,
        cfg: LaunchConfig,
        args: &[&dyn Arg],
    ) -> Result<()> {
        let f = self.func(file, name)?;
        let mut b = self.stream.launch_builder(&f);
        for a in args {
            a.push(&mut b);
        }
        // SAFETY: the caller guarantees the arguments match the kernel.
        unsafe { b.launch(cfg) }
            .map(|_| ())
            .map_err(|e| Error::Launch(format!("{file}:{name}: {e:?}")))
    }
}

/// A 1-d grid of 256-thread blocks covering `n` elements (grid-stride kernels cap the blocks).
pub fn grid_1d(n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(256).clamp(1, 65535 * 4) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn driver(e: cudarc::driver::DriverError) -> Error {
    Error::Launch(format!("{e:?}"))
}

/// Whether `libcuda` can be loaded (checked before any driver call).
pub fn driver_present() -> bool {
    // SAFETY: only tries to dlopen the library.
    unsafe { sys::is_culib_present() }
}
