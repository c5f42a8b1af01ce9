//! Views (reshape, permute, narrow, expand, ...), copies into a memory format, and cat.

use super::record_node;
use crate::trace::{self, Op};
use crate::{Error, Layout, MemoryFormat, Result, Tensor};

impl Tensor {
    fn view_with_backward(
        &self,
        layout: Layout,
        op: &'static str,
        back: impl Fn(&Tensor) -> Result<Tensor> + Send + Sync + 'static,
    ) -> Tensor {
        let node = record_node(op, &[self], move |g| Ok(vec![Some(back(g)?)]));
        self.with_layout(layout, node)
    }

    /// The same elements with a new shape (one dim may be `usize::MAX` to infer); copies when the
    /// strides do not allow a view.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        trace::traced(
            || Op::Reshape,
            [self],
            || {
                let shape = infer_shape(self.shape(), shape)?;
                if shape == self.shape() {
                    return Ok(self.clone());
                }
                let src = if self.is_contiguous() {
                    self.clone()
                } else {
                    self.contiguous()?
                };
                let layout = src
                    .layout()
                    .reshape(&shape)
                    .ok_or_else(|| Error::BadShape {
                        op: "reshape",
                        shape: shape.clone(),
                        msg: "not viewable".into(),
                    })?;
                let back_shape = self.shape().to_vec();
                Ok(src.view_with_backward(layout, "reshape", move |g| g.reshape(&back_shape)))
            },
        )
    }

    /// Flattens dims `start..` into one.
    pub fn flatten_from(&self, start: usize) -> Result<Tensor> {
        let mut shape: Vec<usize> = self.shape()[..start.min(self.rank())].to_vec();
        shape.push(self.shape()[start.min(self.rank())..].iter().product());
        self.reshape(&shape)
    }

    /// Reorders dimensions (a view).
    pub fn permute(&self, dims: &[usize]) -> Result<Tensor> {
        trace::traced(
            || Op::Permute(dims.to_vec()),
            [self],
            || {
                let layout = self.layout().permute(dims)?;
                let mut inverse = vec![0; dims.len()];
                for (i, &d) in dims.iter().enumerate() {
                    inverse[d] = i;
                }
                Ok(self.view_with_backward(layout, "permute", move |g| g.permute(&inverse)))
            },
        )
    }

    /// Swaps two dimensions (a view).
    pub fn transpose(&self, a: isize, b: isize) -> Result<Tensor> {
        let (a, b) = (
            self.layout().dim("transpose", a)?,
            self.layout().dim("transpose", b)?,
        );
        let mut dims: Vec<usize> = (0..self.rank()).collect();
        dims.swap(a, b);
        self.permute(&dims)
    }

    /// The transpose of a matrix (a view).
    pub fn t(&self) -> Result<Tensor> {
        self.transpose(-2, -1)
    }

    /// Elements `start..start+len` of dimension `dim` (a view).
    pub fn narrow(&self, dim: isize, start: usize, len: usize) -> Result<Tensor> {
        trace::traced(
            || Op::Narrow {
                dim: self.layout().dim("narrow", dim).unwrap_or(0),
                start,
                len,
            },
            [self],
            || {
                let d = self.layout().dim("narrow", dim)?;
                let layout = self.layout().narrow(d, start, len)?;
                // A channels-last map's slices hand back a channels-last gradient.
                let like = self
                    .layout()
                    .channels_last_order()
                    .unwrap_or_else(|| Layout::contiguous(self.shape()));
                Ok(self.view_with_backward(layout, "narrow", move |g| {
                    let out = Tensor::full_laid_out(like.clone(), 0.0, g.dtype(), g.device())?;
                    out.narrow(d as isize, start, len)?.copy_(g)?;
                    Ok(out)
                }))
            },
        )
    }

    /// Broadcasts to `shape` without copying (stride 0 on expanded dims).
    pub fn broadcast_as(&self, shape: &[usize]) -> Result<Tensor> {
        trace::traced(
            || Op::Expand,
            [self],
            || {
                let layout = self.layout().broadcast_as(shape)?;
                let own = self.shape().to_vec();
                Ok(self.view_with_backward(layout, "broadcast_as", move |g| g.sum_to(&own)))
            },
        )
    }

    /// PyTorch's `expand`.
    pub fn expand(&self, shape: &[usize]) -> Result<Tensor> {
        self.broadcast_as(shape)
    }

    /// Inserts a size-1 dimension.
    pub fn unsqueeze(&self, dim: isize) -> Result<Tensor> {
        trace::traced(
            || Op::Reshape,
            [self],
            || {
                let rank = self.rank() as isize + 1;
                let d = if dim < 0 { dim + rank } else { dim };
                if d < 0 || d >= rank {
                    return Err(Error::DimOutOfRange {
                        op: "unsqueeze",
                        dim,
                        rank: self.rank(),
                    });
                }
                let layout = self.layout().unsqueeze(d as usize);
                Ok(self.view_with_backward(layout, "unsqueeze", move |g| g.squeeze(d)))
            },
        )
    }

    /// Removes a size-1 dimension (no-op if its size is not 1).
    pub fn squeeze(&self, dim: isize) -> Result<Tensor> {
        trace::traced(
            || Op::Reshape,
            [self],
            || {
                let d = self.layout().dim("squeeze", dim)?;
                if self.shape()[d] != 1 {
                    return Ok(self.clone());
                }
                let layout = self.layout().squeeze(d);
                Ok(self.view_with_backward(layout, "squeeze", move |g| g.unsqueeze(d as isize)))
            },
        )
    }

    /// A row-major copy, or this tensor if already row-major.
    pub fn contiguous(&self) -> Result<Tensor> {
        if self.is_contiguous() {
            return Ok(self.clone());
        }
        self.copy_as(Layout::contiguous(self.shape()))
    }

    /// A copy in `format` (channels-last needs rank 4), or this tensor if already so.
    pub fn to_memory_format(&self, format: MemoryFormat) -> Result<Tensor> {
        if self.memory_format() == Some(format)
            || (format == MemoryFormat::ChannelsLast && self.rank() != 4)
        {
            return Ok(self.clone());
        }
        self.copy_as(Layout::with_format(self.shape(), format))
    }

    /// This tensor dense in `format` starting at storage offset 0 (what kernels read), copying if needed.
    pub fn packed(&self, format: MemoryFormat) -> Result<Tensor> {
        let l = self.layout();
        let dense = match format {
            MemoryFormat::ChannelsLast if self.rank() == 4 => l.is_channels_last(),
            _ => l.is_contiguous(),
        };
        // Kernels take the storage whole: a view of a longer storage (a leading slice of a
        // batch) is copied like any other view.
        let fits = l.offset() == 0 && dense && self.storage().len() == self.numel();
        if fits {
            return Ok(self.clone());
        }
        self.copy_as(Layout::with_format(self.shape(), format))
    }

    /// A copy with its own storage (needed before in-place writes to a view).
    pub fn contiguous_copy(&self) -> Result<Tensor> {
        self.copy_as(Layout::contiguous(self.shape()))
    }

    /// A copy in fresh storage laid out as this tensor (same strides, offset 0) when it is
    /// dense, contiguous otherwise ([`Layout::dense_like`]): e.g. a CUDA graph's static input,
    /// which later batches are copied into in place.
    pub fn dense_clone(&self) -> Result<Tensor> {
        self.copy_as(self.layout().dense_like())
    }

    fn copy_as(&self, layout: Layout) -> Result<Tensor> {
        trace::traced(
            || Op::Copy,
            [self],
            || {
                let s = self.storage().copy_to_layout(self.layout(), &layout)?;
                let node = record_node("copy", &[self], |g| Ok(vec![Some(g.clone())]));
                Ok(Tensor::result(s, layout, node))
            },
        )
    }

    /// Writes `src` (same shape) into this tensor's elements in place; not recorded by autograd.
    pub fn copy_(&self, src: &Tensor) -> Result<()> {
        if src.shape() != self.shape() {
            return Err(Error::ShapeMismatch {
                op: "copy_",
                lhs: self.shape().to_vec(),
                rhs: src.shape().to_vec(),
            });
        }
        let src = src.to_dtype(self.dtype())?.to_device(self.device())?;
        let src_storage = if src.same_storage(self) {
            src.contiguous_copy()?
        } else {
            src
        };
        let from = src_storage.storage();
        self.storage_mut()
            .copy_from(self.layout(), (&from, src_storage.layout()))
    }

    /// Concatenates tensors of equal shape but for `dim`.
    pub fn cat(tensors: &[Tensor], dim: isize) -> Result<Tensor> {
        trace::traced(
            || Op::Concat {
                dim: tensors
                    .first()
                    .and_then(|t| t.layout().dim("cat", dim).ok())
                    .unwrap_or(0),
            },
            tensors.iter(),
            || {
                let first = tensors.first().ok_or(Error::InvalidArgument {
                    op: "cat",
                    msg: "no tensors".into(),
                })?;
                let d = first.layout().dim("cat", dim)?;
                let mut shape = first.shape().to_vec();
                shape[d] = 0;
                for t in tensors {
                    let mut s = t.shape().to_vec();
                    if s.len() != shape.len() {
                        return Err(Error::ShapeMismatch {
                            op: "cat",
                            lhs: first.shape().to_vec(),
                            rhs: s,
                        });
                    }
                    shape[d] += s[d];
                    s[d] = first.shape()[d];
                    if s != first.shape() {
                        return Err(Error::ShapeMismatch {
                            op: "cat",
                            lhs: first.shape().to_vec(),
                            rhs: t.shape().to_vec(),
                        });
                    }
                }
                let format = first.memory_format().unwrap_or_default();
                let out = Tensor::full_on(&shape, 0.0, first.dtype(), first.device())?
                    .to_memory_format(format)?;
                let mut start = 0;
                let mut sizes = Vec::new();
                for t in tensors {
                    out.narrow(d as isize, start, t.shape()[d])?.copy_(t)?;
                    start += t.shape()[d];
                    sizes.push(t.shape()[d]);
                }
                let refs: Vec<&Tensor> = tensors.iter().collect();
                let node = record_node("cat", &refs, move |g| {
                    let mut start = 0;
                    sizes
                        .iter()
                        .map(|&n| {
                            let part = g.narrow(d as isize, start, n)?.contiguous_copy()?;
                            start += n;
                            Ok(Some(part))
                        })
                        .collect()
                });
                Ok(out.with_layout(out.layout().clone(), node))
            },
        )
    }

    /// PyTorch's `torch.roll(x, shifts, dims)`: element i of each rolled dim moves to
    /// (i + shift) mod n (negative shifts roll the other way). Built from `narrow` and `cat`, so
    /// it runs on every device and layout and its backward is the reverse roll.
    pub fn roll(&self, shifts: &[isize], dims: &[isize]) -> Result<Tensor> {
        if shifts.len() != dims.len() {
            return Err(Error::InvalidArgument {
                op: "roll",
                msg: format!("{} shifts for {} dims", shifts.len(), dims.len()),
            });
        }
        let mut out = self.clone();
        for (&shift, &dim) in shifts.iter().zip(dims) {
            let d = self.layout().dim("roll", dim)?;
            let n = self.shape()[d];
            let s = if n == 0 {
                0
            } else {
                shift.rem_euclid(n as isize) as usize
            };
            if s == 0 {
                continue;
            }
            let (tail, head) = (
                out.narrow(d as isize, n - s, s)?,
                out.narrow(d as isize, 0, n - s)?,
            );
            out = Tensor::cat(&[tail, head], d as isize)?;
        }
        Ok(out)
    }

    /// Zero-pads the last two dims by `[left, right, top, bottom]` (PyTorch's `F.pad(x, (l, r, t,
    /// b))`, as timm's TF-style "same" padding uses it); keeps the memory format.
    pub fn pad2d(&self, pad: [usize; 4]) -> Result<Tensor> {
        trace::traced(
            || Op::Pad2d(pad),
            [self],
            || {
                if self.rank() < 2 {
                    return Err(Error::BadShape {
                        op: "pad2d",
                        shape: self.shape().to_vec(),
                        msg: "needs at least 2 dims".into(),
                    });
                }
                if pad == [0; 4] {
                    return Ok(self.clone());
                }
                let [left, right, top, bottom] = pad;
                let r = self.rank();
                let (h, w) = (self.shape()[r - 2], self.shape()[r - 1]);
                let mut shape = self.shape().to_vec();
                shape[r - 2] += top + bottom;
                shape[r - 1] += left + right;
                let format = self.memory_format().unwrap_or_default();
                let out = Tensor::full_on(&shape, 0.0, self.dtype(), self.device())?
                    .to_memory_format(format)?;
                let interior = move |t: &Tensor| t.narrow(-2, top, h)?.narrow(-1, left, w);
                interior(&out)?.copy_(self)?;
                let node = record_node("pad2d", &[self], move |g| {
                    Ok(vec![Some(interior(g)?.contiguous_copy()?)])
                });
                Ok(out.with_layout(out.layout().clone(), node))
            },
        )
    }
}

fn infer_shape(from: &[usize], to: &[usize]) -> Result<Vec<usize>> {
    let numel: usize = from.iter().product();
    let known: usize = to.iter().filter(|&&d| d != usize::MAX).product();
    let mut shape = to.to_vec();
    if let Some(slot) = shape.iter_mut().find(|d| **d == usize::MAX) {
        *slot = numel.checked_div(known).unwrap_or(0);
    }
    if shape.iter().product::<usize>() != numel {
        return Err(Error::ShapeMismatch {
            op: "reshape",
            lhs: from.to_vec(),
            rhs: to.to_vec(),
        });
    }
    Ok(shape)
}
