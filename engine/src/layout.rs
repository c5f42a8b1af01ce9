//! Shape, strides and offset: how a tensor's logical elements map onto its storage.

use crate::{Device, Error, Result};

/// The memory order of a 4-d tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemoryFormat {
    /// Row-major NCHW (PyTorch's `contiguous_format`).
    #[default]
    Contiguous,
    /// NHWC in memory, NCHW logically (PyTorch's `channels_last`).
    ChannelsLast,
}

impl MemoryFormat {
    /// The memory format for a model's weights and activations on `device` when none is asked
    /// for: channels-last on the CPU, whose convolution, pooling and BatchNorm kernels are NHWC
    /// kernels (NCHW would mostly take im2col); on CUDA, where cuDNN serves either, the user's
    /// choice, NCHW unless asked (as PyTorch).
    pub fn preferred_on(device: Device) -> Option<MemoryFormat> {
        match device {
            Device::Cpu => Some(MemoryFormat::ChannelsLast),
            Device::Cuda(_) => None,
        }
    }
}

/// Shape, strides (in elements) and offset of a view into storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    shape: Vec<usize>,
    strides: Vec<usize>,
    offset: usize,
}

/// Row-major strides of a shape.
pub fn contiguous_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        strides[d] = strides[d + 1] * shape[d + 1].max(1);
    }
    strides
}

impl Layout {
    /// A row-major layout of `shape` at offset 0.
    pub fn contiguous(shape: &[usize]) -> Layout {
        Layout {
            shape: shape.to_vec(),
            strides: contiguous_strides(shape),
            offset: 0,
        }
    }

    /// A layout of `shape` in the given memory format (channels-last needs rank 4).
    pub fn with_format(shape: &[usize], format: MemoryFormat) -> Layout {
        match (format, shape) {
            (MemoryFormat::ChannelsLast, &[_, c, h, w]) => Layout {
                shape: shape.to_vec(),
                strides: vec![h * w * c, 1, w * c, c],
                offset: 0,
            },
            _ => Layout::contiguous(shape),
        }
    }

    /// Builds a layout from its parts.
    pub fn new(shape: Vec<usize>, strides: Vec<usize>, offset: usize) -> Layout {
        Layout {
            shape,
            strides,
            offset,
        }
    }

    /// The logical shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Strides in elements.
    pub fn strides(&self) -> &[usize] {
        &self.strides
    }

    /// Offset of the first element in the storage, in elements.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether elements are row-major with no gaps.
    pub fn is_contiguous(&self) -> bool {
        self.shape
            .iter()
            .zip(&self.strides)
            .zip(contiguous_strides(&self.shape))
            .all(|((&n, &s), c)| n <= 1 || s == c)
    }

    /// Whether this is a 4-d NHWC-in-memory layout with no gaps.
    pub fn is_channels_last(&self) -> bool {
        self.rank() == 4
            && self.same_mapping(&Layout::with_format(
                &self.shape,
                MemoryFormat::ChannelsLast,
            ))
    }

    /// Whether a 4-d op should run channels-last: NHWC-dense, and either not also row-major or
    /// (for the ambiguous C = 1 case) laid out with the channel stride innermost, as PyTorch's
    /// `suggest_memory_format`.
    pub fn prefers_channels_last(&self) -> bool {
        self.is_channels_last() && (!self.is_contiguous() || self.strides[1] <= self.strides[3])
    }

    /// Whether PyTorch's `suggest_memory_format` would call these strides channels-last (its
    /// `is_channels_last_strides_2d`): strides rising along C, W, H, N, a size-1 dimension
    /// counting as size 1, and the ambiguous N111 case left NCHW. Dense or not.
    pub fn suggests_channels_last(&self) -> bool {
        let (shape, strides) = (&self.shape, &self.strides);
        if self.rank() != 4 || strides[1] == 0 {
            return false;
        }
        let mut min = 0;
        for d in [1, 3, 2, 0] {
            if shape[d] == 0 || strides[d] < min || (d == 0 && min == strides[1]) {
                return false;
            }
            min = strides[d] * shape[d].max(1);
        }
        true
    }

    /// The memory format, if the layout is dense in one of the two formats.
    pub fn memory_format(&self) -> Option<MemoryFormat> {
        if self.is_contiguous() {
            Some(MemoryFormat::Contiguous)
        } else if self.is_channels_last() {
            Some(MemoryFormat::ChannelsLast)
        } else {
            None
        }
    }

    /// The dimensions from the largest stride to the smallest (ties in index order): the order
    /// in which the elements lie in memory.
    pub fn stride_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.rank()).collect();
        order.sort_by_key(|&d| (std::cmp::Reverse(self.strides[d]), d));
        order
    }

    /// If the elements fill `numel` consecutive storage slots in some dimension order, that order
    /// (outermost first); `None` for gaps, overlaps or broadcasts.
    pub fn dense_order(&self) -> Option<Vec<usize>> {
        let order = self.stride_order();
        let mut expected = 1;
        for &d in order.iter().rev() {
            if self.shape[d] == 1 {
                continue;
            }
            if self.strides[d] != expected {
                return None;
            }
            expected *= self.shape[d];
        }
        Some(order)
    }

    /// Whether the elements fill a gap-free block of storage (any dimension order).
    pub fn is_dense(&self) -> bool {
        self.dense_order().is_some()
    }

    /// Whether `other` has the same shape and maps elements to storage the same way.
    pub fn same_mapping(&self, other: &Layout) -> bool {
        self.shape == other.shape
            && self
                .shape
                .iter()
                .zip(self.strides.iter().zip(&other.strides))
                .all(|(&n, (a, b))| n <= 1 || a == b)
    }

    /// A fresh layout (offset 0) with the same shape and dense strides as this dense layout.
    pub fn dense_like(&self) -> Layout {
        if self.is_dense() {
            Layout {
                shape: self.shape.clone(),
                strides: self.strides.clone(),
                offset: 0,
            }
        } else {
            Layout::contiguous(&self.shape)
        }
    }

    /// The channels-last layout (offset 0) of this shape when this 4-d layout walks memory in
    /// NHWC order, dense or not (a channel slice of a channels-last map): the layout that
    /// elementwise results and gradients of such views take so that the next convolution stays
    /// channels-last, as PyTorch's `empty_like` keeps a slice's memory format.
    pub fn channels_last_order(&self) -> Option<Layout> {
        if self.rank() != 4 {
            return None;
        }
        let order = self.stride_order();
        let mut strides = vec![0; 4];
        let mut next = 1;
        for &d in order.iter().rev() {
            strides[d] = next;
            next *= self.shape[d];
        }
        let dense = Layout {
            shape: self.shape.clone(),
            strides,
            offset: 0,
        };
        dense.prefers_channels_last().then_some(dense)
    }

    /// Normalizes a possibly negative dimension index.
    pub fn dim(&self, op: &'static str, dim: isize) -> Result<usize> {
        let rank = self.rank() as isize;
        let d = if dim < 0 { dim + rank } else { dim };
        if d < 0 || d >= rank.max(1) {
            return Err(Error::DimOutOfRange {
                op,
                dim,
                rank: self.rank(),
            });
        }
        Ok(d as usize)
    }

    /// Reorders dimensions.
    pub fn permute(&self, dims: &[usize]) -> Result<Layout> {
        let mut seen = vec![false; self.rank()];
        if dims.len() != self.rank()
            || dims
                .iter()
                .any(|&d| d >= self.rank() || std::mem::replace(&mut seen[d], true))
        {
            return Err(Error::InvalidArgument {
                op: "permute",
                msg: format!(
                    "{dims:?} is not a permutation of the {} dims of {:?}",
                    self.rank(),
                    self.shape
                ),
            });
        }
        Ok(Layout {
            shape: dims.iter().map(|&d| self.shape[d]).collect(),
            strides: dims.iter().map(|&d| self.strides[d]).collect(),
            offset: self.offset,
        })
    }

    /// Restricts dimension `dim` to `start..start + len`.
    pub fn narrow(&self, dim: usize, start: usize, len: usize) -> Result<Layout> {
        if dim >= self.rank() || start + len > self.shape[dim] {
            return Err(Error::InvalidArgument {
                op: "narrow",
                msg: format!(
                    "range {start}..{} of dim {dim} out of bounds for shape {:?}",
                    start + len,
                    self.shape
                ),
            });
        }
        let mut l = self.clone();
        l.shape[dim] = len;
        l.offset += start * self.strides[dim];
        Ok(l)
    }

    /// Expands size-1 (or missing leading) dimensions to `shape` with stride 0.
    pub fn broadcast_as(&self, shape: &[usize]) -> Result<Layout> {
        let err = || Error::ShapeMismatch {
            op: "broadcast_as",
            lhs: self.shape.clone(),
            rhs: shape.to_vec(),
        };
        if shape.len() < self.rank() {
            return Err(err());
        }
        let lead = shape.len() - self.rank();
        let mut strides = vec![0; shape.len()];
        for (d, &n) in shape.iter().enumerate().skip(lead) {
            let (src_n, src_s) = (self.shape[d - lead], self.strides[d - lead]);
            strides[d] = match src_n {
                _ if src_n == n => src_s,
                1 => 0,
                _ => return Err(err()),
            };
        }
        Ok(Layout {
            shape: shape.to_vec(),
            strides,
            offset: self.offset,
        })
    }

    /// Inserts a size-1 dimension at `dim`.
    pub fn unsqueeze(&self, dim: usize) -> Layout {
        let mut l = self.clone();
        let stride = if dim < self.rank() {
            self.strides[dim] * self.shape[dim]
        } else {
            1
        };
        l.shape.insert(dim, 1);
        l.strides.insert(dim, stride);
        l
    }

    /// Removes dimension `dim`, which must have size 1.
    pub fn squeeze(&self, dim: usize) -> Layout {
        let mut l = self.clone();
        if dim < self.rank() && self.shape[dim] == 1 {
            l.shape.remove(dim);
            l.strides.remove(dim);
        }
        l
    }

    /// A view with a new shape over the same elements, when the strides allow it without a copy.
    pub fn reshape(&self, shape: &[usize]) -> Option<Layout> {
        if self.is_contiguous() {
            return Some(Layout {
                shape: shape.to_vec(),
                strides: contiguous_strides(shape),
                offset: self.offset,
            });
        }
        None
    }

    /// Storage offsets of every element in row-major logical order.
    pub fn offsets(&self) -> StridedOffsets<'_> {
        StridedOffsets {
            layout: self,
            index: vec![0; self.rank()],
            next: self.offset,
            left: self.numel(),
        }
    }
}

/// Iterator over the storage offsets of a layout's elements, row-major.
pub struct StridedOffsets<'a> {
    layout: &'a Layout,
    index: Vec<usize>,
    next: usize,
    left: usize,
}

impl Iterator for StridedOffsets<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let current = self.next;
        for d in (0..self.index.len()).rev() {
            self.index[d] += 1;
            self.next += self.layout.strides[d];
            if self.index[d] < self.layout.shape[d] {
                break;
            }
            self.next -= self.layout.strides[d] * self.index[d];
            self.index[d] = 0;
        }
        Some(current)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for StridedOffsets<'_> {}

/// The shape two operands broadcast to (numpy rules), or a mismatch error naming `op`.
pub fn broadcast_shape(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], d: usize| {
        if d + s.len() >= rank {
            s[d + s.len() - rank]
        } else {
            1
        }
    };
    (0..rank)
        .map(|d| match (dim(a, d), dim(b, d)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            _ => Err(Error::ShapeMismatch {
                op,
                lhs: a.to_vec(),
                rhs: b.to_vec(),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each case with the memory format of `torch.nn.functional.conv2d`'s output for an NCHW
    /// input and a weight of these strides (torch 2.15, CPU): channels-last exactly where the
    /// weight suggests it.
    #[test]
    fn suggests_channels_last_as_pytorch() {
        let cases: [([usize; 4], [usize; 4], bool); 8] = [
            ([16, 1, 3, 3], [9, 9, 3, 1], false),
            ([16, 1, 3, 3], [9, 1, 3, 1], true),
            ([8, 4, 1, 1], [4, 1, 1, 1], false),
            ([8, 4, 1, 1], [4, 1, 4, 4], true),
            ([8, 3, 4, 5], [60, 1, 15, 3], true),
            ([8, 3, 4, 5], [60, 20, 5, 1], false),
            ([5, 3, 1, 1], [3, 1, 3, 3], true),
            ([8, 3, 4, 5], [120, 1, 30, 6], true),
        ];
        for (shape, strides, want) in cases {
            let l = Layout::new(shape.to_vec(), strides.to_vec(), 0);
            assert_eq!(l.suggests_channels_last(), want, "{shape:?} @ {strides:?}");
        }
    }
}
