#line 1 "tile_gemm.cuh"
// The shared-memory tiled GEMM main loop behind gemm.cu and conv.cu (prepended to both by the
// registry). C[m, n] = alpha·Σ_k A[m, k]·B[k, n] + beta·C[m, n] over one output tile.
//
// Geometry: a block of 256 threads owns a BM×BN tile of C; thread (tx, ty) keeps TM×TN
// accumulators in registers. Each k-step stages a BM×BK slice of A and a BK×BN slice of B in
// shared memory, both stored k-major (As[k][m], Bs[k][n]) so the inner product reads 4-wide
// vectors: a thread's rows are ty·4 + {0..3} (+ BM/2 for TM = 8), its columns tx·4 + {0..3}
// (+ BN/2), so a warp's vector loads of B cover 256 consecutive bytes (no bank conflicts) and
// its loads of A are broadcasts. The next slice is fetched into registers while the current
// one is multiplied, hiding global latency behind BK·TM·TN FMAs per thread; shared memory is
// double-buffered, so one barrier a k-step suffices.
//
// Operands are loaders and outputs stores (operands.cuh, prepended), so convolutions gather their
// implicit im2col matrices with the same loop; staging walks k or the row index as the loader's
// `kfast()` says, so global reads coalesce. The row padding of 4 keeps rows 16-byte aligned and
// spreads k-major stores of a k-fast slice over all 32 banks.

// ---- tile shapes -------------------------------------------------------------------------------

template <int BM_, int BN_, int BK_, int TM_, int TN_> struct TileCfg {
  static constexpr int BM = BM_, BN = BN_, BK = BK_, TM = TM_, TN = TN_;
  static constexpr int TX = BN / TN, TY = BM / TM, THREADS = TX * TY;
  static constexpr int SA = BM * BK / THREADS, SB = BN * BK / THREADS;  // staged per thread
  static_assert(THREADS == 256, "kiln's tiles run 256 threads");
  static_assert(TM % 4 == 0 && TN % 4 == 0, "fragments are read 4-wide");
};
// 64×64 tiles, 4×4 per thread: small or skinny problems, and f64.
typedef TileCfg<64, 64, 16, 4, 4> Tile64;
// 128×128 tiles, 8×8 per thread: twice the FMAs per shared-memory load, for large problems.
typedef TileCfg<128, 128, 8, 8, 8> Tile128;

#define KILN_TILE_THREADS 256

// ---- helpers -----------------------------------------------------------------------------------

__device__ __forceinline__ void ld4(const float* p, float* v) {
  float4 t = *reinterpret_cast<const float4*>(p);
  v[0] = t.x, v[1] = t.y, v[2] = t.z, v[3] = t.w;
}
__device__ __forceinline__ void ld4(const double* p, double* v) {
  double2 t0 = *reinterpret_cast<const double2*>(p);
  double2 t1 = *reinterpret_cast<const double2*>(p + 2);
  v[0] = t0.x, v[1] = t0.y, v[2] = t1.x, v[3] = t1.y;
}

// ---- the main loop -----------------------------------------------------------------------------

// Accumulates A[m0.., kbeg..kend)·B[kbeg..kend), n0..] for this block's tile and stores
// alpha·acc (+ beta·C when beta != 0; C is not read otherwise). All threads must call it.
// Shared memory is double-buffered: slice i+1 is written into one buffer while slice i is read
// from the other, so each k-step needs one barrier.
template <class C, typename A, class LA, class LB, class ST>
__device__ __forceinline__ void tile_gemm(const LA& la, const LB& lb, const ST& st, int M, int N,
                                          int kbeg, int kend, int m0, int n0, A alpha, A beta) {
  __shared__ __align__(16) A As[2][C::BK][C::BM + 4];
  __shared__ __align__(16) A Bs[2][C::BK][C::BN + 4];
  const int tid = threadIdx.x;
  const int tx = tid % C::TX, ty = tid / C::TX;
  const bool afast = la.kfast(), bfast = lb.kfast();
  // Staging coordinates: slot s of this thread holds element e = tid + s·THREADS of a slice,
  // at (row r, k) when the loader walks k fastest, else at (k, row r).
#define KILN_RA(s) (afast ? (tid + (s) * C::THREADS) / C::BK : (tid + (s) * C::THREADS) % C::BM)
#define KILN_KA(s) (afast ? (tid + (s) * C::THREADS) % C::BK : (tid + (s) * C::THREADS) / C::BM)
#define KILN_RB(s) (bfast ? (tid + (s) * C::THREADS) / C::BK : (tid + (s) * C::THREADS) % C::BN)
#define KILN_KB(s) (bfast ? (tid + (s) * C::THREADS) % C::BK : (tid + (s) * C::THREADS) / C::BN)
  typename LA::Slot sa[C::SA];
  typename LB::Slot sb[C::SB];
#pragma unroll
  for (int s = 0; s < C::SA; ++s) sa[s] = la.slot(m0 + KILN_RA(s));
#pragma unroll
  for (int s = 0; s < C::SB; ++s) sb[s] = lb.slot(n0 + KILN_RB(s));

  A pa[C::SA], pb[C::SB];
  auto fetch = [&](int k0) {
#pragma unroll
    for (int s = 0; s < C::SA; ++s) {
      int k = k0 + KILN_KA(s);
      pa[s] = (sa[s].ok && k < kend) ? load_acc<A>(la, sa[s], k) : A(0);
    }
#pragma unroll
    for (int s = 0; s < C::SB; ++s) {
      int k = k0 + KILN_KB(s);
      pb[s] = (sb[s].ok && k < kend) ? load_acc<A>(lb, sb[s], k) : A(0);
    }
  };
  auto stage = [&](int buf) {
#pragma unroll
    for (int s = 0; s < C::SA; ++s) As[buf][KILN_KA(s)][KILN_RA(s)] = pa[s];
#pragma unroll
    for (int s = 0; s < C::SB; ++s) Bs[buf][KILN_KB(s)][KILN_RB(s)] = pb[s];
  };
#undef KILN_RA
#undef KILN_KA
#undef KILN_RB
#undef KILN_KB

  A acc[C::TM][C::TN];
#pragma unroll
  for (int i = 0; i < C::TM; ++i)
#pragma unroll
    for (int j = 0; j < C::TN; ++j) acc[i][j] = A(0);

  if (kbeg < kend) {
    fetch(kbeg);
    stage(0);
    __syncthreads();
  }
  int buf = 0;
  for (int k0 = kbeg; k0 < kend; k0 += C::BK, buf ^= 1) {
    const bool more = k0 + C::BK < kend;
    if (more) fetch(k0 + C::BK);  // global loads in flight during the FMAs below
#pragma unroll
    for (int kk = 0; kk < C::BK; ++kk) {
      A a[C::TM], b[C::TN];
#pragma unroll
      for (int i = 0; i < C::TM / 4; ++i)
        ld4(&As[buf][kk][i * (C::BM * 4 / C::TM) + ty * 4], &a[i * 4]);
#pragma unroll
      for (int j = 0; j < C::TN / 4; ++j)
        ld4(&Bs[buf][kk][j * (C::BN * 4 / C::TN) + tx * 4], &b[j * 4]);
#pragma unroll
      for (int i = 0; i < C::TM; ++i)
#pragma unroll
        for (int j = 0; j < C::TN; ++j) acc[i][j] += a[i] * b[j];
    }
    if (more) stage(buf ^ 1);  // that buffer was last read before the previous barrier
    __syncthreads();
  }

  // Epilogue: thread-local rows/columns back to tile coordinates.
#pragma unroll
  for (int i = 0; i < C::TM; ++i) {
    int m = m0 + (i / 4) * (C::BM * 4 / C::TM) + ty * 4 + i % 4;
    if (m >= M) continue;
    i64 r = st.row(m);
#pragma unroll
    for (int j = 0; j < C::TN; ++j) {
      int n = n0 + (j / 4) * (C::BN * 4 / C::TN) + tx * 4 + j % 4;
      if (n >= N) continue;
      typename ST::Elem* q = st.p + r + st.col(n);
      A v = alpha * acc[i][j];
      if (beta != A(0)) v += beta * to_acc(*q);
      *q = from_acc<typename ST::Elem>(v);
    }
  }
}
