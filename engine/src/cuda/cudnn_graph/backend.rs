//! An owned cuDNN backend descriptor (`cudnnBackendCreateDescriptor` ... `Destroy`) with typed
//! attribute setters and getters.

use super::super::cudnn_lib::cudnn_err;
use crate::{Error, Result};
use cudarc::cudnn::sys::{
    self, cudnnBackendAttributeName_t as Name, cudnnBackendAttributeType_t as Type,
    cudnnBackendDescriptorType_t as Kind,
};
use std::ffi::c_void;
use std::ptr::null_mut;

/// The backend-API entry points the graph path calls; a library lacking one is not used for it.
pub(super) const SYMBOLS: [&str; 6] = [
    "cudnnBackendCreateDescriptor",
    "cudnnBackendDestroyDescriptor",
    "cudnnBackendSetAttribute",
    "cudnnBackendGetAttribute",
    "cudnnBackendFinalize",
    "cudnnBackendExecute",
];

/// Whether libcudnn has the backend API here, for the host-side tests (no device needed) that
/// skip without it; prints why not.
#[cfg(test)]
pub(super) fn loaded_for_tests() -> bool {
    let loaded = super::super::cudnn_lib::require_symbols(&SYMBOLS);
    if let Err(why) = &loaded {
        eprintln!("skipped: {why}");
    }
    loaded.is_ok()
}

/// A backend descriptor, destroyed on drop.
pub(super) struct Desc(sys::cudnnBackendDescriptor_t);

/// A plain value cuDNN stores as an attribute element; the size is checked against the type.
pub(super) trait Scalar: Copy + Default {}
impl Scalar for i64 {}
impl Scalar for u32 {}
impl Scalar for f32 {}
impl Scalar for f64 {}
impl Scalar for bool {}

/// The size in bytes of one element of `ty`, for the plain types kiln passes.
fn element_size(ty: Type) -> Option<usize> {
    use Type::*;
    match ty {
        CUDNN_TYPE_INT64 | CUDNN_TYPE_DOUBLE => Some(8),
        CUDNN_TYPE_FLOAT
        | CUDNN_TYPE_DATA_TYPE
        | CUDNN_TYPE_CONVOLUTION_MODE
        | CUDNN_TYPE_GENSTATS_MODE
        | CUDNN_TYPE_HEUR_MODE
        | CUDNN_TYPE_KNOB_TYPE
        | CUDNN_TYPE_NUMERICAL_NOTE => Some(4),
        CUDNN_TYPE_BOOLEAN => Some(1),
        _ => None,
    }
}

fn check_size<T>(ty: Type) -> Result<()> {
    match element_size(ty) {
        Some(n) if n == std::mem::size_of::<T>() => Ok(()),
        _ => Err(Error::Cuda(format!(
            "cuDNN attribute type {ty:?} does not hold {}",
            std::any::type_name::<T>()
        ))),
    }
}

impl Desc {
    /// Creates a descriptor of `kind`.
    pub(super) fn new(kind: Kind) -> Result<Desc> {
        let mut raw = null_mut();
        // SAFETY: cuDNN writes one descriptor handle to `raw`.
        unsafe { sys::cudnnBackendCreateDescriptor(kind, &mut raw) }
            .result()
            .map_err(|e| cudnn_err(&format!("creating {kind:?}"), e))?;
        Ok(Desc(raw))
    }

    /// The raw handle, for calls that take descriptors.
    pub(super) fn raw(&self) -> sys::cudnnBackendDescriptor_t {
        self.0
    }

    /// Sets `name` to `count` elements of `ty` at `values`.
    ///
    /// # Safety
    /// `values` must point to `count` elements laid out as cuDNN's C type for `ty`.
    unsafe fn set_raw(
        &self,
        name: Name,
        ty: Type,
        count: usize,
        values: *const c_void,
    ) -> Result<()> {
        sys::cudnnBackendSetAttribute(self.0, name, ty, count as i64, values)
            .result()
            .map_err(|e| cudnn_err(&format!("setting {name:?}"), e))
    }

    /// Sets `name` to plain values of `ty` (integers, floats, enums as u32).
    pub(super) fn set<T: Scalar>(&self, name: Name, ty: Type, values: &[T]) -> Result<()> {
        check_size::<T>(ty)?;
        // SAFETY: `values` holds values.len() elements whose size matches `ty` (checked above).
        unsafe { self.set_raw(name, ty, values.len(), values.as_ptr().cast()) }
    }

    /// Sets `name` to descriptors (cuDNN copies what it needs from them).
    pub(super) fn set_descs(&self, name: Name, descs: &[&Desc]) -> Result<()> {
        let raw: Vec<_> = descs.iter().map(|d| d.0).collect();
        let ty = Type::CUDNN_TYPE_BACKEND_DESCRIPTOR;
        // SAFETY: `raw` holds raw.len() live descriptor handles.
        unsafe { self.set_raw(name, ty, raw.len(), raw.as_ptr().cast()) }
    }

    /// Sets `name` to device addresses.
    pub(super) fn set_ptrs(&self, name: Name, ptrs: &[*mut c_void]) -> Result<()> {
        let ty = Type::CUDNN_TYPE_VOID_PTR;
        // SAFETY: `ptrs` holds ptrs.len() pointers, cuDNN's element type for VOID_PTR.
        unsafe { self.set_raw(name, ty, ptrs.len(), ptrs.as_ptr().cast()) }
    }

    /// Sets `name` to the cuDNN handle `h`.
    pub(super) fn set_handle(&self, name: Name, h: sys::cudnnHandle_t) -> Result<()> {
        // SAFETY: one handle, cuDNN's element type for HANDLE.
        unsafe {
            self.set_raw(
                name,
                Type::CUDNN_TYPE_HANDLE,
                1,
                (&h as *const sys::cudnnHandle_t).cast(),
            )
        }
    }

    /// Validates the attributes set so far; the descriptor is usable afterwards.
    pub(super) fn finalize(&self) -> Result<()> {
        // SAFETY: a live descriptor.
        unsafe { sys::cudnnBackendFinalize(self.0) }
            .result()
            .map_err(|e| cudnn_err("finalize", e))
    }

    /// Reads up to `max` elements into `out` (`count` set to how many cuDNN has); returns count.
    ///
    /// # Safety
    /// `out` must have room for `max` elements of cuDNN's C type for `ty` (or be null with max 0).
    unsafe fn get_raw(&self, name: Name, ty: Type, max: usize, out: *mut c_void) -> Result<usize> {
        let mut count = 0i64;
        sys::cudnnBackendGetAttribute(self.0, name, ty, max as i64, &mut count, out)
            .result()
            .map_err(|e| cudnn_err(&format!("reading {name:?}"), e))?;
        Ok(count.max(0) as usize)
    }

    /// Up to `max` plain values of `ty` under `name`.
    pub(super) fn get<T: Scalar>(&self, name: Name, ty: Type, max: usize) -> Result<Vec<T>> {
        check_size::<T>(ty)?;
        let mut out = vec![T::default(); max];
        // SAFETY: `out` has room for `max` elements whose size matches `ty` (checked above).
        let n = unsafe { self.get_raw(name, ty, max, out.as_mut_ptr().cast())? };
        out.truncate(n.min(max));
        Ok(out)
    }

    /// How many elements `name` holds (descriptor lists).
    pub(super) fn count(&self, name: Name) -> Result<usize> {
        // SAFETY: a count query: cuDNN writes nothing to the (null) array.
        unsafe { self.get_raw(name, Type::CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, null_mut()) }
    }

    /// Up to `max` descriptors of `kind` under `name`, filled in by cuDNN.
    pub(super) fn get_descs(&self, name: Name, kind: Kind, max: usize) -> Result<Vec<Desc>> {
        let mut descs = (0..max)
            .map(|_| Desc::new(kind))
            .collect::<Result<Vec<_>>>()?;
        let mut raw: Vec<_> = descs.iter().map(|d| d.0).collect();
        let ty = Type::CUDNN_TYPE_BACKEND_DESCRIPTOR;
        // SAFETY: `raw` holds `max` live descriptors of the kind cuDNN fills in for `name`.
        let n = unsafe { self.get_raw(name, ty, max, raw.as_mut_ptr().cast())? };
        descs.truncate(n.min(max));
        Ok(descs)
    }
}

impl Drop for Desc {
    fn drop(&mut self) {
        // SAFETY: the descriptor was created by `Desc::new` and is destroyed once.
        let _ = unsafe { sys::cudnnBackendDestroyDescriptor(self.0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values are only passed as attribute types of their size.
    #[test]
    fn element_sizes_guard_the_types() {
        assert!(check_size::<i64>(Type::CUDNN_TYPE_INT64).is_ok());
        assert!(check_size::<u32>(Type::CUDNN_TYPE_DATA_TYPE).is_ok());
        assert!(check_size::<bool>(Type::CUDNN_TYPE_BOOLEAN).is_ok());
        assert!(check_size::<u32>(Type::CUDNN_TYPE_INT64).is_err());
        assert!(check_size::<i64>(Type::CUDNN_TYPE_VOID_PTR).is_err());
    }
}
