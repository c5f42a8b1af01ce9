// Max, average and adaptive pooling, forward and backward. Twin of src/cpu/pool.rs: the same
// windows, ceil_mode/padding clipping, divisors, NaN-propagating max and argmax convention
// (h·W + w within the image plane, -1 for an empty window), and the same summation order.
//
// Tensors are described by PoolDims (logical N, C, H, W sizes and element strides), so NCHW and
// NHWC share every kernel. One thread per output element (forward) or per input-gradient
// element (backward: each dx element gathers the windows that cover it, in the twin's (i, j)
// order, so no atomics, no zeroing pass and the same rounding; max backward keeps the outputs
// whose saved argmax is this element, as PyTorch's NCHW kernel does). Threads walk elements in
// memory order (channels fastest when channels-last) so neighbouring threads touch neighbouring
// addresses. Channels-last max pooling instead gives each pixel a row of threads over its
// channels, 16 bytes of them a thread where the layout allows (the `_cl` kernels): its window is
// found once for all channels. Index arithmetic runs in int where the tensors allow
// (POOL_INDEXED), sparing each element's coordinates four 64-bit divisions.
//
// T is f32, f64, f16 or bf16: f16/bf16 are read and written as such and every sum, divisor and
// comparison runs in A = Acc<T>::t (f32), so autocast needs no cast pass around a pooling.

struct PoolDims {
  i64 size[4];    // N, C, H, W
  i64 stride[4];  // element strides of N, C, H, W
};
struct PoolWin {
  int k[2], s[2], p[2], d[2];  // kernel, stride, padding, dilation (h, w)
};

// ---- helpers -----------------------------------------------------------------------------------

// PoolDims in the index type I the kernel computes with: int where every offset, element count
// and adaptive product fits in 2^30 (no 64-bit division for each element), i64 otherwise.
template <typename I> struct Dims {
  I size[4], stride[4];
  __device__ explicit Dims(const PoolDims& d) {
    for (int a = 0; a < 4; ++a) size[a] = (I)d.size[a], stride[a] = (I)d.stride[a];
  }
};

__device__ __forceinline__ bool fits_int(const PoolDims& d) {
  const i64 lim = (i64)1 << 30;
  i64 span = 1, n = 1;
  for (int a = 0; a < 4; ++a) {
    if (d.size[a] <= 0) return true;  // empty: nothing is addressed
    span += (d.size[a] - 1) * (d.stride[a] < 0 ? -d.stride[a] : d.stride[a]);
    n *= d.size[a];
  }
  return span < lim && n < lim;
}

// Whether the kernel over x and y can index in int: both tensors fit, and so do the products
// H·OH and W·OW that adaptive ranges form.
__device__ __forceinline__ bool small_pool(const PoolDims& xd, const PoolDims& yd) {
  const i64 lim = (i64)1 << 30;
  return fits_int(xd) && fits_int(yd) && xd.size[2] * yd.size[2] < lim &&
         xd.size[3] * yd.size[3] < lim;
}

// Runs the call with I = int where small_pool(xd, yd), else with I = i64.
#define POOL_INDEXED(xd, yd, ...) \
  if (small_pool(xd, yd)) {       \
    typedef int I;                \
    __VA_ARGS__;                  \
  } else {                        \
    typedef i64 I;                \
    __VA_ARGS__;                  \
  }

// Grid-stride loop over [0, n) in I (n < 2^30 for int, so i + stride cannot overflow).
#define POOL_FOR(i, n)                                                         \
  for (I i = (I)blockIdx.x * (I)blockDim.x + (I)threadIdx.x; i < (n); \
       i += (I)gridDim.x * (I)blockDim.x)

// Grid-stride loop over pixels [0, n) of the channels-last kernels: threadIdx.y and the grid walk
// pixels, threadIdx.x walks channel groups within one.
#define PIXEL_FOR(p, n)                                               \
  for (I p = (I)blockIdx.x * (I)blockDim.y + (I)threadIdx.y; p < (n); \
       p += (I)gridDim.x * (I)blockDim.y)

// Logical (n, c, h, w) of the i-th element in memory order (channels fastest when `cl`).
template <typename I>
__device__ __forceinline__ void coords(I i, const Dims<I>& t, bool cl, I& n, I& c, I& h, I& w) {
  if (cl) {
    c = i % t.size[1];
    i /= t.size[1];
    w = i % t.size[3];
    i /= t.size[3];
    h = i % t.size[2];
    n = i / t.size[2];
  } else {
    w = i % t.size[3];
    i /= t.size[3];
    h = i % t.size[2];
    i /= t.size[2];
    c = i % t.size[1];
    n = i / t.size[1];
  }
}

template <typename I> __device__ __forceinline__ I at(const Dims<I>& t, I n, I c, I h, I w) {
  return n * t.stride[0] + c * t.stride[1] + h * t.stride[2] + w * t.stride[3];
}

template <typename A> __device__ __forceinline__ A neg_inf();
template <> __device__ __forceinline__ float neg_inf<float>() { return -__int_as_float(0x7f800000); }
template <> __device__ __forceinline__ double neg_inf<double>() {
  return -__longlong_as_double(0x7ff0000000000000ll);
}

template <typename I> __device__ __forceinline__ I numel(const Dims<I>& t) {
  return t.size[0] * t.size[1] * t.size[2] * t.size[3];
}

// Average pooling's clipped window [lo, hi) along axis a for output o, and its padded extent.
template <typename I>
__device__ __forceinline__ void avg_span(const PoolWin& win, int a, I o, I n, I& lo, I& hi,
                                         I& padded) {
  I start = o * win.s[a] - win.p[a];
  I end = min(start + (I)win.k[a], n + (I)win.p[a]);
  padded = end - start;
  lo = max(start, (I)0);
  hi = max(min(end, n), (I)0);
}

// The divisor of average-pooling output (i, j).
template <typename I>
__device__ __forceinline__ I avg_count(const PoolWin& win, I i, I j, I h, I w, bool cip, I b[4]) {
  I ph, pw;
  avg_span(win, 0, i, h, b[0], b[1], ph);
  avg_span(win, 1, j, w, b[2], b[3], pw);
  I count = cip ? ph * pw : max(b[1] - b[0], (I)0) * max(b[3] - b[2], (I)0);
  return max(count, (I)1);
}

// Adaptive pooling's input range [lo, hi) for output o of `out` over `n`.
template <typename I> __device__ __forceinline__ void adaptive_span(I o, I out, I n, I& lo, I& hi) {
  lo = o * n / out;
  hi = ((o + 1) * n + out - 1) / out;
}

// Outputs [lo, hi] along axis a of `out` whose window can hold input position h: max windows
// (stride, padding, dilation) when win.k[a] > 0, else adaptive ranges over `n`.
template <typename I>
__device__ __forceinline__ void covering(const PoolWin& win, int a, I h, I n, I out, I& lo, I& hi) {
  if (win.k[a] > 0) {
    const I t = h + win.p[a], reach = (I)(win.k[a] - 1) * win.d[a];
    lo = t < reach ? 0 : (t - reach + win.s[a] - 1) / win.s[a];
    hi = min(t / (I)win.s[a], out - 1);
  } else {
    lo = h * out / n;
    hi = min(((h + 1) * out + n - 1) / n - 1, out - 1);
  }
}

// ---- kernels -----------------------------------------------------------------------------------

template <typename T, typename I>
__device__ __forceinline__ void max_pool_fwd(const T* x, PoolDims xd_, T* y, PoolDims yd_,
                                             PoolWin win, i64* idx, bool cl) {
  const Dims<I> xd(xd_);
  const Dims<I> yd(yd_);
  typedef typename Acc<T>::t A;
  const I H = xd.size[2], W = xd.size[3];
  POOL_FOR(i, numel(yd)) {
    I n, c, oh, ow;
    coords(i, yd, cl, n, c, oh, ow);
    A best = neg_inf<A>();
    I arg = -1;
    for (int ki = 0; ki < win.k[0]; ++ki) {
      I hi = oh * win.s[0] + ki * win.d[0] - win.p[0];
      if (hi < 0 || hi >= H) continue;
      for (int kj = 0; kj < win.k[1]; ++kj) {
        I wj = ow * win.s[1] + kj * win.d[1] - win.p[1];
        if (wj < 0 || wj >= W) continue;
        A v = to_acc(x[at(xd, n, c, hi, wj)]);
        if (v > best || v != v || arg < 0) {
          best = v;
          arg = hi * W + wj;
        }
      }
    }
    const I o = at(yd, n, c, oh, ow);
    y[o] = from_acc<T>(best);
    idx[o] = arg;
  }
}

// L adjacent channels of T, moved by one load or store (16-byte vectors at most).
template <typename T, int L> struct alignas(L * sizeof(T) < 16 ? L * sizeof(T) : 16) Lanes {
  T v[L];
};

// max_pool_fwd over channels-last tensors, L channels a thread (channel stride 1, C and every
// other stride a multiple of L, every buffer aligned to its Lanes): threadIdx.y (and the grid)
// walk output pixels, threadIdx.x channel groups, so each pixel's coordinates and window are
// found once for all its channels. Same comparisons in the same window order as max_pool_fwd.
template <typename T, typename I, int L>
__device__ __forceinline__ void max_pool_fwd_cl(const T* x, PoolDims xd_, T* y, PoolDims yd_,
                                                PoolWin win, i64* idx) {
  const Dims<I> xd(xd_);
  const Dims<I> yd(yd_);
  typedef typename Acc<T>::t A;
  const I C = yd.size[1], H = xd.size[2], W = xd.size[3], OH = yd.size[2], OW = yd.size[3];
  PIXEL_FOR(p, yd.size[0] * OH * OW) {
    const I ow = p % OW, oh = p / OW % OH, n = p / OW / OH;
    const I h0 = oh * win.s[0] - win.p[0], w0 = ow * win.s[1] - win.p[1];
    for (I c = (I)threadIdx.x * L; c < C; c += (I)blockDim.x * L) {
      A best[L];
      I arg[L];
      for (int l = 0; l < L; ++l) best[l] = neg_inf<A>(), arg[l] = -1;
      for (int ki = 0; ki < win.k[0]; ++ki) {
        const I hi = h0 + ki * win.d[0];
        if (hi < 0 || hi >= H) continue;
        for (int kj = 0; kj < win.k[1]; ++kj) {
          const I wj = w0 + kj * win.d[1];
          if (wj < 0 || wj >= W) continue;
          const Lanes<T, L> v = *reinterpret_cast<const Lanes<T, L>*>(x + at(xd, n, c, hi, wj));
          for (int l = 0; l < L; ++l) {
            const A a = to_acc(v.v[l]);
            if (a > best[l] || a != a || arg[l] < 0) best[l] = a, arg[l] = hi * W + wj;
          }
        }
      }
      Lanes<T, L> out;
      Lanes<i64, L> args;
      for (int l = 0; l < L; ++l) out.v[l] = from_acc<T>(best[l]), args.v[l] = arg[l];
      const I o = at(yd, n, c, oh, ow);
      *reinterpret_cast<Lanes<T, L>*>(y + o) = out;
      *reinterpret_cast<Lanes<i64, L>*>(idx + o) = args;
    }
  }
}

// dx of L adjacent channels (c onwards) of one element of max pooling: the sums of dy over
// outputs [i0, i1] × [j0, j1] of (n, c) whose saved argmax is `self`, in (i, j) order.
template <typename T, typename I, int L>
__device__ __forceinline__ Lanes<T, L> argmax_sum(const T* dy, const Dims<I>& yd, const i64* idx,
                                                  I n, I c, I i0, I i1, I j0, I j1, I self) {
  typedef typename Acc<T>::t A;
  A acc[L];
  for (int l = 0; l < L; ++l) acc[l] = A(0);
  for (I oi = i0; oi <= i1; ++oi) {
    for (I oj = j0; oj <= j1; ++oj) {
      const I o = at(yd, n, c, oi, oj);
      const Lanes<i64, L> arg = *reinterpret_cast<const Lanes<i64, L>*>(idx + o);
      const Lanes<T, L> g = *reinterpret_cast<const Lanes<T, L>*>(dy + o);
      for (int l = 0; l < L; ++l)
        if (arg.v[l] == self) acc[l] += to_acc(g.v[l]);
    }
  }
  Lanes<T, L> out;
  for (int l = 0; l < L; ++l) out.v[l] = from_acc<T>(acc[l]);
  return out;
}

// dx = the sum of dy over the outputs whose argmax is this element; candidates come from
// `covering` (max windows of `win`, or adaptive ranges when win.k is 0).
template <typename T, typename I>
__device__ __forceinline__ void max_pool_bwd(const T* dy, PoolDims yd_, const i64* idx, T* dx,
                                             PoolDims xd_, PoolWin win, bool cl) {
  const Dims<I> yd(yd_);
  const Dims<I> xd(xd_);
  const I H = xd.size[2], W = xd.size[3], OH = yd.size[2], OW = yd.size[3];
  POOL_FOR(i, numel(xd)) {
    I n, c, h, w, i0, i1, j0, j1;
    coords(i, xd, cl, n, c, h, w);
    covering(win, 0, h, H, OH, i0, i1);
    covering(win, 1, w, W, OW, j0, j1);
    const I self = h * W + w;
    dx[at(xd, n, c, h, w)] = argmax_sum<T, I, 1>(dy, yd, idx, n, c, i0, i1, j0, j1, self).v[0];
  }
}

// max_pool_bwd over a channels-last input, L channels a thread (as max_pool_fwd_cl): threadIdx.y
// (and the grid) walk pixels, threadIdx.x channel groups, so each pixel's coordinates and covering
// outputs (the divisions) are found once for all its channels rather than once an element; every
// element sums in max_pool_bwd's order.
template <typename T, typename I, int L>
__device__ __forceinline__ void max_pool_bwd_cl(const T* dy, PoolDims yd_, const i64* idx, T* dx,
                                                PoolDims xd_, PoolWin win) {
  const Dims<I> yd(yd_);
  const Dims<I> xd(xd_);
  const I C = xd.size[1], H = xd.size[2], W = xd.size[3], OH = yd.size[2], OW = yd.size[3];
  PIXEL_FOR(p, xd.size[0] * H * W) {
    const I w = p % W, h = p / W % H, n = p / W / H, self = h * W + w;
    I i0, i1, j0, j1;
    covering(win, 0, h, H, OH, i0, i1);
    covering(win, 1, w, W, OW, j0, j1);
    for (I c = (I)threadIdx.x * L; c < C; c += (I)blockDim.x * L)
      *reinterpret_cast<Lanes<T, L>*>(dx + at(xd, n, c, h, w)) =
          argmax_sum<T, I, L>(dy, yd, idx, n, c, i0, i1, j0, j1, self);
  }
}

template <typename T, typename I>
__device__ __forceinline__ void avg_pool_fwd(const T* x, PoolDims xd_, T* y, PoolDims yd_,
                                             PoolWin win, bool cip, bool cl) {
  const Dims<I> xd(xd_);
  const Dims<I> yd(yd_);
  typedef typename Acc<T>::t A;
  POOL_FOR(i, numel(yd)) {
    I n, c, oh, ow, b[4];
    coords(i, yd, cl, n, c, oh, ow);
    const I count = avg_count(win, oh, ow, xd.size[2], xd.size[3], cip, b);
    A s = A(0);
    for (I hi = b[0]; hi < b[1]; ++hi)
      for (I wj = b[2]; wj < b[3]; ++wj) s += to_acc(x[at(xd, n, c, hi, wj)]);
    y[at(yd, n, c, oh, ow)] = from_acc<T>(s / A(count));
  }
}

// Each dx element sums dy/count over the outputs whose clipped window holds it: outputs i with
// i·s - p <= h < i·s - p + k, then checked against the exact window.
template <typename T, typename I>
__device__ __forceinline__ void avg_pool_bwd(const T* dy, PoolDims yd_, T* dx, PoolDims xd_,
                                             PoolWin win, bool cip, bool cl) {
  const Dims<I> yd(yd_);
  const Dims<I> xd(xd_);
  typedef typename Acc<T>::t A;
  const I H = xd.size[2], W = xd.size[3], OH = yd.size[2], OW = yd.size[3];
  POOL_FOR(i, numel(xd)) {
    I n, c, h, w;
    coords(i, xd, cl, n, c, h, w);
    const I th = h + win.p[0], tw = w + win.p[1];
    const I i0 = th < win.k[0] ? 0 : (th - win.k[0]) / win.s[0] + 1;
    const I j0 = tw < win.k[1] ? 0 : (tw - win.k[1]) / win.s[1] + 1;
    const I i1 = min(th / win.s[0], OH - 1), j1 = min(tw / win.s[1], OW - 1);
    A acc = A(0);
    for (I oi = i0; oi <= i1; ++oi) {
      for (I oj = j0; oj <= j1; ++oj) {
        I b[4];
        const I count = avg_count(win, oi, oj, H, W, cip, b);
        if (h < b[0] || h >= b[1] || w < b[2] || w >= b[3]) continue;
        acc += to_acc(dy[at(yd, n, c, oi, oj)]) / A(count);
      }
    }
    dx[at(xd, n, c, h, w)] = from_acc<T>(acc);
  }
}

template <typename T, typename I>
__device__ __forceinline__ void adaptive_pool_fwd(const T* x, PoolDims xd_, T* y, PoolDims yd_,
                                                  bool is_max, i64* idx, bool cl) {
  const Dims<I> xd(xd_);
  const Dims<I> yd(yd_);
  typedef typename Acc<T>::t A;
  const I H = xd.size[2], W = xd.size[3], OH = yd.size[2], OW = yd.size[3];
  POOL_FOR(i, numel(yd)) {
    I n, c, oh, ow, h0, h1, w0, w1;
    coords(i, yd, cl, n, c, oh, ow);
    adaptive_span(oh, OH, H, h0, h1);
    adaptive_span(ow, OW, W, w0, w1);
    A acc = is_max ? neg_inf<A>() : A(0);
    I arg = -1;
    for (I hi = h0; hi < h1; ++hi) {
      for (I wj = w0; wj < w1; ++wj) {
        A v = to_acc(x[at(xd, n, c, hi, wj)]);
        if (!is_max) {
          acc += v;
        } else if (v > acc || v != v || arg < 0) {
          acc = v;
          arg = hi * W + wj;
        }
      }
    }
    const I o = at(yd, n, c, oh, ow);
    y[o] = from_acc<T>(is_max ? acc : acc / A(max((h1 - h0) * (w1 - w0), (I)1)));
    if (idx) idx[o] = arg;
  }
}

// Outputs i whose range [⌊i·H/OH⌋, ⌈(i+1)·H/OH⌉) holds h lie in
// [⌊h·OH/H⌋, ⌈(h+1)·OH/H⌉ - 1]; each is checked against its exact range.
template <typename T, typename I>
__device__ __forceinline__ void adaptive_avg_pool_bwd(const T* dy, PoolDims yd_, T* dx,
                                                      PoolDims xd_, bool cl) {
  const Dims<I> yd(yd_);
  const Dims<I> xd(xd_);
  typedef typename Acc<T>::t A;
  const I H = xd.size[2], W = xd.size[3], OH = yd.size[2], OW = yd.size[3];
  POOL_FOR(i, numel(xd)) {
    I n, c, h, w;
    coords(i, xd, cl, n, c, h, w);
    const I i0 = h * OH / H, i1 = min(((h + 1) * OH + H - 1) / H - 1, OH - 1);
    const I j0 = w * OW / W, j1 = min(((w + 1) * OW + W - 1) / W - 1, OW - 1);
    A acc = A(0);
    for (I oi = i0; oi <= i1; ++oi) {
      I h0, h1;
      adaptive_span(oi, OH, H, h0, h1);
      if (h < h0 || h >= h1) continue;
      for (I oj = j0; oj <= j1; ++oj) {
        I w0, w1;
        adaptive_span(oj, OW, W, w0, w1);
        if (w < w0 || w >= w1) continue;
        acc += to_acc(dy[at(yd, n, c, oi, oj)]) / A(max((h1 - h0) * (w1 - w0), (I)1));
      }
    }
    dx[at(xd, n, c, h, w)] = from_acc<T>(acc);
  }
}

// ---- dtypes ------------------------------------------------------------------------------------

#define POOL_KERNELS(T, S)                                                                        \
  extern "C" __global__ void max_pool_fwd_##S(const T* x, PoolDims xd, T* y, PoolDims yd,         \
                                              PoolWin win, i64* idx, int cl) {                    \
    POOL_INDEXED(xd, yd, max_pool_fwd<T, I>(x, xd, y, yd, win, idx, cl));                         \
  }                                                                                               \
  extern "C" __global__ void max_pool_bwd_##S(const T* dy, PoolDims yd, const i64* idx, T* dx,    \
                                              PoolDims xd, PoolWin win, int cl) {                 \
    POOL_INDEXED(xd, yd, max_pool_bwd<T, I>(dy, yd, idx, dx, xd, win, cl));                       \
  }                                                                                               \
  extern "C" __global__ void max_pool_fwd_cl_##S(const T* x, PoolDims xd, T* y, PoolDims yd,      \
                                                 PoolWin win, i64* idx) {                        \
    POOL_INDEXED(xd, yd, max_pool_fwd_cl<T, I, 1>(x, xd, y, yd, win, idx));                       \
  }                                                                                               \
  extern "C" __global__ void max_pool_fwd_cl_pack_##S(const T* x, PoolDims xd, T* y, PoolDims yd, \
                                                      PoolWin win, i64* idx) {                   \
    POOL_INDEXED(xd, yd, max_pool_fwd_cl<T, I, 16 / sizeof(T)>(x, xd, y, yd, win, idx));          \
  }                                                                                               \
  extern "C" __global__ void max_pool_bwd_cl_##S(const T* dy, PoolDims yd, const i64* idx, T* dx, \
                                                 PoolDims xd, PoolWin win) {                     \
    POOL_INDEXED(xd, yd, max_pool_bwd_cl<T, I, 1>(dy, yd, idx, dx, xd, win));                     \
  }                                                                                               \
  extern "C" __global__ void max_pool_bwd_cl_pack_##S(const T* dy, PoolDims yd, const i64* idx,   \
                                                      T* dx, PoolDims xd, PoolWin win) {         \
    POOL_INDEXED(xd, yd, max_pool_bwd_cl<T, I, 16 / sizeof(T)>(dy, yd, idx, dx, xd, win));        \
  }                                                                                               \
  extern "C" __global__ void avg_pool_fwd_##S(const T* x, PoolDims xd, T* y, PoolDims yd,         \
                                              PoolWin win, int cip, int cl) {                     \
    POOL_INDEXED(xd, yd, avg_pool_fwd<T, I>(x, xd, y, yd, win, cip, cl));                         \
  }                                                                                               \
  extern "C" __global__ void avg_pool_bwd_##S(const T* dy, PoolDims yd, T* dx, PoolDims xd,       \
                                              PoolWin win, int cip, int cl) {                     \
    POOL_INDEXED(xd, yd, avg_pool_bwd<T, I>(dy, yd, dx, xd, win, cip, cl));                       \
  }                                                                                               \
  extern "C" __global__ void adaptive_pool_fwd_##S(const T* x, PoolDims xd, T* y, PoolDims yd,    \
                                                   int is_max, i64* idx, int cl) {                \
    POOL_INDEXED(xd, yd, adaptive_pool_fwd<T, I>(x, xd, y, yd, is_max, idx, cl));                 \
  }                                                                                               \
  extern "C" __global__ void adaptive_avg_pool_bwd_##S(const T* dy, PoolDims yd, T* dx,           \
                                                       PoolDims xd, int cl) {                     \
    POOL_INDEXED(xd, yd, adaptive_avg_pool_bwd<T, I>(dy, yd, dx, xd, cl));                        \
  }
POOL_KERNELS(float, f32)
POOL_KERNELS(double, f64)
POOL_KERNELS(f16, f16)
POOL_KERNELS(bf16, bf16)
