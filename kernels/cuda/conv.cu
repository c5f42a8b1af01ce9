#line 1 "conv.cu"
// 2-d convolution, forward and both backwards, NCHW or NHWC, with stride, padding, dilation and
// groups. Host side: src/cuda/conv.rs. x [N,C,H,W], w [OC,C/g,KH,KW], y [N,OC,OH,OW] (NHWC:
// x and y channels-last, w OHWI); all dense. Outputs are overwritten, never accumulated.
//
// Implicit GEMM (tile_gemm.cuh's loop over conv_operands.cuh's loaders, both prepended) for the
// wide cases; the im2col matrix is never stored. Per group g (grid.z):
//   forward    NCHW: Y[o, q]  = W[o, (c,r,s)] · X̂[(c,r,s), q]     q = (n, oh, ow)
//              NHWC: Y[q, o]  = X̂[q, (r,s,c)] · Wᵀ[(r,s,c), o]
//   bwd data   NCHW: dX[c, q'] = Wᵀ[c, (o,r,s)] · dŶ[(o,r,s), q']  q' = (n, ih, iw); dŶ gathers dy
//              NHWC: dX[q', c] = dŶ[q', (r,s,o)] · W[(r,s,o), c]     at ((ih+p-r·d)/s, ...) when
//                                                                   that divides, else 0
//   bwd filter dW[o, (c,r,s)] = Σ_q dY[o, q] · X̂[q, (c,r,s)] ((r,s,c) for NHWC), the q-reduction
//              split over grid.z slices into an f32/f64 workspace when the tile grid is small.
// The matrix side walking output pixels is the coalesced one, so NCHW puts pixels on GEMM
// columns (rows of a plane are contiguous) and NHWC on GEMM rows (channels are contiguous).
//
// Narrow groups (depthwise, or fewer than 16 channels on a GEMM side) would waste most of a
// 64-wide tile, so they run direct kernels: one thread per output element for the forward and
// the data gradient (each dx element gathers its windows: no atomics), and for the filter
// gradient a 32×8 block per 32 weights, 8 threads splitting the pixel reduction of each
// (and blockIdx.y slicing it further). f64 runs the direct kernels only (see the dtype list).
// f16/bf16 load as 16-bit, accumulate in f32 and round once on store. On sm_80+ their implicit
// GEMMs run on tensor cores instead (conv_tc.cu: the same loaders, tc_tile.cuh's loop).

// ---- implicit-GEMM kernels ---------------------------------------------------------------------

// Output tile of the block: grid.x walks tiles, column tiles fastest.
template <class C> __device__ __forceinline__ void tile_origin(int N, int& m0, int& n0) {
  const int tiles_n = (N + C::BN - 1) / C::BN;
  m0 = blockIdx.x / tiles_n * C::BM;
  n0 = blockIdx.x % tiles_n * C::BN;
}

template <typename T, class C, bool CL>
__device__ __forceinline__ void conv_fwd_gemm(const T* x, const T* w, T* y, const ConvGeom& g) {
  typedef typename Acc<T>::t A;
  const int nq = g.n * g.d_p.d, kc = g.cg * g.d_khw.d;
  const int M = CL ? nq : g.ocg, N = CL ? g.ocg : nq;
  int m0, n0;
  tile_origin<C>(N, m0, n0);
  for (int grp = blockIdx.z; grp < g.groups; grp += gridDim.z) {
    Strided<T> wl{w + (i64)grp * g.ocg * kc, kc, 1, g.ocg, true};
    Im2col<T, CL> xl{x, g, grp};
    if constexpr (CL) {
      StoreAffine<T> st{y + grp * g.ocg, g.oc, 1};
      tile_gemm<C>(xl, wl, st, M, N, 0, kc, m0, n0, A(1), A(0));
    } else {
      StorePlanes<T> st{y + (i64)grp * g.ocg * g.d_p.d, g.d_p, (i64)g.oc * g.d_p.d};
      tile_gemm<C>(wl, xl, st, M, N, 0, kc, m0, n0, A(1), A(0));
    }
  }
}

template <typename T, class C, bool CL>
__device__ __forceinline__ void conv_bwd_data_gemm(const T* dy, const T* w, T* dx,
                                                   const ConvGeom& g) {
  typedef typename Acc<T>::t A;
  const int nq = g.n * g.d_hw.d, kd = g.ocg * g.d_khw.d, kc = g.cg * g.d_khw.d;
  const int M = CL ? nq : g.cg, N = CL ? g.cg : nq;
  int m0, n0;
  tile_origin<C>(N, m0, n0);
  for (int grp = blockIdx.z; grp < g.groups; grp += gridDim.z) {
    WeightT<T, CL> wl{w + (i64)grp * g.ocg * kc, g};
    Col2imDy<T, CL> dl{dy, g, grp};
    if constexpr (CL) {
      StoreAffine<T> st{dx + grp * g.cg, g.c, 1};
      tile_gemm<C>(dl, wl, st, M, N, 0, kd, m0, n0, A(1), A(0));
    } else {
      StorePlanes<T> st{dx + (i64)grp * g.cg * g.d_hw.d, g.d_hw, (i64)g.c * g.d_hw.d};
      tile_gemm<C>(wl, dl, st, M, N, 0, kd, m0, n0, A(1), A(0));
    }
  }
}

// Slice `split` of the q-reduction goes to out + split·OC·KC (out is dW itself when splits = 1).
template <typename T, class C, bool CL>
__device__ __forceinline__ void conv_bwd_filter_gemm(const T* x, const T* dy,
                                                     typename Acc<T>::t* out, const ConvGeom& g,
                                                     int splits, int chunk) {
  typedef typename Acc<T>::t A;
  const int nq = g.n * g.d_p.d, kc = g.cg * g.d_khw.d;
  int m0, n0;
  tile_origin<C>(kc, m0, n0);
  for (int z = blockIdx.z; z < g.groups * splits; z += gridDim.z) {
    const int grp = z / splits, split = z - grp * splits;
    const int kbeg = split * chunk, kend = min(nq, kbeg + chunk);
    Im2colT<T, CL> xl{x, g, grp};
    StoreAffine<A> st{out + (i64)split * g.oc * kc + (i64)grp * g.ocg * kc, kc, 1};
    if constexpr (CL) {
      Strided<T> dl{dy + grp * g.ocg, 1, g.oc, g.ocg, false};
      tile_gemm<C>(dl, xl, st, g.ocg, kc, kbeg, kend, m0, n0, A(1), A(0));
    } else {
      DyRows<T> dl{dy, g, grp};
      tile_gemm<C>(dl, xl, st, g.ocg, kc, kbeg, kend, m0, n0, A(1), A(0));
    }
  }
}

// ---- direct kernels (narrow groups) ------------------------------------------------------------

// One thread per y element, in y's memory order.
template <typename T, bool CL>
__device__ __forceinline__ void conv_fwd_direct(const T* x, const T* w, T* y, const ConvGeom& g) {
  typedef typename Acc<T>::t A;
  const i64 total = (i64)g.n * g.oc * g.d_p.d;
  KILN_FOR(i, total) {
    int o, q;  // output channel, pixel (n, oh, ow)
    if (CL) {
      q = (int)(i / g.oc);
      o = (int)(i - (i64)q * g.oc);
    } else {
      i64 t = i / g.d_p.d;
      int p = (int)(i - t * g.d_p.d), n = (int)(t / g.oc);
      o = (int)(t - (i64)n * g.oc);
      q = n * g.d_p.d + p;
    }
    int n = q / g.d_p.d, p = q - n * g.d_p.d, oh = p / g.ow, ow = p - oh * g.ow;
    const int c0 = o / g.ocg * g.cg;
    A acc = 0;
    for (int r = 0; r < g.kh; ++r) {
      int ih = oh * g.sh - g.ph + r * g.dh;
      if ((unsigned)ih >= (unsigned)g.h) continue;
      for (int t = 0; t < g.kw; ++t) {
        int iw = ow * g.sw - g.pw + t * g.dw;
        if ((unsigned)iw >= (unsigned)g.w) continue;
        for (int c = 0; c < g.cg; ++c) {
          i64 xo = CL ? (((i64)n * g.h + ih) * g.w + iw) * g.c + c0 + c
                      : (((i64)n * g.c + c0 + c) * g.h + ih) * g.w + iw;
          i64 wo = CL ? (((i64)o * g.kh + r) * g.kw + t) * g.cg + c
                      : (((i64)o * g.cg + c) * g.kh + r) * g.kw + t;
          acc += to_acc(x[xo]) * to_acc(w[wo]);
        }
      }
    }
    y[i] = from_acc<T>(acc);
  }
}

// One thread per dx element, in dx's memory order, gathering every (output, tap) that reads it.
template <typename T, bool CL>
__device__ __forceinline__ void conv_bwd_data_direct(const T* dy, const T* w, T* dx,
                                                     const ConvGeom& g) {
  typedef typename Acc<T>::t A;
  const int hw = g.d_hw.d;
  const i64 total = (i64)g.n * g.c * hw;
  KILN_FOR(i, total) {
    int ci, n, p;  // input channel, image, pixel ih·W + iw
    if (CL) {
      i64 t = i / g.c;
      ci = (int)(i - t * g.c);
      n = (int)(t / hw);
      p = (int)(t - (i64)n * hw);
    } else {
      i64 t = i / hw;
      p = (int)(i - t * hw);
      n = (int)(t / g.c);
      ci = (int)(t - (i64)n * g.c);
    }
    const int ih = p / g.w, iw = p - ih * g.w;
    const int grp = ci / g.cg, c = ci - grp * g.cg;
    A acc = 0;
    for (int r = 0; r < g.kh; ++r) {
      int th = ih + g.ph - r * g.dh;
      if (th < 0 || th % g.sh != 0 || th / g.sh >= g.oh) continue;
      const int oh = th / g.sh;
      for (int t = 0; t < g.kw; ++t) {
        int tw = iw + g.pw - t * g.dw;
        if (tw < 0 || tw % g.sw != 0 || tw / g.sw >= g.ow) continue;
        const int ow = tw / g.sw;
        for (int oo = 0; oo < g.ocg; ++oo) {
          const int o = grp * g.ocg + oo;
          i64 yo = CL ? (((i64)n * g.oh + oh) * g.ow + ow) * g.oc + o
                      : (((i64)n * g.oc + o) * g.oh + oh) * g.ow + ow;
          i64 wo = CL ? (((i64)o * g.kh + r) * g.kw + t) * g.cg + c
                      : (((i64)o * g.cg + c) * g.kh + r) * g.kw + t;
          acc += to_acc(dy[yo]) * to_acc(w[wo]);
        }
      }
    }
    dx[i] = from_acc<T>(acc);
  }
}

// Block (32, 8): lane x owns weight element e (NCHW: dw's own order; NHWC: (r, s, o, c) order so
// consecutive lanes read consecutive channels), the 8 rows split slice blockIdx.y of the q range.
template <typename T, bool CL>
__device__ __forceinline__ void conv_bwd_filter_direct(const T* x, const T* dy,
                                                       typename Acc<T>::t* out, const ConvGeom& g,
                                                       int chunk) {
  typedef typename Acc<T>::t A;
  __shared__ A part[8][33];
  const int khw = g.d_khw.d, E = g.oc * g.cg * khw, nq = g.n * g.d_p.d;
  const int e = blockIdx.x * 32 + threadIdx.x;
  int o, c, r, t;
  i64 dst;
  if (CL) {
    c = e % g.cg;
    int u = e / g.cg;
    o = u % g.oc;
    u /= g.oc;
    t = u % g.kw;
    r = u / g.kw;
    dst = (((i64)o * g.kh + r) * g.kw + t) * g.cg + c;
  } else {
    t = e % g.kw;
    int u = e / g.kw;
    r = u % g.kh;
    u /= g.kh;
    c = u % g.cg;
    o = u / g.cg;
    dst = e;
  }
  const int ci = o / g.ocg * g.cg + c;
  A acc = 0;
  if (e < E) {
    const int qend = min(nq, (int)blockIdx.y * chunk + chunk);
    for (int q = blockIdx.y * chunk + threadIdx.y; q < qend; q += 8) {
      int n = q / g.d_p.d, p = q - n * g.d_p.d, oh = p / g.ow, ow = p - oh * g.ow;
      int ih = oh * g.sh - g.ph + r * g.dh, iw = ow * g.sw - g.pw + t * g.dw;
      if ((unsigned)ih >= (unsigned)g.h || (unsigned)iw >= (unsigned)g.w) continue;
      i64 xo = CL ? (((i64)n * g.h + ih) * g.w + iw) * g.c + ci
                  : (((i64)n * g.c + ci) * g.h + ih) * g.w + iw;
      i64 yo = CL ? (i64)q * g.oc + o : ((i64)n * g.oc + o) * g.d_p.d + p;
      acc += to_acc(x[xo]) * to_acc(dy[yo]);
    }
  }
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && e < E) {
    for (int k = 1; k < 8; ++k) acc += part[k][threadIdx.x];
    out[(i64)blockIdx.y * E + dst] = acc;
  }
}

// dw = Σ over slices of the workspace, in the storage type.
template <typename T>
__device__ __forceinline__ void conv_reduce_splits(const typename Acc<T>::t* ws, T* dw, i64 n,
                                                   int splits) {
  KILN_FOR(i, n) {
    typename Acc<T>::t s = 0;
    for (int k = 0; k < splits; ++k) s += ws[k * n + i];
    dw[i] = from_acc<T>(s);
  }
}

// ---- dtypes ------------------------------------------------------------------------------------

#define CONV_GEMM(T, S, C, TILE, L, CL)                                                          \
  extern "C" __global__ void __launch_bounds__(KILN_TILE_THREADS, 1)                             \
      conv_fwd_##TILE##_##L##_##S(const T* x, const T* w, T* y, ConvGeom g) {                   \
    conv_fwd_gemm<T, C, CL>(x, w, y, g);                                                        \
  }                                                                                             \
  extern "C" __global__ void __launch_bounds__(KILN_TILE_THREADS, 1)                             \
      conv_bwd_data_##TILE##_##L##_##S(const T* dy, const T* w, T* dx, ConvGeom g) {            \
    conv_bwd_data_gemm<T, C, CL>(dy, w, dx, g);                                                 \
  }                                                                                             \
  extern "C" __global__ void __launch_bounds__(KILN_TILE_THREADS, 1)                             \
      conv_bwd_filter_##TILE##_##L##_##S(const T* x, const T* dy, Acc<T>::t* out, ConvGeom g,   \
                                         int splits, int chunk) {                               \
    conv_bwd_filter_gemm<T, C, CL>(x, dy, out, g, splits, chunk);                               \
  }

#define CONV_DIRECT(T, S, L, CL)                                                                 \
  extern "C" __global__ void conv_fwd_direct_##L##_##S(const T* x, const T* w, T* y, ConvGeom g) { \
    conv_fwd_direct<T, CL>(x, w, y, g);                                                         \
  }                                                                                             \
  extern "C" __global__ void conv_bwd_data_direct_##L##_##S(const T* dy, const T* w, T* dx,     \
                                                          ConvGeom g) {                         \
    conv_bwd_data_direct<T, CL>(dy, w, dx, g);                                                  \
  }                                                                                             \
  extern "C" __global__ void __launch_bounds__(256) conv_bwd_filter_direct_##L##_##S(          \
      const T* x, const T* dy, Acc<T>::t* out, ConvGeom g, int chunk) {                         \
    conv_bwd_filter_direct<T, CL>(x, dy, out, g, chunk);                                        \
  }

#define CONV_DTYPE(T, S)                                                                         \
  CONV_DIRECT(T, S, nchw, false)                                                                \
  CONV_DIRECT(T, S, nhwc, true)                                                                 \
  extern "C" __global__ void conv_reduce_splits_##S(const Acc<T>::t* ws, T* dw, i64 n,         \
                                                    int splits) {                               \
    conv_reduce_splits<T>(ws, dw, n, splits);                                                   \
  }
#define CONV_GEMM_DTYPE(T, S)                                                                    \
  CONV_GEMM(T, S, Tile64, t64, nchw, false)                                                     \
  CONV_GEMM(T, S, Tile64, t64, nhwc, true)                                                      \
  CONV_GEMM(T, S, Tile128, t128, nchw, false)                                                   \
  CONV_GEMM(T, S, Tile128, t128, nhwc, true)
CONV_DTYPE(float, f32)
CONV_DTYPE(double, f64)
CONV_DTYPE(f16, f16)
CONV_DTYPE(bf16, bf16)
// f64 (gradient checks) runs the direct kernels only: each implicit-GEMM instantiation costs
// NVRTC about a third of a second, and GPUs run f64 at a fraction of f32 speed anyway.
CONV_GEMM_DTYPE(float, f32)
CONV_GEMM_DTYPE(f16, f16)
CONV_GEMM_DTYPE(bf16, bf16)
