// Row scheduling shared by the row kernels (reduce.cu, softmax_xent.cu, bce.cu): a warp per row for
// short rows, a block per row for long ones, each looping over rows; and sums over a row's group.

// Which rows a thread serves and where it stands in its row's group (a warp or the block).
struct RowGroup {
  i64 first, step;
  int rank, size;
};
__device__ __forceinline__ RowGroup row_group(bool warp) {
  RowGroup g;
  if (warp) {
    g.first = ((i64)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    g.step = ((i64)gridDim.x * blockDim.x) >> 5;
    g.rank = threadIdx.x & 31;
    g.size = 32;
  } else {
    g.first = blockIdx.x;
    g.step = gridDim.x;
    g.rank = threadIdx.x;
    g.size = blockDim.x;
  }
  return g;
}

// Sum over a warp; every lane gets it.
template <typename A> __device__ __forceinline__ A warp_add(A v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sums K values over the row's group; every thread gets the totals.
template <typename A, int K> __device__ __forceinline__ void group_add(A (&v)[K], bool warp) {
  __shared__ A part[K][32];
  for (int j = 0; j < K; ++j) v[j] = warp_add(v[j]);
  if (warp) return;
  __syncthreads();  // part may still be read by the previous row
  int lane = threadIdx.x & 31;
  if (lane == 0)
    for (int j = 0; j < K; ++j) part[j][threadIdx.x >> 5] = v[j];
  __syncthreads();
  bool live = lane < (int)(blockDim.x >> 5);
  for (int j = 0; j < K; ++j) v[j] = warp_add(live ? part[j][lane] : A(0));
}
