// Depthwise 2-d convolution (groups = in = out channels), forward and input gradient, NCHW or
// NHWC (channels_last). Host side: src/cuda/depthwise.rs; CPU twin src/cpu/depthwise.rs.
// x [N,C,H,W], w [C,1,KH,KW] (the same bytes as OHWI [C,KH,KW,1]), y [N,C,OH,OW]; all dense.
//
// Each channel convolves its own plane with its own filter, so the implicit GEMM has nothing to
// share; conv.cu's direct kernels re-read the filter from global memory for every output. Here a
// block owns a tile of outputs and stages the filters it needs in shared memory once:
//   NCHW  grid (N·C planes, row tiles, column tiles), block 32×8 = 8 rows × 32 columns of one
//         plane (x = columns: consecutive lanes read consecutive input columns); one filter.
//   NHWC  grid (N·OH rows, column tiles, channel tiles), block 32×8 = 32 channels × 8 output
//         columns (x = channels: coalesced); filters [tap][32] for the block's channels.
// The input gradient runs the same tiles over dx, gathering each dy(oh, ow) that reads
// (ih, iw) through tap (r, s): oh = (ih + ph − r·dh)/sh when that divides (no atomics).
// Filters with more than DW_MAX_TAPS taps run conv.cu's direct kernels instead. The weight
// gradient stays on conv.cu's direct kernel, which sums fixed slices in order (deterministic).
// f16/bf16 load as 16-bit, accumulate in f32 and round once on store.

#define DW_MAX_TAPS 81

// Sizes of one depthwise convolution (matches DwGeom in src/cuda/depthwise.rs).
struct DwGeom {
  int n, c, h, w, oh, ow, kh, kw, sh, sw, ph, pw, dh, dw;
};

// ---- kernels --------------------------------------------------------------------------------

// The input coordinate one tap reads: forward, o·s − p + t·d; input gradient (BWD), the output
// o' with o'·s − p + t·d = o, or −1 when none.
template <bool BWD>
__device__ __forceinline__ int dw_src(int o, int t, int s, int p, int d) {
  if (!BWD) return o * s - p + t * d;
  int v = o + p - t * d;
  return (v < 0 || v % s != 0) ? -1 : v / s;
}

// One output (of y, or of dx when BWD) per thread, the block's filters in shared memory.
template <typename T, bool CL, bool BWD>
__device__ void dw_pass(const T* in, const T* w, T* out, const DwGeom& g) {
  typedef typename Acc<T>::t A;
  __shared__ A wf[DW_MAX_TAPS * 32];
  const int taps = g.kh * g.kw, tid = threadIdx.y * 32 + threadIdx.x;
  const int OH = BWD ? g.h : g.oh, OW = BWD ? g.w : g.ow;  // what this pass writes
  const int IH = BWD ? g.oh : g.h, IW = BWD ? g.ow : g.w;  // what it reads
  int n, c, oy, ox;
  if (CL) {
    const int c0 = blockIdx.z * 32;
    for (int i = tid; i < taps * 32; i += 256) {
      int cc = c0 + (i & 31);
      wf[i] = cc < g.c ? to_acc(w[(i64)cc * taps + (i >> 5)]) : A(0);
    }
    c = c0 + threadIdx.x;
    n = blockIdx.x / OH;
    oy = blockIdx.x - n * OH;
    ox = blockIdx.y * 8 + threadIdx.y;
  } else {
    n = blockIdx.x / g.c;
    c = blockIdx.x - n * g.c;
    for (int i = tid; i < taps; i += 256) wf[i] = to_acc(w[(i64)c * taps + i]);
    oy = blockIdx.y * 8 + threadIdx.y;
    ox = blockIdx.z * 32 + threadIdx.x;
  }
  __syncthreads();
  if (c >= g.c || oy >= OH || ox >= OW) return;
  A acc = A(0);
  for (int r = 0; r < g.kh; ++r) {
    const int iy = dw_src<BWD>(oy, r, g.sh, g.ph, g.dh);
    if ((unsigned)iy >= (unsigned)IH) continue;
    for (int s = 0; s < g.kw; ++s) {
      const int ix = dw_src<BWD>(ox, s, g.sw, g.pw, g.dw);
      if ((unsigned)ix >= (unsigned)IW) continue;
      const i64 off = CL ? (((i64)n * IH + iy) * IW + ix) * g.c + c
                         : (((i64)n * g.c + c) * IH + iy) * IW + ix;
      const int tap = r * g.kw + s;
      acc += to_acc(in[off]) * (CL ? wf[tap * 32 + threadIdx.x] : wf[tap]);
    }
  }
  const i64 o = CL ? (((i64)n * OH + oy) * OW + ox) * g.c + c
                   : (((i64)n * g.c + c) * OH + oy) * OW + ox;
  out[o] = from_acc<T>(acc);
}

// ---- dtypes ---------------------------------------------------------------------------------

#define DW_LAYOUT(T, S, L, CL)                                                                    \
  extern "C" __global__ void __launch_bounds__(256)                                               \
      depthwise_fwd_##L##_##S(const T* x, const T* w, T* y, DwGeom g) {                           \
    dw_pass<T, CL, false>(x, w, y, g);                                                            \
  }                                                                                               \
  extern "C" __global__ void __launch_bounds__(256)                                               \
      depthwise_bwd_data_##L##_##S(const T* dy, const T* w, T* dx, DwGeom g) {                    \
    dw_pass<T, CL, true>(dy, w, dx, g);                                                           \
  }
#define DW_DTYPE(T, S)      \
  DW_LAYOUT(T, S, nchw, false) \
  DW_LAYOUT(T, S, nhwc, true)

DW_DTYPE(float, f32)
DW_DTYPE(double, f64)
DW_DTYPE(f16, f16)
DW_DTYPE(bf16, bf16)
