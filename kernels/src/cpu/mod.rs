//! CPU twins of the CUDA kernels, one module per family. Kernels take slices, shapes and strides;
//! they are generic over [`Real`] so gradient checks can run them in f64.

pub mod amp;
pub mod attention;
pub mod bce;
pub mod bn_relu;
pub mod copy;
pub mod depthwise;
pub mod elementwise;
pub mod fast_math;
pub mod grad_norm;
pub mod im2col;
pub mod layer_norm;
pub mod layout;
pub mod optim;
pub mod philox;
pub mod pool;
pub mod reduce;
pub mod softmax_xent;
pub mod squeeze_excite;

/// A floating-point element the CPU kernels compute in (f32, or f64 for gradient checks).
pub trait Real:
    num_traits::Float
    + num_traits::FromPrimitive
    + std::iter::Sum
    + std::ops::AddAssign
    + std::ops::SubAssign
    + std::ops::MulAssign
    + Default
    + Send
    + Sync
    + std::fmt::Debug
    + bytemuck::Pod
    + 'static
{
}
impl Real for f32 {}
impl Real for f64 {}

/// Converts an f64 constant into `T`.
#[inline(always)]
pub fn c<T: Real>(v: f64) -> T {
    T::from_f64(v).unwrap_or_else(T::nan)
}

/// Minimum elements per parallel task: below this, rayon's overhead outweighs the work.
pub const PAR_GRAIN: usize = 1 << 14;
