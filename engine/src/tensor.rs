//! `Tensor`: a cheap handle to storage, a layout and autograd metadata.

use crate::autograd::{self, Node};
use crate::cpu::elementwise::add_assign;
use crate::{CpuStorage, DType, Device, Error, Layout, MemoryFormat, Result, Storage, StorageElem};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A unique id per tensor handle created (views get their own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(u64);

impl TensorId {
    fn fresh() -> TensorId {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        TensorId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

pub(crate) struct TensorInner {
    id: TensorId,
    storage: Arc<RwLock<Storage>>,
    layout: Layout,
    node: Option<Arc<Node>>,
    requires_grad: AtomicBool,
    grad: Mutex<Option<Tensor>>,
}

/// An n-dimensional array on a device, with autograd. Clones share everything (like `Arc`).
#[derive(Clone)]
pub struct Tensor(Arc<TensorInner>);

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Tensor[{:?}, {:?}, {}]",
            self.shape(),
            self.dtype(),
            self.device()
        )
    }
}

impl Tensor {
    /// A tensor over fresh storage; records `node` when it is given.
    pub(crate) fn from_parts(storage: Storage, layout: Layout, node: Option<Arc<Node>>) -> Tensor {
        Tensor::view_of(Arc::new(RwLock::new(storage)), layout, node)
    }

    fn view_of(storage: Arc<RwLock<Storage>>, layout: Layout, node: Option<Arc<Node>>) -> Tensor {
        Tensor(Arc::new(TensorInner {
            id: TensorId::fresh(),
            storage,
            layout,
            node,
            requires_grad: AtomicBool::new(false),
            grad: Mutex::new(None),
        }))
    }

    /// A new handle on this tensor's storage with another layout (a view), recording `node`.
    pub(crate) fn with_layout(&self, layout: Layout, node: Option<Arc<Node>>) -> Tensor {
        Tensor::view_of(self.0.storage.clone(), layout, node)
    }

    /// A CPU tensor holding `data` (row-major) with `shape`.
    pub fn from_vec<T: StorageElem>(data: Vec<T>, shape: &[usize]) -> Result<Tensor> {
        let numel: usize = shape.iter().product();
        if numel != data.len() {
            return Err(Error::BadShape {
                op: "from_vec",
                shape: shape.to_vec(),
                msg: format!("needs {numel} elements, got {}", data.len()),
            });
        }
        Ok(Tensor::from_parts(
            Storage::Cpu(T::wrap(data)),
            Layout::contiguous(shape),
            None,
        ))
    }

    /// A CPU tensor of `dtype` and `shape` from raw little-endian bytes.
    pub fn from_bytes(bytes: &[u8], dtype: DType, shape: &[usize]) -> Result<Tensor> {
        let s = CpuStorage::from_bytes(dtype, bytes)?;
        let numel: usize = shape.iter().product();
        if s.len() != numel {
            return Err(Error::BadShape {
                op: "from_bytes",
                shape: shape.to_vec(),
                msg: format!(
                    "needs {numel} elements of {dtype:?}, got {} bytes",
                    bytes.len()
                ),
            });
        }
        Ok(Tensor::from_parts(
            Storage::Cpu(s),
            Layout::contiguous(shape),
            None,
        ))
    }

    /// A scalar (rank-0) f32 tensor.
    pub fn scalar(v: f32) -> Tensor {
        Tensor::from_parts(
            Storage::Cpu(CpuStorage::F32(vec![v])),
            Layout::contiguous(&[]),
            None,
        )
    }

    /// The unique id of this handle.
    pub fn id(&self) -> TensorId {
        self.0.id
    }

    /// The logical shape.
    pub fn shape(&self) -> &[usize] {
        self.0.layout.shape()
    }

    /// Size of dimension `dim` (negative counts from the end).
    pub fn size(&self, dim: isize) -> Result<usize> {
        Ok(self.shape()[self.layout().dim("size", dim)?])
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape().len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.0.layout.numel()
    }

    /// Shape, strides and offset.
    pub fn layout(&self) -> &Layout {
        &self.0.layout
    }

    /// Strides in elements.
    pub fn stride(&self) -> &[usize] {
        self.0.layout.strides()
    }

    /// The element type (the storage's: [`Tensor::cast_`] changes it in place).
    pub fn dtype(&self) -> DType {
        self.storage().dtype()
    }

    /// The device holding the storage.
    pub fn device(&self) -> Device {
        self.storage().device()
    }

    /// Whether the layout is row-major without gaps.
    pub fn is_contiguous(&self) -> bool {
        self.0.layout.is_contiguous()
    }

    /// The dense memory format, if any.
    pub fn memory_format(&self) -> Option<MemoryFormat> {
        self.0.layout.memory_format()
    }

    /// Read access to the storage.
    pub fn storage(&self) -> RwLockReadGuard<'_, Storage> {
        read(&self.0.storage)
    }

    /// The lock over the storage, for an entry that locks each buffer of a list as it goes.
    pub(crate) fn storage_lock(&self) -> &RwLock<Storage> {
        &self.0.storage
    }

    /// Write access to the storage (in-place updates such as optimizer steps).
    pub fn storage_mut(&self) -> RwLockWriteGuard<'_, Storage> {
        self.0.storage.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this tensor and `other` share storage.
    pub fn same_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.0.storage, &other.0.storage)
    }

    /// The autograd node that produced this tensor, if recorded.
    pub(crate) fn node(&self) -> Option<&Arc<Node>> {
        self.0.node.as_ref()
    }

    /// Whether gradients flow to or through this tensor.
    pub fn requires_grad(&self) -> bool {
        self.0.node.is_some() || self.0.requires_grad.load(Ordering::Relaxed)
    }

    /// Marks a leaf tensor as a variable whose `.grad()` backward fills (PyTorch's `requires_grad_`).
    pub fn requires_grad_(&self, on: bool) -> &Tensor {
        self.0.requires_grad.store(on, Ordering::Relaxed);
        self
    }

    /// Whether this tensor was made by the user rather than by a recorded op.
    pub fn is_leaf(&self) -> bool {
        self.0.node.is_none()
    }

    /// The accumulated gradient of a leaf, if backward has reached it.
    pub fn grad(&self) -> Option<Tensor> {
        self.0
            .grad
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the accumulated gradient (None clears it, as `zero_grad(set_to_none=True)`).
    pub fn set_grad(&self, g: Option<Tensor>) {
        *self.0.grad.lock().unwrap_or_else(|e| e.into_inner()) = g;
    }

    /// Adds `g` into this leaf's gradient, as PyTorch's AccumulateGrad does: in place when the
    /// gradient is the only handle on its storage and a dense f32 or f64 CPU tensor laid out as
    /// `g`, else as a new tensor. On error the gradient is left as it was.
    pub(crate) fn accumulate_grad(&self, g: Tensor) -> Result<()> {
        let mut slot = self.0.grad.lock().unwrap_or_else(|e| e.into_inner());
        let sum = match slot.take() {
            None => g,
            Some(prev) if prev.add_in_place(&g) => prev,
            Some(prev) => match prev.add(&g) {
                Ok(sum) => sum,
                Err(e) => {
                    *slot = Some(prev);
                    return Err(e);
                }
            },
        };
        *slot = Some(sum);
        Ok(())
    }

    /// `self += g` in place, if nothing else can see `self`'s storage and both are dense CPU
    /// tensors of one float dtype with the same element mapping; returns whether it added.
    fn add_in_place(&self, g: &Tensor) -> bool {
        let unique = Arc::strong_count(&self.0) == 1 && Arc::strong_count(&self.0.storage) == 1;
        let (layout, g_layout) = (self.layout(), g.layout());
        if !unique || !layout.is_dense() || !layout.same_mapping(g_layout) {
            return false;
        }
        let (n, at, g_at) = (self.numel(), layout.offset(), g_layout.offset());
        let (mut dst, src) = (self.storage_mut(), g.storage());
        match (&mut *dst, &*src) {
            (Storage::Cpu(CpuStorage::F32(d)), Storage::Cpu(CpuStorage::F32(s))) => {
                add_assign(&mut d[at..at + n], &s[g_at..g_at + n])
            }
            (Storage::Cpu(CpuStorage::F64(d)), Storage::Cpu(CpuStorage::F64(s))) => {
                add_assign(&mut d[at..at + n], &s[g_at..g_at + n])
            }
            _ => return false,
        }
        true
    }

    /// A tensor sharing storage but cut from the graph.
    pub fn detach(&self) -> Tensor {
        self.with_layout(self.layout().clone(), None)
    }

    /// Backpropagates from this scalar, accumulating into every leaf that requires grad.
    pub fn backward(&self) -> Result<()> {
        autograd::backward(self, None, None)
    }

    /// Backpropagates from this scalar as [`Tensor::backward`], calling `hook` with each leaf
    /// as soon as its gradient is complete (see [`autograd::LeafHook`]).
    pub fn backward_hooked(&self, hook: autograd::LeafHook) -> Result<()> {
        autograd::backward(self, None, Some(hook))
    }

    /// Backpropagates with an explicit gradient of this tensor's shape.
    pub fn backward_with(&self, grad: &Tensor) -> Result<()> {
        autograd::backward(self, Some(grad.clone()), None)
    }

    /// The elements, row-major, as `T` (the dtype must match).
    pub fn to_vec<T: StorageElem>(&self) -> Result<Vec<T>> {
        self.contiguous()?.storage_elements("to_vec")
    }

    /// The `numel` elements from the layout's offset, in storage order, copied to the host.
    fn storage_elements<T: StorageElem>(&self, op: &'static str) -> Result<Vec<T>> {
        let (s, l) = (self.storage(), self.layout());
        let range = l.offset()..l.offset() + l.numel();
        match &*s {
            Storage::Cpu(c) => Ok(c.as_slice::<T>(op)?[range].to_vec()),
            Storage::Cuda(g) => Ok(g.to_cpu()?.as_slice::<T>(op)?[range].to_vec()),
        }
    }

    /// The elements in storage order when the layout is dense (e.g. NHWC order for a
    /// channels-last tensor), else row-major.
    pub fn dense_data<T: StorageElem>(&self) -> Result<Vec<T>> {
        if !self.layout().is_dense() {
            return self.to_vec();
        }
        self.storage_elements("dense_data")
    }

    /// The elements converted to f32, whatever the dtype.
    pub fn to_vec_f32(&self) -> Result<Vec<f32>> {
        self.to_dtype(DType::F32)?.to_vec::<f32>()
    }

    /// The value of a one-element tensor, as f64.
    pub fn item(&self) -> Result<f64> {
        if self.numel() != 1 {
            return Err(Error::BadShape {
                op: "item",
                shape: self.shape().to_vec(),
                msg: "needs exactly one element".into(),
            });
        }
        Ok(self.to_dtype(DType::F64)?.to_vec::<f64>()?[0])
    }

    /// A copy on `device` (this tensor itself when already there); gradients flow back.
    pub fn to_device(&self, device: Device) -> Result<Tensor> {
        if device == self.device() {
            return Ok(self.clone());
        }
        let format = self.memory_format().unwrap_or(MemoryFormat::Contiguous);
        let x = self.packed(format)?;
        let s = x.storage().to_device(device)?;
        let from = self.device();
        let node = crate::autograd::record("to_device", &[&x], move |g| {
            Ok(vec![Some(g.to_device(from)?)])
        });
        Ok(Tensor::result(s, x.layout().clone(), node))
    }

    /// Moves this tensor's whole storage to `device` in place, for every handle that shares it
    /// (how a module's parameters and buffers move, like `module.to(device)`).
    pub fn move_to_(&self, device: Device) -> Result<()> {
        if device == self.device() {
            return Ok(());
        }
        let moved = self.storage().to_device(device)?;
        *self.storage_mut() = moved;
        if let Some(g) = self.grad() {
            self.set_grad(Some(g.to_device(device)?));
        }
        Ok(())
    }

    /// Converts the storage to `dtype` in place, every element where it was, so this handle and
    /// its views keep their layouts (`param.data = param.data.to(dtype)`, as `module.to(dtype)`
    /// does); a gradient is converted with it. Only for leaves: a recorded op's backward expects
    /// the dtype it saw.
    pub fn cast_(&self, dtype: DType) -> Result<()> {
        if dtype == self.dtype() {
            return Ok(());
        }
        if self.0.node.is_some() {
            return Err(Error::InvalidArgument {
                op: "cast_",
                msg: "an op's output cannot change dtype in place; cast a leaf".into(),
            });
        }
        let whole = Layout::contiguous(&[self.storage().len()]);
        let (cast, _) = self.storage().cast(&whole, dtype)?;
        *self.storage_mut() = cast;
        if let Some(g) = self.grad() {
            self.set_grad(Some(g.to_dtype(dtype)?));
        }
        Ok(())
    }
}

fn read(s: &RwLock<Storage>) -> RwLockReadGuard<'_, Storage> {
    s.read().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cast_in_place_keeps_views_and_converts_the_gradient() {
        let t = Tensor::from_vec(vec![1.0f32, 2.5, -3.25, 4.0, 1e-3, 7.0], &[2, 3]).unwrap();
        let column = t.narrow(1, 1, 1).unwrap();
        t.set_grad(Some(Tensor::from_vec(vec![0.5f32; 6], &[2, 3]).unwrap()));
        t.cast_(DType::BF16).unwrap();
        assert_eq!(t.dtype(), DType::BF16);
        assert_eq!(
            column.dtype(),
            DType::BF16,
            "a view reads its storage's dtype"
        );
        let rounded = half::bf16::from_f32(1e-3).to_f32();
        assert_eq!(column.to_vec_f32().unwrap(), [2.5, rounded]);
        assert_eq!(t.grad().unwrap().dtype(), DType::BF16);
    }

    #[test]
    fn cast_refuses_an_ops_output() {
        let leaf = Tensor::from_vec(vec![1.0f32, 2.0], &[2]).unwrap();
        leaf.requires_grad_(true);
        let y = leaf.mul_scalar(2.0).unwrap();
        assert!(y.cast_(DType::F16).is_err());
        assert_eq!(y.dtype(), DType::F32);
    }
}
