//! cuBLAS GEMMs: `cublasGemmStridedBatchedEx` on the device's compute stream for the row-major
//! strided views `bmm` receives (f32, f64, and f16/bf16 with f32 accumulation). cuBLAS is loaded
//! at run time; when it is absent, switched off (`KILN_CUBLAS=0`), or cannot express a view's
//! strides as a leading dimension, the built-in tiled kernel serves instead.
//!
//! Each GEMM binds the device's one handle to this thread's stream (a graph capture's side
//! stream while capturing) and to a workspace from kiln's caching allocator, as cuBLAS's "CUDA
//! Graphs support" asks (cuBLAS then allocates nothing inside a capture), and binds it back
//! afterwards; see [`super::vendor`]. Eager GEMMs take the same workspace, so a replayed GEMM
//! runs the kernel its eager twin ran.
//!
//! cuBLAS is column-major: a row-major C = A·B is the column-major Cᵀ = Bᵀ·Aᵀ, so the operands
//! swap and each one's unit stride decides whether it enters transposed.

use super::switch::cublas_enabled;
use super::vendor::{call_stream, OnStream, StreamHandle};
use super::{graph, CudaDevice, CudaStorage};
use crate::{DType, Error, Result};
use cudarc::cublas::sys::{cublasComputeType_t, cublasGemmAlgo_t, cublasOperation_t, cudaDataType};
use cudarc::cublas::{result, sys, CudaBlas};
use cudarc::driver::sys::CUstream;
use kiln_kernels::cuda::gemm::GemmArgs;
use std::ffi::c_void;
use std::sync::{Arc, Mutex};

/// The cuBLAS entry points kiln calls; a library lacking one is not used.
const SYMBOLS: [&str; 5] = [
    "cublasCreate_v2",
    "cublasSetStream_v2",
    "cublasSetWorkspace_v2",
    "cublasDestroy_v2",
    "cublasGemmStridedBatchedEx",
];

/// The workspace each GEMM gets, as cuBLAS's documentation recommends: 32 MiB on Hopper and
/// newer (sm_90+), 4 MiB before.
fn workspace_bytes(arch: u32) -> usize {
    if arch >= 90 {
        32 << 20
    } else {
        4 << 20
    }
}

/// A cuBLAS handle, on one device's compute stream between calls; the lock keeps a call's
/// stream and workspace binding its own.
pub(super) struct Blas(Mutex<CudaBlas>);

/// The raw handle, for [`OnStream`].
struct Handle(sys::cublasHandle_t);

impl StreamHandle for Handle {
    const NAME: &'static str = "cuBLAS";

    unsafe fn set_stream(&mut self, stream: CUstream) -> Result<()> {
        // SAFETY: the caller's contract (a live handle and stream of one context).
        unsafe { result::set_stream(self.0, stream as sys::cudaStream_t) }
            .map_err(|e| Error::Cuda(format!("cublasSetStream: {e}")))
    }

    unsafe fn set_workspace(&mut self, ptr: u64, bytes: usize) -> Result<()> {
        // SAFETY: the caller's contract (a live handle; the memory outlives its binding).
        unsafe { sys::cublasSetWorkspace_v2(self.0, ptr as *mut c_void, bytes) }
            .result()
            .map_err(|e| Error::Cuda(format!("cublasSetWorkspace ({bytes} bytes): {e}")))
    }
}

impl Blas {
    /// Loads cuBLAS and creates the handle; Err says why cuBLAS cannot serve.
    pub(super) fn open(dev: &CudaDevice) -> std::result::Result<Blas, String> {
        // SAFETY: only tries to open the shared library by its candidate names.
        if !unsafe { sys::is_culib_present() } {
            return Err("libcublas was not found on the library path".into());
        }
        // SAFETY: the library opens (checked above), so `culib` returns it instead of panicking.
        let lib = unsafe { sys::culib() };
        for name in SYMBOLS {
            // SAFETY: a symbol lookup; the pointer is neither called nor kept.
            unsafe { lib.get::<*const c_void>(name.as_bytes()) }
                .map_err(|e| format!("libcublas lacks {name}: {e}"))?;
        }
        dev.bind().map_err(|e| e.to_string())?;
        CudaBlas::new(dev.compute_stream().clone())
            .map(|b| Blas(Mutex::new(b)))
            .map_err(|e| format!("cublasCreate: {e}"))
    }
}

/// Whether cuBLAS is loaded on `dev` (it serves GEMMs unless switched off); Err says why not.
pub fn cublas_loaded(dev: &CudaDevice) -> Result<()> {
    dev.blas()
        .map(|_| ())
        .map_err(|why| Error::Cuda(format!("cuBLAS is not available: {why}")))
}

/// A row-major matrix X\[rows, cols\] with strides (rs, cs) as cuBLAS sees Xᵀ: op(M) for a
/// column-major M with leading dimension ld; None when neither stride is a unit one.
fn as_transposed(
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
) -> Option<(cublasOperation_t, i32)> {
    let (op, ld) = if (cs == 1 || cols <= 1) && (rows <= 1 || rs >= cols.max(1)) {
        // M = Xᵀ itself: cols × rows, columns `rs` apart.
        let ld = if rows <= 1 { cols.max(1) } else { rs };
        (cublasOperation_t::CUBLAS_OP_N, ld)
    } else if (rs == 1 || rows <= 1) && (cols <= 1 || cs >= rows.max(1)) {
        // M = X stored column-major: rows × cols, columns `cs` apart; transposed on the fly.
        let ld = if cols <= 1 { rows.max(1) } else { cs };
        (cublasOperation_t::CUBLAS_OP_T, ld)
    } else {
        return None;
    };
    Some((op, i32::try_from(ld).ok()?))
}

/// The arguments of one `cublasGemmStridedBatchedEx` call (element strides; `a` is kiln's B).
#[derive(Debug, Clone, Copy)]
struct Call {
    trans: [cublasOperation_t; 2],
    mnk: [i32; 3],
    ld: [i32; 3],
    batch_stride: [i64; 3],
    batch: i32,
}

impl Call {
    /// The column-major call computing `g`'s row-major product, if cuBLAS can express it.
    fn new(g: &GemmArgs) -> Option<Call> {
        let (ta, lda) = as_transposed(g.k, g.n, g.b_strides[1], g.b_strides[2])?;
        let (tb, ldb) = as_transposed(g.m, g.k, g.a_strides[1], g.a_strides[2])?;
        let (tc, ldc) = as_transposed(g.m, g.n, g.c_strides[1], g.c_strides[2])?;
        if tc != cublasOperation_t::CUBLAS_OP_N {
            return None;
        }
        let int = |v: usize| i32::try_from(v).ok();
        let long = |v: usize| i64::try_from(v).ok();
        Some(Call {
            trans: [ta, tb],
            mnk: [int(g.n)?, int(g.m)?, int(g.k)?],
            ld: [lda, ldb, ldc],
            batch_stride: [
                long(g.b_strides[0])?,
                long(g.a_strides[0])?,
                long(g.c_strides[0])?,
            ],
            batch: int(g.batch)?,
        })
    }
}

/// cuBLAS's storage and compute types for a dtype (f16/bf16 accumulate in f32).
fn types(dtype: DType) -> Option<(cudaDataType, cublasComputeType_t)> {
    use cublasComputeType_t::{CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_64F};
    match dtype {
        DType::F32 => Some((cudaDataType::CUDA_R_32F, CUBLAS_COMPUTE_32F)),
        DType::F64 => Some((cudaDataType::CUDA_R_64F, CUBLAS_COMPUTE_64F)),
        DType::F16 => Some((cudaDataType::CUDA_R_16F, CUBLAS_COMPUTE_32F)),
        DType::BF16 => Some((cudaDataType::CUDA_R_16BF, CUBLAS_COMPUTE_32F)),
        _ => None,
    }
}

/// Runs `g` (all of A, B, C of `dtype`) on cuBLAS. Ok(false) leaves it to the built-in kernel:
/// cuBLAS is switched off or not loaded, or cannot take this dtype or these strides.
pub(super) fn gemm(dev: &Arc<CudaDevice>, dtype: DType, g: &GemmArgs) -> Result<bool> {
    if !cublas_enabled() {
        return Ok(false);
    }
    let (Some((ty, compute)), Some(call)) = (types(dtype), Call::new(g)) else {
        return Ok(false);
    };
    let Ok(blas) = dev.blas() else {
        return Ok(false);
    };
    // From the capture's pool while capturing (a miss is a CaptureCacheMiss: reserve, retry).
    let workspace = CudaStorage::alloc(dev, DType::U8, workspace_bytes(dev.kernels().arch()))?;
    let scalars64 = [g.alpha as f64, g.beta as f64];
    let scalars32 = [g.alpha, g.beta];
    let (alpha, beta): (*const c_void, *const c_void) = if dtype == DType::F64 {
        (scalars64.as_ptr().cast(), scalars64[1..].as_ptr().cast())
    } else {
        (scalars32.as_ptr().cast(), scalars32[1..].as_ptr().cast())
    };
    let [m, n, k] = call.mnk;
    let [lda, ldb, ldc] = call.ld;
    let [sa, sb, sc] = call.batch_stride;
    dev.bind()?;
    let blas = blas.0.lock().unwrap_or_else(|e| e.into_inner());
    let home = dev.compute_stream().cu_stream();
    let ws = (workspace.ptr(), workspace.len());
    // SAFETY: the handle is live while the device is, and the lock keeps its binding ours; the
    // compute stream and this thread's stream (the capture's, which outlives the capture) belong
    // to the device's context; the workspace drops after the guard.
    let bound =
        unsafe { OnStream::bind(Handle(*blas.handle()), home, call_stream(dev), Some(ws)) }?;
    // SAFETY: the handle works on this thread's stream (the compute stream, or the capture's),
    // which orders this GEMM after the kernels that wrote A and B and before any reader of C. A
    // (kiln's B), B (kiln's A) and C are live device buffers that hold every element the
    // strides reach (the caller's views), `Call::new` checked each leading dimension against its
    // matrix, and alpha/beta are host scalars of the compute type that outlive the call. The
    // workspace goes back to the caching allocator after the handle lets go of it, and stream
    // order keeps its reuse after this GEMM.
    let status = unsafe {
        result::gemm_strided_batched_ex(
            bound.handle().0,
            call.trans[0],
            call.trans[1],
            m,
            n,
            k,
            alpha,
            g.b as *const c_void,
            ty,
            lda,
            sa,
            g.a as *const c_void,
            ty,
            ldb,
            sb,
            beta,
            g.c as *mut c_void,
            ty,
            ldc,
            sc,
            call.batch,
            compute,
            cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
        )
    };
    bound.finish()?;
    match status {
        Ok(()) => {
            graph::note_vendor_call();
            Ok(true)
        }
        Err(e) if e.0 == sys::cublasStatus_t::CUBLAS_STATUS_NOT_SUPPORTED => Ok(false),
        Err(e) => Err(Error::Cuda(format!(
            "cublasGemmStridedBatchedEx ({dtype:?}, batch {}, m {}, n {}, k {}): {e}",
            g.batch, g.m, g.n, g.k
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `cublasGemmStridedBatchedEx` computes (column-major, β = 0), on host slices.
    fn col_major_gemm(c: &Call, a: &[f64], b: &[f64], out: &mut [f64]) {
        let [m, n, k] = c.mnk.map(|v| v as usize);
        let [lda, ldb, ldc] = c.ld.map(|v| v as usize);
        let [sa, sb, sc] = c.batch_stride.map(|v| v as usize);
        let at = |op: cublasOperation_t, ld: usize, i: usize, j: usize| match op {
            cublasOperation_t::CUBLAS_OP_N => i + j * ld,
            _ => j + i * ld,
        };
        for p in 0..c.batch as usize {
            for i in 0..m {
                for j in 0..n {
                    let s: f64 = (0..k)
                        .map(|l| {
                            a[p * sa + at(c.trans[0], lda, i, l)]
                                * b[p * sb + at(c.trans[1], ldb, l, j)]
                        })
                        .sum();
                    out[p * sc + i + j * ldc] = s;
                }
            }
        }
    }

    /// Checks the swapped column-major call against the row-major product of strided views.
    fn check(batch: usize, m: usize, n: usize, k: usize, a_st: [usize; 3], b_st: [usize; 3]) {
        let span = |st: [usize; 3], r: usize, c: usize| {
            (batch - 1) * st[0] + (r - 1) * st[1] + (c - 1) * st[2] + 1
        };
        let a: Vec<f64> = (0..span(a_st, m, k))
            .map(|i| (i % 7) as f64 - 3.0)
            .collect();
        let b: Vec<f64> = (0..span(b_st, k, n))
            .map(|i| (i % 5) as f64 - 1.5)
            .collect();
        let g = GemmArgs {
            batch,
            m,
            n,
            k,
            a: 0,
            a_strides: a_st,
            b: 0,
            b_strides: b_st,
            c: 0,
            c_strides: [m * n, n, 1],
            alpha: 1.0,
            beta: 0.0,
        };
        let call = Call::new(&g).expect("expressible");
        let mut got = vec![0.0; batch * m * n];
        col_major_gemm(&call, &b, &a, &mut got);
        for p in 0..batch {
            for i in 0..m {
                for j in 0..n {
                    let want: f64 = (0..k)
                        .map(|l| {
                            a[p * a_st[0] + i * a_st[1] + l * a_st[2]]
                                * b[p * b_st[0] + l * b_st[1] + j * b_st[2]]
                        })
                        .sum();
                    assert_eq!(got[p * m * n + i * n + j], want, "b{p} ({i}, {j})");
                }
            }
        }
    }

    #[test]
    fn row_major_views_map_to_column_major_calls() {
        let (m, n, k) = (5, 7, 3);
        // Contiguous operands, and each transposed (unit stride on the row axis).
        check(2, m, n, k, [m * k, k, 1], [k * n, n, 1]);
        check(2, m, n, k, [m * k, 1, m], [k * n, n, 1]);
        check(2, m, n, k, [m * k, k, 1], [k * n, 1, k]);
        check(2, m, n, k, [m * k, 1, m], [k * n, 1, k]);
        // Broadcast batch (stride 0), padded rows (slices of wider matrices).
        check(3, m, n, k, [0, k, 1], [k * n, n, 1]);
        check(2, m, n, k, [m * 9, 9, 1], [k * 11, 11, 1]);
        // Degenerate sizes whose strides are arbitrary.
        check(2, 1, n, k, [k, 0, 1], [k * n, n, 1]);
        check(2, m, 1, k, [m * k, k, 1], [k, 1, 0]);
        check(1, m, n, 1, [m, 1, 0], [n, 0, 1]);
    }

    #[test]
    fn views_without_a_unit_stride_fall_back() {
        let g = GemmArgs {
            batch: 1,
            m: 4,
            n: 4,
            k: 4,
            a: 0,
            a_strides: [32, 8, 2],
            b: 0,
            b_strides: [16, 4, 1],
            c: 0,
            c_strides: [16, 4, 1],
            alpha: 1.0,
            beta: 0.0,
        };
        assert!(Call::new(&g).is_none());
        // Overlapping rows (leading dimension below the row length) cannot be described either.
        let g = GemmArgs {
            a_strides: [16, 2, 1],
            ..g
        };
        assert!(Call::new(&g).is_none());
    }
}
