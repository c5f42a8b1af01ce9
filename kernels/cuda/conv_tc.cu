#line 1 "conv_tc.cu"
// 2-d convolution on tensor cores, forward and both backwards, NCHW or NHWC, f16/bf16 on sm_80+:
// conv.cu's implicit GEMMs (the same per-group orientation, the same loaders from
// conv_operands.cuh) through tc_tile.cuh's main loop instead of tile_gemm.cuh's. Host side:
// src/cuda/conv.rs (ConvAlgo::TensorCore). f32 accumulation; y and dx rounded once to the
// dtype, the filter gradient's slices written in f32 to the workspace that conv_reduce_splits
// (conv.cu) sums into dw.
//
// Launch: 128 threads a block, grid.x the 64×64 output tiles (column tiles fastest), grid.z the
// groups (times the filter gradient's reduction slices). Each operand comes by 16-byte cp.async
// chunks when `a_async`/`b_async` says so, else by register-staged gathers (tc_tile.cuh). The
// host asks for chunks where 8 consecutive GEMM elements are 8 adjacent, 16-byte aligned ones:
//   forward    NHWC X̂ [q, (r,s,c)] when C/g and C are multiples of 8 (8 channels of one tap,
//              or a zero chunk for a padding tap); the weights [o, (c,r,s)] or [o, (r,s,c)]
//              (either layout) when C/g·KH·KW is;
//   bwd data   NHWC dŶ [q', (r,s,o)] when OC/g and OC are (8 output channels of one tap, or
//              zero where no output reads the pixel), NHWC W [(r,s,o), c] when C/g is;
//   bwd filter NHWC dY [o, q] (8 channels of one pixel) when OC/g and OC are, NHWC X̂ᵀ
//              [(r,s,c), q] when C/g and C are.
// The NCHW gathers (pixels adjacent only along a row, stride and padding in between) always go
// through registers, staged pixel-adjacent.

// ---- kernels -----------------------------------------------------------------------------------

template <typename T, bool CL>
__device__ __forceinline__ void conv_tc_fwd(const T* x, const T* w, T* y, const ConvGeom& g,
                                            bool a_async, bool b_async) {
  const int nq = g.n * g.d_p.d, kc = g.cg * g.d_khw.d;
  const int M = CL ? nq : g.ocg, N = CL ? g.ocg : nq;
  int m0, n0;
  tc_origin(N, m0, n0);
  for (int grp = blockIdx.z; grp < g.groups; grp += gridDim.z) {
    Strided<T> wl{w + (i64)grp * g.ocg * kc, kc, 1, g.ocg, true};
    Im2col<T, CL> xl{x, g, grp};
    float acc[2][4][4];
    if constexpr (CL) {
      tc_tile<T, false, false>(xl, a_async, wl, b_async, M, N, 0, kc, m0, n0, acc);
      StoreAffine<T> st{y + grp * g.ocg, g.oc, 1};
      tc_store(st, acc, M, N, m0, n0, 1.0f, 0.0f);
    } else {
      tc_tile<T, false, true>(wl, a_async, xl, b_async, M, N, 0, kc, m0, n0, acc);
      StorePlanes<T> st{y + (i64)grp * g.ocg * g.d_p.d, g.d_p, (i64)g.oc * g.d_p.d};
      tc_store(st, acc, M, N, m0, n0, 1.0f, 0.0f);
    }
  }
}

template <typename T, bool CL>
__device__ __forceinline__ void conv_tc_bwd_data(const T* dy, const T* w, T* dx, const ConvGeom& g,
                                                 bool a_async, bool b_async) {
  const int nq = g.n * g.d_hw.d, kd = g.ocg * g.d_khw.d, kc = g.cg * g.d_khw.d;
  const int M = CL ? nq : g.cg, N = CL ? g.cg : nq;
  int m0, n0;
  tc_origin(N, m0, n0);
  for (int grp = blockIdx.z; grp < g.groups; grp += gridDim.z) {
    WeightT<T, CL> wl{w + (i64)grp * g.ocg * kc, g};
    Col2imDy<T, CL> dl{dy, g, grp};
    float acc[2][4][4];
    if constexpr (CL) {
      tc_tile<T, false, true>(dl, a_async, wl, b_async, M, N, 0, kd, m0, n0, acc);
      StoreAffine<T> st{dx + grp * g.cg, g.c, 1};
      tc_store(st, acc, M, N, m0, n0, 1.0f, 0.0f);
    } else {
      tc_tile<T, false, true>(wl, a_async, dl, b_async, M, N, 0, kd, m0, n0, acc);
      StorePlanes<T> st{dx + (i64)grp * g.cg * g.d_hw.d, g.d_hw, (i64)g.c * g.d_hw.d};
      tc_store(st, acc, M, N, m0, n0, 1.0f, 0.0f);
    }
  }
}

// Slice `split` of the q-reduction goes to out + split·OC·KC (f32).
template <typename T, bool CL>
__device__ __forceinline__ void conv_tc_bwd_filter(const T* x, const T* dy, float* out,
                                                   const ConvGeom& g, int splits, int chunk,
                                                   bool a_async, bool b_async) {
  const int nq = g.n * g.d_p.d, kc = g.cg * g.d_khw.d;
  int m0, n0;
  tc_origin(kc, m0, n0);
  for (int z = blockIdx.z; z < g.groups * splits; z += gridDim.z) {
    const int grp = z / splits, split = z - grp * splits;
    const int kbeg = split * chunk, kend = min(nq, kbeg + chunk);
    Im2colT<T, CL> xl{x, g, grp};
    float acc[2][4][4];
    if constexpr (CL) {
      Strided<T> dl{dy + grp * g.ocg, 1, g.oc, g.ocg, false};
      tc_tile<T, true, true>(dl, a_async, xl, b_async, g.ocg, kc, kbeg, kend, m0, n0, acc);
    } else {
      DyRows<T> dl{dy, g, grp};
      tc_tile<T, false, false>(dl, a_async, xl, b_async, g.ocg, kc, kbeg, kend, m0, n0, acc);
    }
    StoreAffine<float> st{out + (i64)split * g.oc * kc + (i64)grp * g.ocg * kc, kc, 1};
    tc_store(st, acc, g.ocg, kc, m0, n0, 1.0f, 0.0f);
  }
}

// ---- dtypes ------------------------------------------------------------------------------------

#define CONV_TC(T, S, L, CL)                                                                      \
  extern "C" __global__ void __launch_bounds__(TC_THREADS) conv_tc_fwd_##L##_##S(                \
      const T* x, const T* w, T* y, ConvGeom g, int a_async, int b_async) {                      \
    conv_tc_fwd<T, CL>(x, w, y, g, a_async != 0, b_async != 0);                                  \
  }                                                                                              \
  extern "C" __global__ void __launch_bounds__(TC_THREADS) conv_tc_bwd_data_##L##_##S(           \
      const T* dy, const T* w, T* dx, ConvGeom g, int a_async, int b_async) {                    \
    conv_tc_bwd_data<T, CL>(dy, w, dx, g, a_async != 0, b_async != 0);                           \
  }                                                                                              \
  extern "C" __global__ void __launch_bounds__(TC_THREADS) conv_tc_bwd_filter_##L##_##S(         \
      const T* x, const T* dy, float* out, ConvGeom g, int splits, int chunk, int a_async,       \
      int b_async) {                                                                             \
    conv_tc_bwd_filter<T, CL>(x, dy, out, g, splits, chunk, a_async != 0, b_async != 0);         \
  }
CONV_TC(f16, f16, nchw, false)
CONV_TC(f16, f16, nhwc, true)
CONV_TC(bf16, bf16, nchw, false)
CONV_TC(bf16, bf16, nhwc, true)
