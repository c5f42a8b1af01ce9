#line 1 "gemm.cu"
// Batched strided GEMM: C[b] = alpha·A[b]·B[b] + beta·C[b] for A [batch, m, k], B [batch, k, n],
// C [batch, m, n], each with its own element strides (batch, row, column), so transposed and
// broadcast operands need no copies. Host side: src/cuda/gemm.rs. The loop is tile_gemm.cuh's,
// the parameters (GemmParams; a_flag/b_flag: stage walking k) operands.cuh's.
//
// Launch: 256 threads a block; grid.x walks the output tiles (column tiles fastest), grid.z the
// batch (looping when batch exceeds the grid). Half inputs (f16, bf16) are widened to f32 when
// staged in shared memory and accumulate in f32; f64 accumulates in f64. beta == 0 never reads C.

// ---- kernels -----------------------------------------------------------------------------------

template <typename T, class C> __device__ __forceinline__ void gemm(const GemmParams& p) {
  typedef typename Acc<T>::t A;
  const int tiles_n = (p.n + C::BN - 1) / C::BN;
  const int m0 = blockIdx.x / tiles_n * C::BM, n0 = blockIdx.x % tiles_n * C::BN;
  for (int b = blockIdx.z; b < p.batch; b += gridDim.z) {
    Strided<T> la{(const T*)p.a + b * p.sa[0], p.sa[1], p.sa[2], p.m, p.a_flag != 0};
    Strided<T> lb{(const T*)p.b + b * p.sb[0], p.sb[2], p.sb[1], p.n, p.b_flag != 0};
    StoreAffine<T> st{(T*)p.c + b * p.sc[0], p.sc[1], p.sc[2]};
    tile_gemm<C>(la, lb, st, p.m, p.n, 0, p.k, m0, n0, A(p.alpha), A(p.beta));
  }
}

// ---- dtypes ------------------------------------------------------------------------------------

#define GEMM_KERNEL(T, S, C, TILE)                                                              \
  extern "C" __global__ void __launch_bounds__(KILN_TILE_THREADS, 1) gemm_##TILE##_##S(GemmParams p) { \
    gemm<T, C>(p);                                                                              \
  }
GEMM_KERNEL(float, f32, Tile64, t64)
GEMM_KERNEL(double, f64, Tile64, t64)
GEMM_KERNEL(f16, f16, Tile64, t64)
GEMM_KERNEL(bf16, bf16, Tile64, t64)
// No 128×128 tile for f64: 64 double accumulators take about 250 registers a thread, on the
// edge of spilling, for a dtype GPUs run at a fraction of f32 speed anyway.
GEMM_KERNEL(float, f32, Tile128, t128)
GEMM_KERNEL(f16, f16, Tile128, t128)
GEMM_KERNEL(bf16, bf16, Tile128, t128)
