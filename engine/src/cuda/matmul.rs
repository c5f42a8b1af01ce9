//! Batched matrix products on the device: cuBLAS when it is loaded and enabled, else kiln's
//! strided GEMMs: tensor cores (`gemm_tc.cu`) for f16/bf16 on sm_80+ unless switched off
//! (`KILN_TENSOR_CORES=0`), the SIMT tiles (`gemm.cu`) for the rest. All read transposed and
//! broadcast operands through their strides, without copies.

use super::elementwise::float_ty;
use super::{cublas, switch, CudaStorage};
use crate::{Error, Layout, Result};
use kiln_kernels::cuda::gemm::{gemm, GemmArgs};
use kiln_kernels::cuda::gemm_tc::{self, gemm_tc};

fn strides3(l: &Layout) -> [usize; 3] {
    let s = l.strides();
    [s[0], s[1], s[2]]
}

/// out\[b\] = a\[b\] · b\[b\] for rank-3 views; the result is contiguous \[batch, m, n\].
pub fn bmm(a: (&CudaStorage, &Layout), b: (&CudaStorage, &Layout)) -> Result<CudaStorage> {
    let (la, lb) = (a.1, b.1);
    let (&[batch, m, k], &[_, _, n]) = (la.shape(), lb.shape()) else {
        return Err(Error::ShapeMismatch {
            op: "matmul",
            lhs: la.shape().to_vec(),
            rhs: lb.shape().to_vec(),
        });
    };
    if a.0.dtype() != b.0.dtype() {
        return Err(Error::DTypeMismatch {
            op: "matmul",
            lhs: a.0.dtype(),
            rhs: b.0.dtype(),
        });
    }
    let ty = float_ty("matmul", a.0.dtype())?;
    let dev = a.0.device();
    let out = CudaStorage::alloc(dev, a.0.dtype(), batch * m * n)?;
    if out.is_empty() {
        return Ok(out);
    }
    if k == 0 {
        return super::elementwise::full(dev, a.0.dtype(), batch * m * n, 0.0);
    }
    let args = GemmArgs {
        batch,
        m,
        n,
        k,
        a: a.0.ptr_at(la.offset()),
        a_strides: strides3(la),
        b: b.0.ptr_at(lb.offset()),
        b_strides: strides3(lb),
        c: out.ptr(),
        c_strides: [m * n, n, 1],
        alpha: 1.0,
        beta: 0.0,
    };
    if !cublas::gemm(dev, a.0.dtype(), &args)? {
        let kern = dev.kernels();
        if switch::tensor_cores_enabled() && gemm_tc::supported(kern, ty) {
            gemm_tc(kern, ty, &args)?;
        } else {
            gemm(kern, ty, &args)?;
        }
    }
    Ok(out)
}
