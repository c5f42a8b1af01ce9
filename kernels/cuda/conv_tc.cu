#line 1 "conv_tc.cu"
// 2-d convolution on tensor cores, forward and both backwards, NCHW or NHWC, f16/bf16 on sm_80+:
// conv.cu's implicit GEMMs (the same per-group orientation, the same loaders from
// conv_operands.cuh) through tc_tile.cuh's main loop instead of tile_gemm.cuh's. Host side:
// src/cuda/conv.rs (ConvAlgo::TensorCore). f32 accumulation; y and dx rounded once to the
// dtype, the filter gradient's slices written in f32 to the workspace that conv_reduce_splits
// (conv.cu) sums into dw.
//
// Launch: one block per output tile, grid.x the tiles (column tiles fastest), grid.z the groups
// (times the filter gradient's reduction slices); conv_tc_<pass>_<layout>_<dtype> runs Tc64
// (128 threads, 64×64 tiles), conv_tc_<pass>_t128_<layout>_<dtype> Tc128 (256 threads, 128×128
// tiles), each with TcShape::SMEM bytes of dynamic shared memory (tc_tile.cuh). Each operand
// comes by 16-byte cp.async chunks when `a_async`/`b_async` says so, else by register-staged
// gathers (tc_tile.cuh). The host asks for chunks where 8 consecutive GEMM elements are 8 adjacent, 16-byte aligned ones:
//   forward    NHWC X̂ [q, (r,s,c)] when C/g and C are multiples of 8 (8 channels of one tap,
//              or a zero chunk for a padding tap); the weights [o, (c,r,s)] or [o, (r,s,c)]
//              (either layout) when C/g·KH·KW is;
//   bwd data   NHWC dŶ [q', (r,s,o)] when OC/g and OC are (8 output channels of one tap, or
//              zero where no output reads the pixel), NHWC W [(r,s,o), c] when C/g is;
//   bwd filter NHWC dY [o, q] (8 channels of one pixel) when OC/g and OC are, NHWC X̂ᵀ
//              [(r,s,c), q] when C/g and C are.
// The NCHW gathers (pixels adjacent only along a row, stride and padding in between) always go
// through registers, staged pixel-adjacent.
//
// conv_tc_fwd_stats_* is the forward whose epilogue also writes BatchNorm's per-channel partial
// statistics of the tile it stored, so a training BN right after it skips bn_partials (a full
// read of y): for each run pt of 64 output pixels (a 64-pixel tile, or half a 128-pixel one) and
// output channel c, stats[(pt·OC + c)·2] = Σv and stats[(pt·OC + c)·2 + 1] = Σ(v - run mean)²
// over the run's pixels (a two-pass centered sum over registers, no cancellation), combined
// exactly in double by bn_finalize_tiles (bn_relu.cu, Chan's formula). v is the value as stored
// (rounded to T), so the statistics are those of the y the BN reads, equal to bn_partials' up to
// summation order. Cost: 1/16 of y's bytes written (two f32 per 64 values of 2 bytes) and a few
// shuffles per tile.
//
// conv_tc_fwd_bnact_* and conv_tc_bwd_filter_bnact_* convolve h = act(y·scale[c] + shift[c]) (a
// training BatchNorm's apply, and ReLU, with the finalize's scale and shift) without h in
// memory: the activation operand's loader reads y and transforms each in-bounds element as it
// gathers it, rounded to T as bn_act_fwd rounds h; padding taps stay 0 (the convolution pads h,
// not y). That operand always goes through the register-staged gathers (a cp.async copy cannot
// touch values); the other keeps its chunks where the host allows them. The forward's `stats`
// (null: none) is the statistics epilogue above.

// ---- epilogue statistics -----------------------------------------------------------------------

// A value as the store wrote it: rounded to T.
template <typename T> __device__ __forceinline__ float as_stored(float v) {
  return to_acc(from_acc<T>(v));
}

// Pixels per run of the statistics: every tile's pixel extent is a multiple of it, and the host
// (conv.rs STATS_ROWS) lays out the partials by it, whatever the tile.
#define TC_STATS_RUN 64

// Writes the per-channel (sum, centered M2) of each 64-pixel run of the M×N tile at (m0, n0)
// whose accumulators are `acc` (tc_store's fragment layout), values rounded to T. Channels are
// columns (CL: rows are pixels) or rows (NCHW: columns are pixels); channel j of the tile is
// output channel ch0 + j, its pair for the run starting at pixel p goes to
// stats[(p/64·oc + ch0 + j)·2]. Two passes over the registers: each run's channel sums (lanes,
// then the warps of the run, through shared memory), then Σ(v - run sum/count)². All threads
// must call it.
template <class C, typename T, bool CL>
__device__ __forceinline__ void tc_channel_stats(const TcAcc<C>& acc, int M, int N, int m0, int n0,
                                                 int oc, int ch0, float* stats) {
  // Along the pixel axis: the tile's extent, a warp's, the warps; the channels of the tile.
  constexpr int PT = CL ? C::BM : C::BN, PW = CL ? C::WM : C::WN;
  constexpr int WP = CL ? C::WARPS_M : C::WARPS_N, CH = CL ? C::BN : C::BM;
  constexpr int RW = TC_STATS_RUN / PW;  // warps a run spans
  static_assert(PT % TC_STATS_RUN == 0 && TC_STATS_RUN % PW == 0, "warps tile the runs");
  __shared__ float red[2][WP][CH];  // [sum, M2][warp along the pixels][channel of the tile]
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, t = lane % 4;
  int wm, wn;
  tc_warp<C>(wm, wn);
  const int wp = CL ? warp / C::WARPS_N : warp % C::WARPS_N, run0 = wp / RW * RW;
  const int p0 = (CL ? m0 : n0) + run0 * PW, P = CL ? M : N;
  const float count = (float)max(1, min(TC_STATS_RUN, P - p0));
  // The sum over this warp's run of red[pass][.][c].
  auto run_sum = [&](int pass, int c) {
    float v = 0.0f;
#pragma unroll
    for (int w = 0; w < RW; w++) v += red[pass][run0 + w][c];
    return v;
  };
  if constexpr (CL) {
    // This thread's channels are columns wn + j·8 + 2t + e1, its pixels rows wm + i·16 + g + 8·e2;
    // lanes of one t (g = 0..7) share channels.
    float mean[C::NJ][2];
#pragma unroll
    for (int pass = 0; pass < 2; pass++) {
#pragma unroll
      for (int j = 0; j < C::NJ; j++)
#pragma unroll
        for (int e1 = 0; e1 < 2; e1++) {
          float s = 0.0f;
#pragma unroll
          for (int i = 0; i < C::MI; i++)
#pragma unroll
            for (int e2 = 0; e2 < 2; e2++) {
              if (m0 + wm + i * 16 + g + 8 * e2 >= M) continue;
              const float v = as_stored<T>(acc[i][j][e2 * 2 + e1]);
              s += pass == 0 ? v : (v - mean[j][e1]) * (v - mean[j][e1]);
            }
          s += __shfl_xor_sync(0xffffffffu, s, 4);
          s += __shfl_xor_sync(0xffffffffu, s, 8);
          s += __shfl_xor_sync(0xffffffffu, s, 16);
          if (g == 0) red[pass][wp][wn + j * 8 + 2 * t + e1] = s;
        }
      __syncthreads();
      if (pass == 0) {
#pragma unroll
        for (int j = 0; j < C::NJ; j++)
#pragma unroll
          for (int e1 = 0; e1 < 2; e1++) mean[j][e1] = run_sum(0, wn + j * 8 + 2 * t + e1) / count;
      }
    }
  } else {
    // This thread's channels are rows wm + i·16 + g + 8·e2, its pixels columns wn + j·8 + 2t + e1;
    // lanes of one g (t = 0..3) share channels.
    float mean[C::MI][2];
#pragma unroll
    for (int pass = 0; pass < 2; pass++) {
#pragma unroll
      for (int i = 0; i < C::MI; i++)
#pragma unroll
        for (int e2 = 0; e2 < 2; e2++) {
          float s = 0.0f;
#pragma unroll
          for (int j = 0; j < C::NJ; j++)
#pragma unroll
            for (int e1 = 0; e1 < 2; e1++) {
              if (n0 + wn + j * 8 + 2 * t + e1 >= N) continue;
              const float v = as_stored<T>(acc[i][j][e2 * 2 + e1]);
              s += pass == 0 ? v : (v - mean[i][e2]) * (v - mean[i][e2]);
            }
          s += __shfl_xor_sync(0xffffffffu, s, 1);
          s += __shfl_xor_sync(0xffffffffu, s, 2);
          if (t == 0) red[pass][wp][wm + i * 16 + g + 8 * e2] = s;
        }
      __syncthreads();
      if (pass == 0) {
#pragma unroll
        for (int i = 0; i < C::MI; i++)
#pragma unroll
          for (int e2 = 0; e2 < 2; e2++) mean[i][e2] = run_sum(0, wm + i * 16 + g + 8 * e2) / count;
      }
    }
  }
  // Each (run, channel) pair of the tile inside the output is written by one thread.
  for (int idx = threadIdx.x; idx < PT / TC_STATS_RUN * CH; idx += C::THREADS) {
    const int run = idx / CH, c = idx % CH, w0 = run * RW;
    const int p = (CL ? m0 : n0) + run * TC_STATS_RUN, ch = (CL ? n0 : m0) + c;
    if (p >= P || ch >= (CL ? N : M)) continue;
    float sum = 0.0f, m2 = 0.0f;
#pragma unroll
    for (int w = 0; w < RW; w++) {
      sum += red[0][w0 + w][c];
      m2 += red[1][w0 + w][c];
    }
    float* o = stats + ((i64)(p / TC_STATS_RUN) * oc + ch0 + ch) * 2;
    o[0] = sum;
    o[1] = m2;
  }
  // A later tile of this block (the group loop) rewrites `red`.
  __syncthreads();
}

// ---- BatchNorm-apply prologue ------------------------------------------------------------------

// Loader L over y (Im2col or Im2colT) whose elements are act(y·scale[c] + shift[c]), c the
// channel of the group the element reads (L::chan); `scale` and `shift` start at the group's
// first channel.
template <typename T, class L> struct BnActOp : L {
  const float* scale;
  const float* shift;
  bool relu;
};

// tc_bits for a prologue loader (found by argument-dependent lookup when TcFill gathers):
// transformed in f32 and rounded to T as bn_act_fwd does; 0 where `at` says padding.
template <typename T, class L>
__device__ __forceinline__ unsigned tc_bits(const BnActOp<T, L>& l, const typename L::Slot& s,
                                            int k) {
  const i64 o = l.at(s, k);
  if (o < 0) return 0u;
  const int c = l.chan(s, k);
  const float v = to_acc(l.p[o]) * l.scale[c] + l.shift[c];
  return (unsigned)from_acc<T>(l.relu ? fmaxf(v, 0.0f) : v).bits;
}

// The filter gradient's prologue loader: Im2colT's rows are (tap, channel) pairs, so each row's
// scale and shift are fetched once with its slot instead of per element.
template <typename T, class L> struct BnActRow : L {
  const float* scale;
  const float* shift;
  bool relu;
  struct Slot : L::Slot {
    float sc, sh;
  };
  __device__ Slot slot(int r) const {
    Slot s;
    static_cast<typename L::Slot&>(s) = L::slot(r);
    const int c = s.ok ? L::chan(s, 0) : 0;
    s.sc = s.ok ? scale[c] : 0.0f;
    s.sh = s.ok ? shift[c] : 0.0f;
    return s;
  }
};

template <typename T, class L>
__device__ __forceinline__ unsigned tc_bits(const BnActRow<T, L>& l,
                                            const typename BnActRow<T, L>::Slot& s, int k) {
  const i64 o = l.at(s, k);
  if (o < 0) return 0u;
  const float v = to_acc(l.p[o]) * s.sc + s.sh;
  return (unsigned)from_acc<T>(l.relu ? fmaxf(v, 0.0f) : v).bits;
}

// The prologue's arguments (scale null: no prologue, the loader reads x as it is).
struct BnActArgs {
  const float* scale;
  const float* shift;
  bool relu;
};

// Groups of up to this many channels have the prologue's scale and shift staged in shared memory
// once per group (4 KB), so the gathers' per-element lookups leave global memory; wider groups
// read them from global memory (cache hits on a GPU).
#define BN_SMEM_CH 512

// Group grp's scale and shift: shared copies where they fit, else global. All threads call it.
__device__ __forceinline__ BnActArgs bn_stage(BnActArgs pro, const ConvGeom& g, int grp) {
  __shared__ float ss[2][BN_SMEM_CH];
  const i64 c0 = (i64)grp * g.cg;
  if (g.cg > BN_SMEM_CH) return {pro.scale + c0, pro.shift + c0, pro.relu};
  // A previous group's gathers (the grid-stride loop) may still read the copies.
  __syncthreads();
  for (int c = threadIdx.x; c < g.cg; c += blockDim.x) {
    ss[0][c] = pro.scale[c0 + c];
    ss[1][c] = pro.shift[c0 + c];
  }
  __syncthreads();
  return {ss[0], ss[1], pro.relu};
}

// Loader L over x for group grp, wrapped in the prologue when PRO (all threads call it).
template <typename T, class L, bool PRO>
__device__ __forceinline__ auto x_operand(const T* x, const ConvGeom& g, int grp, BnActArgs pro) {
  if constexpr (PRO) {
    const BnActArgs p = bn_stage(pro, g, grp);
    return BnActOp<T, L>{{x, g, grp}, p.scale, p.shift, p.relu};
  } else {
    return L{x, g, grp};
  }
}

// The filter gradient's Im2colT over x for group grp, wrapped in the per-row prologue when PRO.
template <typename T, bool CL, bool PRO>
__device__ __forceinline__ auto x_row_operand(const T* x, const ConvGeom& g, int grp,
                                              BnActArgs pro) {
  if constexpr (PRO) {
    const i64 c0 = (i64)grp * g.cg;
    return BnActRow<T, Im2colT<T, CL>>{{x, g, grp}, pro.scale + c0, pro.shift + c0, pro.relu};
  } else {
    return Im2colT<T, CL>{x, g, grp};
  }
}

// ---- kernels -----------------------------------------------------------------------------------

// `stats` null: the plain forward; else the epilogue also writes the tile statistics. PRO: the
// activation operand is act(x·scale + shift) (`pro`), always gathered.
template <class C, typename T, bool CL, bool PRO = false>
__device__ __forceinline__ void conv_tc_fwd(const T* x, const T* w, T* y, const ConvGeom& g,
                                            bool a_async, bool b_async, float* stats,
                                            BnActArgs pro = {}) {
  const int nq = g.n * g.d_p.d, kc = g.cg * g.d_khw.d;
  const int M = CL ? nq : g.ocg, N = CL ? g.ocg : nq;
  int m0, n0;
  tc_origin<C>(N, m0, n0);
  for (int grp = blockIdx.z; grp < g.groups; grp += gridDim.z) {
    Strided<T> wl{w + (i64)grp * g.ocg * kc, kc, 1, g.ocg, true};
    const auto xl = x_operand<T, Im2col<T, CL>, PRO>(x, g, grp, pro);
    TcAcc<C> acc;
    if constexpr (CL) {
      tc_tile<C, T, false, false>(xl, a_async && !PRO, wl, b_async, M, N, 0, kc, m0, n0, acc);
      StoreAffine<T> st{y + grp * g.ocg, g.oc, 1};
      tc_store<C>(st, acc, M, N, m0, n0, 1.0f, 0.0f);
    } else {
      tc_tile<C, T, false, true>(wl, a_async, xl, b_async && !PRO, M, N, 0, kc, m0, n0, acc);
      StorePlanes<T> st{y + (i64)grp * g.ocg * g.d_p.d, g.d_p, (i64)g.oc * g.d_p.d};
      tc_store<C>(st, acc, M, N, m0, n0, 1.0f, 0.0f);
    }
    if (stats) tc_channel_stats<C, T, CL>(acc, M, N, m0, n0, g.oc, grp * g.ocg, stats);
  }
}

template <class C, typename T, bool CL>
__device__ __forceinline__ void conv_tc_bwd_data(const T* dy, const T* w, T* dx, const ConvGeom& g,
                                                 bool a_async, bool b_async) {
  const int nq = g.n * g.d_hw.d, kd = g.ocg * g.d_khw.d, kc = g.cg * g.d_khw.d;
  const int M = CL ? nq : g.cg, N = CL ? g.cg : nq;
  int m0, n0;
  tc_origin<C>(N, m0, n0);
  for (int grp = blockIdx.z; grp < g.groups; grp += gridDim.z) {
    WeightT<T, CL> wl{w + (i64)grp * g.ocg * kc, g};
    Col2imDy<T, CL> dl{dy, g, grp};
    TcAcc<C> acc;
    if constexpr (CL) {
      tc_tile<C, T, false, true>(dl, a_async, wl, b_async, M, N, 0, kd, m0, n0, acc);
      StoreAffine<T> st{dx + grp * g.cg, g.c, 1};
      tc_store<C>(st, acc, M, N, m0, n0, 1.0f, 0.0f);
    } else {
      tc_tile<C, T, false, true>(wl, a_async, dl, b_async, M, N, 0, kd, m0, n0, acc);
      StorePlanes<T> st{dx + (i64)grp * g.cg * g.d_hw.d, g.d_hw, (i64)g.c * g.d_hw.d};
      tc_store<C>(st, acc, M, N, m0, n0, 1.0f, 0.0f);
    }
  }
}

// Slice `split` of the q-reduction goes to out + split·OC·KC (f32). PRO: x is read through the
// prologue act(x·scale + shift) (`pro`), always gathered.
template <class C, typename T, bool CL, bool PRO = false>
__device__ __forceinline__ void conv_tc_bwd_filter(const T* x, const T* dy, float* out,
                                                   const ConvGeom& g, int splits, int chunk,
                                                   bool a_async, bool b_async,
                                                   BnActArgs pro = {}) {
  const int nq = g.n * g.d_p.d, kc = g.cg * g.d_khw.d;
  int m0, n0;
  tc_origin<C>(kc, m0, n0);
  for (int z = blockIdx.z; z < g.groups * splits; z += gridDim.z) {
    const int grp = z / splits, split = z - grp * splits;
    const int kbeg = split * chunk, kend = min(nq, kbeg + chunk);
    const auto xl = x_row_operand<T, CL, PRO>(x, g, grp, pro);
    const bool x_async = b_async && !PRO;
    TcAcc<C> acc;
    if constexpr (CL) {
      Strided<T> dl{dy + grp * g.ocg, 1, g.oc, g.ocg, false};
      tc_tile<C, T, true, true>(dl, a_async, xl, x_async, g.ocg, kc, kbeg, kend, m0, n0, acc);
    } else {
      DyRows<T> dl{dy, g, grp};
      tc_tile<C, T, false, false>(dl, a_async, xl, x_async, g.ocg, kc, kbeg, kend, m0, n0, acc);
    }
    StoreAffine<float> st{out + (i64)split * g.oc * kc + (i64)grp * g.ocg * kc, kc, 1};
    tc_store<C>(st, acc, g.ocg, kc, m0, n0, 1.0f, 0.0f);
  }
}

// ---- dtypes ------------------------------------------------------------------------------------

// TAG names the shape in the kernel's name: empty for Tc64, _t128 for Tc128.
#define CONV_TC(T, S, L, CL, C, TAG)                                                             \
  extern "C" __global__ void __launch_bounds__(C::THREADS)                        \
      conv_tc_fwd##TAG##_##L##_##S(const T* x, const T* w, T* y, ConvGeom g, int a_async,        \
                                   int b_async) {                                                \
    conv_tc_fwd<C, T, CL>(x, w, y, g, a_async != 0, b_async != 0, nullptr);                      \
  }                                                                                              \
  extern "C" __global__ void __launch_bounds__(C::THREADS)                        \
      conv_tc_fwd_stats##TAG##_##L##_##S(const T* x, const T* w, T* y, ConvGeom g, int a_async,  \
                                         int b_async, float* stats) {                            \
    conv_tc_fwd<C, T, CL>(x, w, y, g, a_async != 0, b_async != 0, stats);                        \
  }                                                                                              \
  extern "C" __global__ void __launch_bounds__(C::THREADS)                        \
      conv_tc_bwd_data##TAG##_##L##_##S(const T* dy, const T* w, T* dx, ConvGeom g, int a_async, \
                                        int b_async) {                                           \
    conv_tc_bwd_data<C, T, CL>(dy, w, dx, g, a_async != 0, b_async != 0);                        \
  }                                                                                              \
  extern "C" __global__ void __launch_bounds__(C::THREADS)                        \
      conv_tc_bwd_filter##TAG##_##L##_##S(const T* x, const T* dy, float* out, ConvGeom g,       \
                                          int splits, int chunk, int a_async, int b_async) {     \
    conv_tc_bwd_filter<C, T, CL>(x, dy, out, g, splits, chunk, a_async != 0, b_async != 0);      \
  }                                                                                              \
  extern "C" __global__ void __launch_bounds__(C::THREADS)                        \
      conv_tc_fwd_bnact##TAG##_##L##_##S(const T* x, const T* w, T* y, ConvGeom g, int w_async,  \
                                         float* stats, const float* scale, const float* shift,   \
                                         int relu) {                                             \
    const BnActArgs pro{scale, shift, relu != 0};                                                \
    conv_tc_fwd<C, T, CL, true>(x, w, y, g, !CL && w_async, CL && w_async, stats, pro);          \
  }                                                                                              \
  extern "C" __global__ void __launch_bounds__(C::THREADS)                        \
      conv_tc_bwd_filter_bnact##TAG##_##L##_##S(const T* x, const T* dy, float* out, ConvGeom g, \
                                                int splits, int chunk, int dy_async,             \
                                                const float* scale, const float* shift,          \
                                                int relu) {                                      \
    const BnActArgs pro{scale, shift, relu != 0};                                                \
    conv_tc_bwd_filter<C, T, CL, true>(x, dy, out, g, splits, chunk, dy_async != 0, false, pro); \
  }
#define CONV_TC_SHAPE(C, TAG)                                                                    \
  CONV_TC(f16, f16, nchw, false, C, TAG)                                                         \
  CONV_TC(f16, f16, nhwc, true, C, TAG)                                                          \
  CONV_TC(bf16, bf16, nchw, false, C, TAG)                                                       \
  CONV_TC(bf16, bf16, nhwc, true, C, TAG)
CONV_TC_SHAPE(Tc64, )
CONV_TC_SHAPE(Tc128, _t128)
