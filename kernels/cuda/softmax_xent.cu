// Softmax / log-softmax over the rows of a dense [rows, len] view, forward and backward, and the
// fused softmax cross-entropy: the forward writes only each row's loss and log-sum-exp, the
// backward rebuilds softmax from that lse, so probabilities never reach memory. Targets are class
// indices with label smoothing (mode 0) or a distribution per row (mode 1). Twin of
// src/cpu/softmax_xent.rs.
//
// Geometry: as reduce.cu, 256-thread blocks with a warp per row below 1024 columns and a block
// per row above, rows grid-stride. Row statistics are "online": each thread keeps a running max m
// and s = Σ exp(x - m), rescaling s when m grows, so one read of the row yields the lse. The
// cross-entropy also sums Σ w·(x - x0), Σ w for its targets, shifted by the row's first logit x0
// so that len·lse - Σx does not cancel.

// ---- helpers (RowGroup, row_group and group_add come from rows.cuh) -------------------------

// Running (max, Σ exp(x - max)).
template <typename A> struct Online {
  A m, s;
  __device__ __forceinline__ void add(A v) {
    if (v > m) {
      s = s * exp(m - v) + A(1);
      m = v;
    } else if (v > -A(1) / A(0) || v != v) {
      s += exp(v - m);
    }
  }
  __device__ __forceinline__ void merge(A om, A os) {
    A nm = fmax(m, om);
    A ninf = -A(1) / A(0);
    s = (m == ninf ? A(0) : s * exp(m - nm)) + (om == ninf ? A(0) : os * exp(om - nm));
    m = nm;
  }
  // log Σ exp(x) over the group (-inf for an all -inf row, as the twin).
  __device__ __forceinline__ A lse(bool warp) {
    __shared__ A part_m[32], part_s[32];
    for (int o = 16; o > 0; o >>= 1) {
      A om = __shfl_xor_sync(0xffffffffu, m, o), os = __shfl_xor_sync(0xffffffffu, s, o);
      merge(om, os);
    }
    if (!warp) {
      __syncthreads();
      int lane = threadIdx.x & 31;
      if (lane == 0) part_m[threadIdx.x >> 5] = m, part_s[threadIdx.x >> 5] = s;
      __syncthreads();
      bool live = lane < (int)(blockDim.x >> 5);
      m = live ? part_m[lane] : -A(1) / A(0);
      s = live ? part_s[lane] : A(0);
      for (int o = 16; o > 0; o >>= 1) {
        A om = __shfl_xor_sync(0xffffffffu, m, o), os = __shfl_xor_sync(0xffffffffu, s, o);
        merge(om, os);
      }
    }
    return m == -A(1) / A(0) ? m : m + log(s);
  }
};

// ---- kernels --------------------------------------------------------------------------------

template <typename T>
__device__ void softmax_rows(const T* x, T* y, i64 rows, i64 len, bool log_, bool warp) {
  typedef typename Acc<T>::t A;
  RowGroup g = row_group(warp);
  for (i64 r = g.first; r < rows; r += g.step) {
    const T* xr = x + r * len;
    T* yr = y + r * len;
    Online<A> o = {-A(1) / A(0), A(0)};
    for (i64 i = g.rank; i < len; i += g.size) o.add(to_acc(xr[i]));
    A lse = o.lse(warp);
    for (i64 i = g.rank; i < len; i += g.size) {
      A v = to_acc(xr[i]) - lse;
      yr[i] = from_acc<T>(log_ ? v : exp(v));
    }
  }
}

// softmax: dx = y ⊙ (dy - Σ dy⊙y); log-softmax: dx = dy - exp(y)·Σ dy.
template <typename T>
__device__ void softmax_rows_bwd(const T* y, const T* dy, T* dx, i64 rows, i64 len, bool log_,
                                 bool warp) {
  typedef typename Acc<T>::t A;
  RowGroup g = row_group(warp);
  for (i64 r = g.first; r < rows; r += g.step) {
    const T *yr = y + r * len, *gr = dy + r * len;
    T* dr = dx + r * len;
    A s[1] = {A(0)};
    for (i64 i = g.rank; i < len; i += g.size)
      s[0] += log_ ? to_acc(gr[i]) : to_acc(gr[i]) * to_acc(yr[i]);
    group_add(s, warp);
    for (i64 i = g.rank; i < len; i += g.size) {
      A yv = to_acc(yr[i]), gv = to_acc(gr[i]);
      dr[i] = from_acc<T>(log_ ? gv - exp(yv) * s[0] : yv * (gv - s[0]));
    }
  }
}

// Per-row loss = Σ_k q_k·(lse - x_k) and lse. mode 0: q = one-hot(label)·(1-smoothing) +
// smoothing/len (a label outside [0, len) contributes no on-mass, as the twin); mode 1: q = probs.
template <typename T>
__device__ void xent_fwd(const T* x, i64 len, i64 rows, int mode, const i64* labels,
                         double smoothing, const typename Acc<T>::t* probs,
                         typename Acc<T>::t* loss, typename Acc<T>::t* lse_out, bool warp) {
  typedef typename Acc<T>::t A;
  RowGroup g = row_group(warp);
  const bool smooth = smoothing != 0.0;
  for (i64 r = g.first; r < rows; r += g.step) {
    const T* xr = x + r * len;
    const A x0 = len > 0 ? to_acc(xr[0]) : A(0);
    Online<A> o = {-A(1) / A(0), A(0)};
    A acc[2] = {A(0), A(0)};  // Σ w·(x - x0), Σ w
    if (mode == 0) {
      for (i64 i = g.rank; i < len; i += g.size) {
        A v = to_acc(xr[i]);
        o.add(v);
        if (smooth) acc[0] += v - x0;
      }
    } else {
      const A* qr = probs + r * len;
      for (i64 i = g.rank; i < len; i += g.size) {
        A v = to_acc(xr[i]), q = qr[i];
        o.add(v);
        acc[0] += q * (v - x0);
        acc[1] += q;
      }
    }
    A lse = o.lse(warp);
    group_add(acc, warp);
    if (g.rank == 0) {
      A l;
      if (mode == 0) {
        i64 t = labels[r];
        l = (t >= 0 && t < len) ? A(1.0 - smoothing) * (lse - to_acc(xr[t])) : A(0);
        if (smooth) l += A(smoothing / (double)len) * (A(len) * (lse - x0) - acc[0]);
      } else {
        l = acc[1] * (lse - x0) - acc[0];
      }
      loss[r] = l;
      lse_out[r] = lse;
    }
  }
}

// dx = scale[r]·(exp(x - lse[r])·Σq - q); Σq is 1 for labels, summed over the row for soft targets
// (timm's SoftTargetCrossEntropy does not ask its rows to sum to 1).
template <typename T>
__device__ void xent_bwd(const T* x, i64 len, i64 rows, int mode, const i64* labels,
                         double smoothing, const typename Acc<T>::t* probs,
                         const typename Acc<T>::t* lse, const typename Acc<T>::t* scale, T* dx,
                         bool warp) {
  typedef typename Acc<T>::t A;
  RowGroup g = row_group(warp);
  // The twin's target probabilities, rounded from f64 once.
  const A q_off = A(smoothing / (double)len), q_on = A((1.0 - smoothing) + smoothing / (double)len);
  for (i64 r = g.first; r < rows; r += g.step) {
    const T* xr = x + r * len;
    T* dr = dx + r * len;
    const A l = lse[r], sc = scale[r];
    if (mode == 0) {
      const i64 t = labels[r];
      for (i64 i = g.rank; i < len; i += g.size)
        dr[i] = from_acc<T>(sc * (exp(to_acc(xr[i]) - l) - (i == t ? q_on : q_off)));
    } else {
      const A* qr = probs + r * len;
      A mass[1] = {A(0)};
      for (i64 i = g.rank; i < len; i += g.size) mass[0] += qr[i];
      group_add(mass, warp);
      for (i64 i = g.rank; i < len; i += g.size)
        dr[i] = from_acc<T>(sc * (exp(to_acc(xr[i]) - l) * mass[0] - qr[i]));
    }
  }
}

// ---- dtypes ---------------------------------------------------------------------------------

// A: Acc<T>::t, the type of the soft targets, per-row losses, log-sum-exps and scales (f32 for
// f16/bf16 logits: autocast's losses compute in f32, and the logits need no cast pass).
#define SOFTMAX_KERNELS(T, A, S)                                                                  \
  extern "C" __global__ void softmax_rows_##S(const T* x, T* y, i64 rows, i64 len, int log_,     \
                                              int warp) {                                         \
    softmax_rows<T>(x, y, rows, len, log_ != 0, warp != 0);                                       \
  }                                                                                               \
  extern "C" __global__ void softmax_rows_bwd_##S(const T* y, const T* dy, T* dx, i64 rows,      \
                                                  i64 len, int log_, int warp) {                  \
    softmax_rows_bwd<T>(y, dy, dx, rows, len, log_ != 0, warp != 0);                              \
  }                                                                                               \
  extern "C" __global__ void xent_fwd_##S(const T* x, i64 len, i64 rows, int mode,               \
                                          const i64* labels, double smoothing, const A* probs,    \
                                          A* loss, A* lse, int warp) {                            \
    xent_fwd<T>(x, len, rows, mode, labels, smoothing, probs, loss, lse, warp != 0);              \
  }                                                                                               \
  extern "C" __global__ void xent_bwd_##S(const T* x, i64 len, i64 rows, int mode,               \
                                          const i64* labels, double smoothing, const A* probs,    \
                                          const A* lse, const A* scale, T* dx, int warp) {        \
    xent_bwd<T>(x, len, rows, mode, labels, smoothing, probs, lse, scale, dx, warp != 0);         \
  }
SOFTMAX_KERNELS(float, float, f32)
SOFTMAX_KERNELS(double, double, f64)
SOFTMAX_KERNELS(f16, float, f16)
SOFTMAX_KERNELS(bf16, float, bf16)
