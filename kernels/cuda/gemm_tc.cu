#line 1 "gemm_tc.cu"
// Batched strided GEMM on tensor cores: C[b] = alpha·A[b]·B[b] + beta·C[b] for f16 or bf16
// A [batch, m, k], B [batch, k, n], C [batch, m, n], each with its own element strides (batch,
// row, column), so transposed and broadcast operands need no copies; f32 accumulation, C in the
// input dtype, rounded once. Host side: src/cuda/gemm_tc.rs. The loop is tc_tile.cuh's (sm_80+).
//
// Launch: one block per output tile, grid.x walking the tiles (column tiles fastest), grid.z the
// batch (looping when batch exceeds the grid). gemm_tc_<layouts>_<dtype> runs Tc64 (128 threads,
// 64×64 tiles), gemm_tc_t128_<layouts>_<dtype> Tc128 (256 threads, 128×128 tiles); both take
// TcShape::SMEM bytes of dynamic shared memory. The kernel name gives the operands' layouts as
// BLAS does: A "n" has k adjacent (row-major), "t" m adjacent; B "n" has n adjacent, "t" k
// adjacent; each is staged in shared memory the way it lies. Operands that have neither index
// adjacent run as "n" through gathers. GemmParams' (operands.cuh) `a_flag`/`b_flag` say whether
// 16-byte cp.async chunks may serve (unit stride along the staged index, the other strides
// multiples of 8 elements, a 16-byte aligned base), else the operand is gathered through
// registers. beta == 0 never reads C.

// ---- kernels -----------------------------------------------------------------------------------

// AT: A stored m-adjacent; BT: B stored k-adjacent.
template <class C, typename T, bool AT, bool BT>
__device__ __forceinline__ void gemm_tc(const GemmParams& p) {
  int m0, n0;
  tc_origin<C>(p.n, m0, n0);
  for (int b = blockIdx.z; b < p.batch; b += gridDim.z) {
    // Both operands as loaders over their rows: A's are m, B's are n.
    Strided<T> la{(const T*)p.a + b * p.sa[0], p.sa[1], p.sa[2], p.m, !AT};
    Strided<T> lb{(const T*)p.b + b * p.sb[0], p.sb[2], p.sb[1], p.n, BT};
    TcAcc<C> acc;
    tc_tile<C, T, AT, !BT>(la, p.a_flag != 0, lb, p.b_flag != 0, p.m, p.n, 0, p.k, m0, n0, acc);
    StoreAffine<T> st{(T*)p.c + b * p.sc[0], p.sc[1], p.sc[2]};
    tc_store<C>(st, acc, p.m, p.n, m0, n0, p.alpha, p.beta);
  }
}

// ---- dtypes ------------------------------------------------------------------------------------

// TAG names the shape in the kernel's name: empty for Tc64, _t128 for Tc128.
#define GEMM_TC_KERNEL(T, S, L, AT, BT, C, TAG)                                                  \
  extern "C" __global__ void __launch_bounds__(C::THREADS)                                       \
      gemm_tc##TAG##_##L##_##S(GemmParams p) {                                                   \
    gemm_tc<C, T, AT, BT>(p);                                                                    \
  }
#define GEMM_TC_DTYPE(T, S, C, TAG)                                                              \
  GEMM_TC_KERNEL(T, S, nn, false, false, C, TAG)                                                 \
  GEMM_TC_KERNEL(T, S, nt, false, true, C, TAG)                                                  \
  GEMM_TC_KERNEL(T, S, tn, true, false, C, TAG)                                                  \
  GEMM_TC_KERNEL(T, S, tt, true, true, C, TAG)
GEMM_TC_DTYPE(f16, f16, Tc64, )
GEMM_TC_DTYPE(bf16, bf16, Tc64, )
GEMM_TC_DTYPE(f16, f16, Tc128, _t128)
GEMM_TC_DTYPE(bf16, bf16, Tc128, _t128)
