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

/// `v` widened to f64, the precision the CPU kernels accumulate sums in.
#[inline(always)]
pub(crate) fn f64_of<T: Real>(v: T) -> f64 {
    v.to_f64().unwrap_or(f64::NAN)
}

/// Minimum elements per parallel task: below this, rayon's overhead outweighs the work.
pub const PAR_GRAIN: usize = 1 << 14;

/// Σ over items 0..n, in parallel and deterministically: one contiguous range of items per
/// thread, each added in order into an accumulator of its own (`zero`, then `add(acc, item)`),
/// and the accumulators merged in range order. rayon's `fold`/`reduce` regroup a sum as work is
/// stolen, so float sums (weight gradients, BN statistics) would differ from run to run in
/// their last bits; here the same thread count always gives the same bits, which exact resume
/// needs.
pub fn sum_in_ranges<A: Send>(
    n: usize,
    zero: impl Fn() -> A + Sync,
    add: impl Fn(&mut A, usize) + Sync,
    merge: impl Fn(&mut A, A),
) -> A {
    use rayon::prelude::*;
    let ranges = rayon::current_num_threads().clamp(1, n.max(1));
    let per = n.div_ceil(ranges);
    let parts: Vec<A> = (0..ranges)
        .into_par_iter()
        .map(|r| {
            let mut acc = zero();
            (r * per..((r + 1) * per).min(n)).for_each(|i| add(&mut acc, i));
            acc
        })
        .collect();
    merge_in_order(parts, zero, merge)
}

/// The parts merged left to right (`zero()` when there are none).
pub fn merge_in_order<A>(parts: Vec<A>, zero: impl Fn() -> A, merge: impl Fn(&mut A, A)) -> A {
    let mut parts = parts.into_iter();
    let mut total = parts.next().unwrap_or_else(zero);
    parts.for_each(|p| merge(&mut total, p));
    total
}
