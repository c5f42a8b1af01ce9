// Binary cross-entropy with logits over the rows of a dense [rows, len] view, forward and backward,
// with timm's BinaryCrossEntropy targets: class indices one-hot with label smoothing (mode 0) or a
// row of soft targets (mode 1), binarized above a threshold when one is set, and a positive-class
// weight. Twin of src/cpu/bce.rs.
//
// Per element, with lw = 1 + (pos_weight - 1)·y (PyTorch's binary_cross_entropy_with_logits):
// loss = (1 - y)·x + lw·softplus(-x), dloss/dx = (1 - y) - lw·σ(-x).
//
// Geometry: as softmax_xent.cu, 256-thread blocks with a warp per row below 1024 columns and a
// block per row above, rows grid-stride. The forward writes only each row's sum and the backward
// rebuilds y and σ from the labels and logits, so the one-hot targets, the per-element losses and
// the probabilities never reach memory: one read of the logits forward, one read and one write
// backward (timm's version materializes the one-hot targets, the losses and their gradient).

// ---- helpers (RowGroup, row_group and group_add come from rows.cuh) -------------------------

// The targets of one launch: y of class i in row r, thresholded; lw from y.
template <typename A> struct BceTargets {
  int mode;
  const i64* labels;
  A q_on, q_off;  // mode 0: the smoothed one-hot values, rounded from f64 once as the twin
  bool thresh;
  A threshold, pos_weight;

  __device__ __forceinline__ A y(const A* probs, i64 r, i64 len, i64 i) const {
    A v = mode == 0 ? (i == labels[r] ? q_on : q_off) : probs[r * len + i];
    return thresh ? (v > threshold ? A(1) : A(0)) : v;
  }
  __device__ __forceinline__ A log_weight(A y) const { return (pos_weight - A(1)) * y + A(1); }
};

template <typename A>
__device__ __forceinline__ BceTargets<A> bce_targets(int mode, const i64* labels, double smoothing,
                                                     i64 len, int thresh, double threshold,
                                                     double pos_weight) {
  BceTargets<A> t;
  t.mode = mode;
  t.labels = labels;
  t.q_off = A(smoothing / (double)len);
  t.q_on = A((1.0 - smoothing) + smoothing / (double)len);
  t.thresh = thresh != 0;
  t.threshold = A(threshold);
  t.pos_weight = A(pos_weight);
  return t;
}

// softplus(-x) = -log σ(x), without overflow.
template <typename A> __device__ __forceinline__ A softplus_neg(A x) {
  return fmax(-x, A(0)) + log1p(exp(-fabs(x)));
}

// ---- kernels --------------------------------------------------------------------------------

// loss[r] = Σ_i (1 - y)·x + lw·softplus(-x).
template <typename T>
__device__ void bce_fwd(const T* x, i64 len, i64 rows, BceTargets<typename Acc<T>::t> t,
                        const typename Acc<T>::t* probs, typename Acc<T>::t* loss, bool warp) {
  typedef typename Acc<T>::t A;
  RowGroup g = row_group(warp);
  for (i64 r = g.first; r < rows; r += g.step) {
    const T* xr = x + r * len;
    A acc[1] = {A(0)};
    for (i64 i = g.rank; i < len; i += g.size) {
      const A v = to_acc(xr[i]), y = t.y(probs, r, len, i);
      acc[0] += (A(1) - y) * v + t.log_weight(y) * softplus_neg(v);
    }
    group_add(acc, warp);
    if (g.rank == 0) loss[r] = acc[0];
  }
}

// dx = scale[r]·((1 - y) - lw·σ(-x)).
template <typename T>
__device__ void bce_bwd(const T* x, i64 len, i64 rows, BceTargets<typename Acc<T>::t> t,
                        const typename Acc<T>::t* probs, const typename Acc<T>::t* scale, T* dx,
                        bool warp) {
  typedef typename Acc<T>::t A;
  RowGroup g = row_group(warp);
  for (i64 r = g.first; r < rows; r += g.step) {
    const T* xr = x + r * len;
    T* dr = dx + r * len;
    const A sc = scale[r];
    for (i64 i = g.rank; i < len; i += g.size) {
      const A v = to_acc(xr[i]), y = t.y(probs, r, len, i);
      const A sig_neg = A(1) / (A(1) + exp(v));
      dr[i] = from_acc<T>(sc * ((A(1) - y) - t.log_weight(y) * sig_neg));
    }
  }
}

// ---- dtypes ---------------------------------------------------------------------------------
// A: Acc<T>::t, the type of the soft targets, the per-row losses and the scales (f32 for f16/bf16
// logits: autocast's losses compute in f32, and the logits need no cast pass).

#define BCE_KERNELS(T, A, S)                                                                      \
  extern "C" __global__ void bce_fwd_##S(const T* x, i64 len, i64 rows, int mode,                \
                                         const i64* labels, double smoothing, const A* probs,     \
                                         int thresh, double threshold, double pos_weight,         \
                                         A* loss, int warp) {                                     \
    bce_fwd<T>(x, len, rows,                                                                      \
               bce_targets<Acc<T>::t>(mode, labels, smoothing, len, thresh, threshold,            \
                                      pos_weight),                                                \
               probs, loss, warp != 0);                                                           \
  }                                                                                               \
  extern "C" __global__ void bce_bwd_##S(const T* x, i64 len, i64 rows, int mode,                \
                                         const i64* labels, double smoothing, const A* probs,     \
                                         int thresh, double threshold, double pos_weight,         \
                                         const A* scale, T* dx, int warp) {                       \
    bce_bwd<T>(x, len, rows,                                                                      \
               bce_targets<Acc<T>::t>(mode, labels, smoothing, len, thresh, threshold,            \
                                      pos_weight),                                                \
               probs, scale, dx, warp != 0);                                                      \
  }
BCE_KERNELS(float, float, f32)
BCE_KERNELS(double, double, f64)
BCE_KERNELS(f16, float, f16)
BCE_KERNELS(bf16, float, bf16)
