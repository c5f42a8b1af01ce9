#line 1 "gemm_tc.cu"
// Tensor-core GEMM: C[m, n] = Σ_k A[m, k]·B[k, n] for row-major f16 or bf16 A [m, k] and
// B [k, n], f32 accumulation and f32 C [m, n]. Host side: src/cuda/gemm_tc.rs. Needs sm_80+
// (mma.sync m16n8k16, ldmatrix, cp.async), k and n multiples of 8 (rows of 16-byte chunks).
//
// Launch: 128 threads (4 warps) a block own a 64×64 tile of C, grid.x the tiles (column tiles
// fastest). Each warp owns a 32×32 quarter: 2×4 mma tiles of 16×8, 32 f32 accumulators a lane.
// K advances 32 at a time through a 3-stage cp.async pipeline: while stage s is multiplied, the
// next two k-slices are in flight into the other stages. Each thread copies 16-byte chunks (two of
// A, two of B a slice); chunks past m, n or k are zero-filled by the copy's src-size, so edges
// need no branches in the inner loop. Fragments come from shared memory through ldmatrix: A
// (stored m-major) with .x4, B (stored k-major) with .x4.trans, which hands each lane exactly
// the pairs the mma's A and B fragment layouts ask for. Rows are padded by 8 elements (16 bytes)
// so the 8 row addresses of one ldmatrix fall in different banks.

#define TC_BM 64
#define TC_BN 64
#define TC_BK 32
#define TC_STAGES 3
#define TC_PAD 8
#define TC_THREADS 128

// ---- helpers -----------------------------------------------------------------------------------

__device__ __forceinline__ unsigned smem_addr(const void* p) {
  return (unsigned)__cvta_generic_to_shared(p);
}

// 16 bytes global -> shared; the first `bytes` (0 or 16) come from `src`, the rest are zero.
__device__ __forceinline__ void cp16(void* dst, const void* src, int bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(smem_addr(dst)), "l"(src),
               "r"(bytes));
}

__device__ __forceinline__ void commit() { asm volatile("cp.async.commit_group;"); }

// Waits until at most `n` committed groups are still in flight.
template <int n> __device__ __forceinline__ void wait_groups() {
  asm volatile("cp.async.wait_group %0;" ::"n"(n));
}

// Four 8×8 matrices of 16-bit elements; lanes 8i..8i+7 give the row addresses of matrix i.
__device__ __forceinline__ void ldm_x4(unsigned* r, const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(row)));
}
__device__ __forceinline__ void ldm_x4_trans(unsigned* r, const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(row)));
}

// d += a·b for one 16×8×16 tile.
template <typename T> __device__ __forceinline__ void mma(float* d, const unsigned* a, const unsigned* b);
template <> __device__ __forceinline__ void mma<f16>(float* d, const unsigned* a, const unsigned* b) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
               "{%8,%9}, {%0,%1,%2,%3};"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
template <> __device__ __forceinline__ void mma<bf16>(float* d, const unsigned* a, const unsigned* b) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
               "{%8,%9}, {%0,%1,%2,%3};"
               : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

template <typename T> struct TcSmem {
  T a[TC_STAGES][TC_BM][TC_BK + TC_PAD];
  T b[TC_STAGES][TC_BK][TC_BN + TC_PAD];
};

// Starts the copies of k-slice `kt` into stage `s`: 256 chunks of A (64 rows × 4) and 256 of B
// (32 rows × 8), two of each a thread.
template <typename T>
__device__ __forceinline__ void load_slice(TcSmem<T>& sm, int s, int kt, const T* a, const T* b,
                                           int m, int n, int k, int m0, int n0) {
  const int k0 = kt * TC_BK;
  for (int c = threadIdx.x; c < TC_BM * TC_BK / 8; c += TC_THREADS) {
    int r = c / (TC_BK / 8), kc = c % (TC_BK / 8) * 8;
    bool ok = m0 + r < m && k0 + kc < k;
    cp16(&sm.a[s][r][kc], ok ? a + (long long)(m0 + r) * k + k0 + kc : a, ok ? 16 : 0);
  }
  for (int c = threadIdx.x; c < TC_BK * TC_BN / 8; c += TC_THREADS) {
    int r = c / (TC_BN / 8), nc = c % (TC_BN / 8) * 8;
    bool ok = k0 + r < k && n0 + nc < n;
    cp16(&sm.b[s][r][nc], ok ? b + (long long)(k0 + r) * n + n0 + nc : b, ok ? 16 : 0);
  }
}

// ---- kernels -----------------------------------------------------------------------------------

template <typename T>
__device__ __forceinline__ void gemm_tc(const T* a, const T* b, float* c, int m, int n, int k) {
  __shared__ __align__(16) TcSmem<T> sm;
  const int tiles_n = (n + TC_BN - 1) / TC_BN;
  const int m0 = blockIdx.x / tiles_n * TC_BM, n0 = blockIdx.x % tiles_n * TC_BN;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int wm = warp / 2 * 32, wn = warp % 2 * 32;
  float acc[2][4][4] = {};
  const int slices = (k + TC_BK - 1) / TC_BK;
  for (int s = 0; s < TC_STAGES - 1; s++) {
    if (s < slices) load_slice(sm, s, s, a, b, m, n, k, m0, n0);
    commit();
  }
  // ldmatrix row addresses: lane l gives row l%8 of matrix l/8. A's matrices are (rows 0-7,
  // k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15); B's (k 0-7, n 0-7),
  // (k 8-15, n 0-7), (k 0-7, n 8-15), (k 8-15, n 8-15).
  const int mat = lane / 8, row = lane % 8;
  const int a_row = (mat & 1) * 8 + row, a_k = (mat >> 1) * 8;
  const int b_k = (mat & 1) * 8 + row, b_n = (mat >> 1) * 8;
  for (int kt = 0; kt < slices; kt++) {
    // Slice kt has landed once at most STAGES-2 newer groups are in flight; the barrier also
    // tells every warp that the stage about to be refilled was read in the last iteration.
    wait_groups<TC_STAGES - 2>();
    __syncthreads();
    if (kt + TC_STAGES - 1 < slices)
      load_slice(sm, (kt + TC_STAGES - 1) % TC_STAGES, kt + TC_STAGES - 1, a, b, m, n, k, m0, n0);
    commit();
    const int s = kt % TC_STAGES;
    for (int kk = 0; kk < TC_BK; kk += 16) {
      unsigned af[2][4], bfr[2][4];
      for (int i = 0; i < 2; i++) ldm_x4(af[i], &sm.a[s][wm + i * 16 + a_row][kk + a_k]);
      for (int j = 0; j < 2; j++) ldm_x4_trans(bfr[j], &sm.b[s][kk + b_k][wn + j * 16 + b_n]);
      for (int i = 0; i < 2; i++)
        for (int j = 0; j < 4; j++) mma<T>(acc[i][j], af[i], &bfr[j / 2][(j % 2) * 2]);
    }
  }
  wait_groups<0>();
  // Accumulator i of an mma tile holds row groupID + 8·(i/2), column 2·threadID_in_group + i%2.
  const int g = lane / 4, t = lane % 4;
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 4; j++)
      for (int e = 0; e < 4; e++) {
        int r = m0 + wm + i * 16 + g + 8 * (e / 2), col = n0 + wn + j * 8 + 2 * t + e % 2;
        if (r < m && col < n) c[(long long)r * n + col] = acc[i][j][e];
      }
}

// ---- dtypes ------------------------------------------------------------------------------------

#define GEMM_TC_KERNEL(T, S)                                                                       \
  extern "C" __global__ void __launch_bounds__(TC_THREADS) gemm_tc_##S(                            \
      const T* a, const T* b, float* c, int m, int n, int k) {                                     \
    gemm_tc<T>(a, b, c, m, n, k);                                                                  \
  }
GEMM_TC_KERNEL(f16, f16)
GEMM_TC_KERNEL(bf16, bf16)
