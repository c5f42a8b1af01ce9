// Row scheduling shared by the row kernels (reduce.cu, softmax_xent.cu): a warp per row for short
// rows, a block per row for long ones, each looping over rows.

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
