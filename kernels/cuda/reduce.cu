// Row reductions over a dense [rows, len] view: sum / max / min (NaN propagates) and argmax
// (first index of the max; the first NaN wins, as PyTorch). Twin of src/cpu/reduce.rs.
//
// Geometry: 256-thread blocks. Rows shorter than 1024 get a warp each (8 rows a block, reduced
// with shuffles only); longer rows get a whole block (shuffles, then one shared-memory step
// between the 8 warps). Both loop over rows grid-stride, so any rows x len fits one launch.
// Sums accumulate in Acc<T> (f32, f64 for f64).

// ---- helpers (RowGroup and row_group come from rows.cuh) -----------------------------------

template <typename A, typename F> __device__ __forceinline__ A warp_all(A v, F f) {
  for (int o = 16; o > 0; o >>= 1) v = f(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// f-reduction over the row's group; every thread of the group gets the result. `identity` fills
// the lanes past the block's last warp.
template <typename A, typename F>
__device__ __forceinline__ A group_all(A v, F f, A identity, bool warp) {
  __shared__ A part[32];
  v = warp_all(v, f);
  if (warp) return v;
  __syncthreads();  // part may still be read by the previous row
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
  __syncthreads();
  v = (int)(threadIdx.x & 31) < (int)(blockDim.x >> 5) ? part[threadIdx.x & 31] : identity;
  return warp_all(v, f);
}

struct Plus {
  template <typename A> __device__ __forceinline__ A operator()(A a, A b) const { return a + b; }
};
struct NanMax {
  template <typename A> __device__ __forceinline__ A operator()(A a, A b) const {
    return (a > b || a != a) ? a : b;
  }
};
struct NanMin {
  template <typename A> __device__ __forceinline__ A operator()(A a, A b) const {
    return (a < b || a != a) ? a : b;
  }
};

// ---- kernels --------------------------------------------------------------------------------

// op: 0 sum, 1 max, 2 min (ReduceOp order).
template <typename T>
__device__ void reduce_rows(const T* x, T* out, i64 rows, i64 len, int op, bool warp) {
  typedef typename Acc<T>::t A;
  RowGroup g = row_group(warp);
  const A inf = A(1) / A(0);
  for (i64 r = g.first; r < rows; r += g.step) {
    const T* row = x + r * len;
    A v;
    if (op == 0) {
      v = A(0);
      for (i64 i = g.rank; i < len; i += g.size) v += to_acc(row[i]);
      v = group_all(v, Plus(), A(0), warp);
    } else if (op == 1) {
      v = -inf;
      for (i64 i = g.rank; i < len; i += g.size) v = NanMax()(v, to_acc(row[i]));
      v = group_all(v, NanMax(), -inf, warp);
    } else {
      v = inf;
      for (i64 i = g.rank; i < len; i += g.size) v = NanMin()(v, to_acc(row[i]));
      v = group_all(v, NanMin(), inf, warp);
    }
    if (g.rank == 0) out[r] = from_acc<T>(v);
  }
}

// Whether candidate (b, ib) beats (a, ia): NaN beats numbers, then larger, then lower index.
template <typename A> __device__ __forceinline__ bool beats(A b, i64 ib, A a, i64 ia) {
  bool an = a != a, bn = b != b;
  if (an != bn) return bn;
  if (an || b == a) return ib < ia;
  return b > a;
}

template <typename T>
__device__ void argmax_rows(const T* x, i64* out, i64 rows, i64 len, bool warp) {
  typedef typename Acc<T>::t A;
  __shared__ A part_v[32];
  __shared__ i64 part_i[32];
  const i64 none = 0x7fffffffffffffffll;
  const A neg_inf = -A(1) / A(0);
  RowGroup g = row_group(warp);
  for (i64 r = g.first; r < rows; r += g.step) {
    const T* row = x + r * len;
    A v = neg_inf;
    i64 idx = none;
    for (i64 i = g.rank; i < len; i += g.size) {
      A y = to_acc(row[i]);
      if (beats(y, i, v, idx)) v = y, idx = i;
    }
    for (int pass = 0; pass < (warp ? 1 : 2); ++pass) {
      for (int o = 16; o > 0; o >>= 1) {
        A ov = __shfl_xor_sync(0xffffffffu, v, o);
        i64 oi = __shfl_xor_sync(0xffffffffu, idx, o);
        if (beats(ov, oi, v, idx)) v = ov, idx = oi;
      }
      if (pass == 0 && !warp) {
        __syncthreads();
        if ((threadIdx.x & 31) == 0) part_v[threadIdx.x >> 5] = v, part_i[threadIdx.x >> 5] = idx;
        __syncthreads();
        bool live = (int)(threadIdx.x & 31) < (int)(blockDim.x >> 5);
        v = live ? part_v[threadIdx.x & 31] : neg_inf;
        idx = live ? part_i[threadIdx.x & 31] : none;
      }
    }
    if (g.rank == 0) out[r] = idx == none ? 0 : idx;  // an empty row gives 0, as the twin
  }
}

// ---- dtypes ---------------------------------------------------------------------------------

#define REDUCE_KERNELS(T, S)                                                                      \
  extern "C" __global__ void reduce_rows_##S(const T* x, T* out, i64 rows, i64 len, int op,      \
                                             int warp) {                                          \
    reduce_rows<T>(x, out, rows, len, op, warp != 0);                                             \
  }                                                                                               \
  extern "C" __global__ void argmax_rows_##S(const T* x, i64* out, i64 rows, i64 len, int warp) { \
    argmax_rows<T>(x, out, rows, len, warp != 0);                                                 \
  }
REDUCE_KERNELS(float, f32)
REDUCE_KERNELS(double, f64)
REDUCE_KERNELS(f16, f16)
REDUCE_KERNELS(bf16, bf16)
