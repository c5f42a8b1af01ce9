//! The operation graph of one convolution: tensor descriptors for x, w and y (packed NCHW or
//! NHWC strides, filters OIHW or OHWI to match), the convolution descriptor and the forward,
//! data-gradient or filter-gradient operation.

use super::super::cudnn_key::{Key, Op};
use super::backend::Desc;
use crate::Result;
use cudarc::cudnn::sys::cudnnHandle_t;
use cudarc::cudnn::sys::{
    cudnnBackendAttributeName_t as Name, cudnnBackendAttributeType_t as Type,
    cudnnBackendDescriptorType_t as Kind, cudnnConvolutionMode_t, cudnnDataType_t,
};

/// The unique ids of x, w and y in the graph and in the variant pack (in that order).
pub(super) const UIDS: [i64; 3] = [1, 2, 3];

/// Strides of a packed tensor with logical dims [n, c, h, w]: NCHW, or NHWC when `channels_last`
/// (filters: OIHW, or OHWI).
pub(super) fn strides(dims: [i32; 4], channels_last: bool) -> [i64; 4] {
    let [_, c, h, w] = dims.map(i64::from);
    if channels_last {
        [h * w * c, 1, w * c, c]
    } else {
        [c * h * w, h * w, w, 1]
    }
}

/// The largest power of two up to 16 dividing every address: the tensors' byte alignment.
pub(super) fn alignment(addrs: [u64; 3]) -> u8 {
    let zeros = addrs.iter().map(|a| a.trailing_zeros()).min().unwrap_or(0);
    1 << zeros.min(4)
}

/// A graph and every descriptor it was built from (kept alive as long as the graph).
pub(super) struct Graph {
    pub(super) graph: Desc,
    _parts: Vec<Desc>,
}

/// A packed tensor of `key`'s data type and layout with `dims`, id `uid`, aligned to `align`.
pub(super) fn tensor(key: &Key, dims: [i32; 4], uid: i64, align: u8) -> Result<Desc> {
    tensor_of(key.ty, dims, key.channels_last, uid, align)
}

/// A packed tensor of data type `ty` with `dims` (NHWC strides when `channels_last`), id `uid`,
/// aligned to `align`.
pub(super) fn tensor_of(
    ty: cudnnDataType_t,
    dims: [i32; 4],
    channels_last: bool,
    uid: i64,
    align: u8,
) -> Result<Desc> {
    let t = Desc::new(Kind::CUDNN_BACKEND_TENSOR_DESCRIPTOR)?;
    t.set(
        Name::CUDNN_ATTR_TENSOR_DATA_TYPE,
        Type::CUDNN_TYPE_DATA_TYPE,
        &[ty as u32],
    )?;
    let dims64 = dims.map(i64::from);
    t.set(
        Name::CUDNN_ATTR_TENSOR_DIMENSIONS,
        Type::CUDNN_TYPE_INT64,
        &dims64,
    )?;
    let st = strides(dims, channels_last);
    t.set(Name::CUDNN_ATTR_TENSOR_STRIDES, Type::CUDNN_TYPE_INT64, &st)?;
    t.set(
        Name::CUDNN_ATTR_TENSOR_UNIQUE_ID,
        Type::CUDNN_TYPE_INT64,
        &[uid],
    )?;
    let align = [i64::from(align)];
    t.set(
        Name::CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT,
        Type::CUDNN_TYPE_INT64,
        &align,
    )?;
    t.set(
        Name::CUDNN_ATTR_TENSOR_IS_VIRTUAL,
        Type::CUDNN_TYPE_BOOLEAN,
        &[false],
    )?;
    t.finalize()?;
    Ok(t)
}

/// The convolution descriptor of `key`.
pub(super) fn convolution(key: &Key) -> Result<Desc> {
    let c = Desc::new(Kind::CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR)?;
    let int = Type::CUDNN_TYPE_INT64;
    let pair = |p: [i32; 2]| p.map(i64::from);
    c.set(Name::CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, int, &[2i64])?;
    let comp = [key.compute as u32];
    c.set(
        Name::CUDNN_ATTR_CONVOLUTION_COMP_TYPE,
        Type::CUDNN_TYPE_DATA_TYPE,
        &comp,
    )?;
    let mode = [cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION as u32];
    c.set(
        Name::CUDNN_ATTR_CONVOLUTION_CONV_MODE,
        Type::CUDNN_TYPE_CONVOLUTION_MODE,
        &mode,
    )?;
    c.set(
        Name::CUDNN_ATTR_CONVOLUTION_DILATIONS,
        int,
        &pair(key.dilation),
    )?;
    c.set(
        Name::CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES,
        int,
        &pair(key.stride),
    )?;
    c.set(
        Name::CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS,
        int,
        &pair(key.pad),
    )?;
    c.set(
        Name::CUDNN_ATTR_CONVOLUTION_POST_PADDINGS,
        int,
        &pair(key.pad),
    )?;
    c.finalize()?;
    Ok(c)
}

/// The operation of `op` on x, w, y with alpha = 1, beta = 0 (double for f64, else float).
pub(super) fn operation(op: Op, key: &Key, [x, w, y]: [&Desc; 3], conv: &Desc) -> Result<Desc> {
    use Name::*;
    let (kind, [alpha, beta, conv_name, x_name, w_name, y_name]) = match op {
        Op::Forward => (
            Kind::CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR,
            [
                CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA,
                CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA,
                CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
                CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
                CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W,
                CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y,
            ],
        ),
        Op::BackwardData => (
            Kind::CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR,
            [
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY,
            ],
        ),
        Op::BackwardFilter => (
            Kind::CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR,
            [
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW,
                CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY,
            ],
        ),
    };
    let o = Desc::new(kind)?;
    o.set_descs(x_name, &[x])?;
    o.set_descs(w_name, &[w])?;
    o.set_descs(y_name, &[y])?;
    o.set_descs(conv_name, &[conv])?;
    if key.compute == cudnnDataType_t::CUDNN_DATA_DOUBLE {
        o.set(alpha, Type::CUDNN_TYPE_DOUBLE, &[1f64])?;
        o.set(beta, Type::CUDNN_TYPE_DOUBLE, &[0f64])?;
    } else {
        o.set(alpha, Type::CUDNN_TYPE_FLOAT, &[1f32])?;
        o.set(beta, Type::CUDNN_TYPE_FLOAT, &[0f32])?;
    }
    o.finalize()?;
    Ok(o)
}

/// The finalized operation of `op` for `key` (tensors aligned to `align` bytes), with the
/// descriptors it was built from: host-side objects, no handle needed.
fn operation_of(op: Op, key: &Key, align: u8) -> Result<(Desc, Vec<Desc>)> {
    let x = tensor(key, key.x, UIDS[0], align)?;
    let w = tensor(key, key.w, UIDS[1], align)?;
    let y = tensor(key, key.y, UIDS[2], align)?;
    let conv = convolution(key)?;
    let o = operation(op, key, [&x, &w, &y], &conv)?;
    Ok((o, vec![x, w, y, conv]))
}

/// Builds and finalizes the one-operation graph of `op` for `key` on handle `h`, with tensors
/// aligned to `align` bytes.
pub(super) fn build(h: cudnnHandle_t, op: Op, key: &Key, align: u8) -> Result<Graph> {
    let (o, parts) = operation_of(op, key, align)?;
    assemble(h, vec![o], parts)
}

/// The finalized graph of the operations `ops` on handle `h`, keeping `parts` (what they were
/// built from) alive with it.
pub(super) fn assemble(h: cudnnHandle_t, ops: Vec<Desc>, mut parts: Vec<Desc>) -> Result<Graph> {
    let graph = Desc::new(Kind::CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR)?;
    graph.set_handle(Name::CUDNN_ATTR_OPERATIONGRAPH_HANDLE, h)?;
    let refs: Vec<&Desc> = ops.iter().collect();
    graph.set_descs(Name::CUDNN_ATTR_OPERATIONGRAPH_OPS, &refs)?;
    graph.finalize()?;
    parts.extend(ops);
    Ok(Graph {
        graph,
        _parts: parts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packed strides in both layouts, for activations and filters alike.
    #[test]
    fn strides_of_both_layouts() {
        assert_eq!(strides([2, 3, 4, 5], false), [60, 20, 5, 1]);
        assert_eq!(strides([2, 3, 4, 5], true), [60, 1, 15, 3]);
        // A grouped OHWI filter: 16 outputs, 2 inputs per group, 3x3.
        assert_eq!(strides([16, 2, 3, 3], true), [18, 1, 6, 2]);
    }

    /// The alignment is the weakest of the three addresses, capped at 16 bytes.
    #[test]
    fn alignment_of_addresses() {
        assert_eq!(alignment([0x1000, 0x2000, 0x3000]), 16);
        assert_eq!(alignment([0x1000, 0x2008, 0x3000]), 8);
        assert_eq!(alignment([0x1002, 0x2000, 0x3000]), 2);
        assert_eq!(alignment([0x1001, 0x2000, 0x3000]), 1);
    }

    /// cuDNN (where it loads: host-side objects, no device needed) accepts the descriptors of
    /// every direction, layout, dtype, grouping and dilation kiln passes.
    #[test]
    fn operations_finalize() {
        if !super::super::backend::loaded_for_tests() {
            return;
        }
        crate::cuda::cudnn_key::tests::for_each_conv_case(|key| {
            for op in [Op::Forward, Op::BackwardData, Op::BackwardFilter] {
                if let Err(e) = operation_of(op, key, 16) {
                    panic!("{op:?} {key:?}: {e}");
                }
            }
        });
    }

    /// What kiln sets, cuDNN reads back (host-side, where it loads): the plain getters and the
    /// descriptor getter that heuristics and the disk cache rely on.
    #[test]
    fn descriptors_read_back() {
        use crate::cuda::cudnn_key::tests::plain_key;
        use crate::DType;
        if !super::super::backend::loaded_for_tests() {
            return;
        }
        let key = plain_key([2, 8, 9, 11], [16, 8, 3, 3], true, DType::F16);
        let (o, parts) = operation_of(Op::BackwardData, &key, 16).unwrap();
        let int = Type::CUDNN_TYPE_INT64;
        let uid = Name::CUDNN_ATTR_TENSOR_UNIQUE_ID;
        // The operation fills in one descriptor: its own copy of dx (with a group dimension).
        let dx = Name::CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX;
        let copy = o.get_descs(dx, Kind::CUDNN_BACKEND_TENSOR_DESCRIPTOR, 1);
        let dims = Name::CUDNN_ATTR_TENSOR_DIMENSIONS;
        assert_eq!(
            copy.unwrap()[0].get::<i64>(dims, int, 8).unwrap(),
            [2, 1, 8, 9, 11]
        );
        let x = &parts[0];
        assert_eq!(x.get::<i64>(dims, int, 8).unwrap(), [2, 8, 9, 11]);
        let st = x
            .get::<i64>(Name::CUDNN_ATTR_TENSOR_STRIDES, int, 8)
            .unwrap();
        assert_eq!(st, strides(key.x, true));
        assert_eq!(x.get::<i64>(uid, int, 1).unwrap(), [UIDS[0]]);
        let ty = x.get::<u32>(
            Name::CUDNN_ATTR_TENSOR_DATA_TYPE,
            Type::CUDNN_TYPE_DATA_TYPE,
            1,
        );
        assert_eq!(ty.unwrap(), [cudnnDataType_t::CUDNN_DATA_HALF as u32]);
    }

    /// x, w and y have distinct, nonzero ids.
    #[test]
    fn unique_ids() {
        let mut ids = UIDS.to_vec();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 3);
        assert!(ids.iter().all(|&i| i > 0));
    }
}
