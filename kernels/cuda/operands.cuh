#line 1 "operands.cuh"
// GEMM operands and outputs, shared by the SIMT main loop (tile_gemm.cuh: gemm.cu, conv.cu) and
// the tensor-core one (tc_tile.cuh: gemm_tc.cu, conv_tc.cu), so a convolution's implicit im2col
// matrices (conv_operands.cuh) feed both.
//
// A loader presents one operand as a matrix of rows (m of A, n of B) by k:
//   p             its base pointer (element type T);
//   kfast()       whether consecutive k are adjacent in memory, so staging should walk k (SIMT);
//   slot(r)       per-row state computed once per tile (offsets, pixel coordinates) and `ok`,
//                 false for rows past the matrix;
//   at(slot, k)   the element's offset from p, or -1 where the operand is an implicit zero
//                 (convolution padding, a tap no output reads). Called for ok slots and k inside
//                 the reduction only.
// A store writes output element (m, n) at p + row(m) + col(n) (element type `Elem`), which covers
// strided matrices, NCHW/NHWC feature maps and split-K workspaces.

// A dense or strided matrix: element (mn, k) at p[mn·s_mn + k·s_k].
template <typename T> struct Strided {
  const T* p;
  i64 s_mn, s_k;
  int lim;
  bool fast;
  struct Slot {
    i64 off;
    bool ok;
  };
  __device__ bool kfast() const { return fast; }
  __device__ Slot slot(int mn) const { return {mn * s_mn, mn < lim}; }
  __device__ i64 at(const Slot& s, int k) const { return s.off + k * s_k; }
};

// Writes element (m, n) at p[m·rs + n·cs].
template <typename S> struct StoreAffine {
  typedef S Elem;
  S* p;
  i64 rs, cs;
  __device__ i64 row(int m) const { return m * rs; }
  __device__ i64 col(int n) const { return n * cs; }
};

// Everything a launch of gemm.cu or gemm_tc.cu needs, by value (matches Params in
// src/cuda/gemm.rs).
struct GemmParams {
  const void* a;
  const void* b;
  void* c;
  i64 sa[3], sb[3], sc[3];  // element strides (batch, row, column) of A, B and C
  int batch, m, n, k;
  float alpha, beta;
  // Per operand, read by each kernel its own way: gemm.cu stages A/B walking k (its stride is
  // 1), else walking m/n; gemm_tc.cu copies A/B in 16-byte cp.async chunks, else gathers it.
  int a_flag, b_flag;
};

// Element (slot's row, k) of loader `l` in the compute type (0 where `at` says so).
template <typename A, class L>
__device__ __forceinline__ A load_acc(const L& l, const typename L::Slot& s, int k) {
  i64 o = l.at(s, k);
  return o < 0 ? A(0) : to_acc(l.p[o]);
}
