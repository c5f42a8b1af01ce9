#line 1 "tc_tile.cuh"
// The tensor-core main loop behind gemm_tc.cu and conv_tc.cu (prepended to both, after
// operands.cuh). C[m, n] = alpha·Σ_k A[m, k]·B[k, n] (+ beta·C) over one output tile, f16 or
// bf16 operands, f32 accumulators, one rounding at the store. Needs sm_80+ (mma.sync m16n8k16,
// ldmatrix, cp.async).
//
// Geometry (a compile-time TcShape, below): a BM×BN tile a block, each warp owning a WM×WN part
// of it as (WM/16)×(WN/8) mma tiles of 16×8, WM·WN/32 f32 accumulators a lane. K advances 32 at
// a time through a STAGES-deep pipeline in shared memory: while stage s is multiplied, the next
// STAGES-1 k-slices are on their way. Every kernel over the loop is instantiated for each shape
// the host picks between (Tc64, Tc128).
//
// Operands are loaders (operands.cuh), filled into shared memory one of two ways, picked per
// launch for each operand (the host knows the strides and alignment):
//   cp.async: 16-byte chunks copied global -> shared, asynchronously (committed as one group per
//     slice). A chunk is 8 elements adjacent in memory: 8 consecutive k of one row (k-fast
//     layout) or 8 consecutive rows at one k (row-fast layout); the loader's `at` of the first
//     gives its address, which must be 16-byte aligned. A chunk that is partly past the matrix
//     copies only what is inside (src-size), the rest is zero-filled; one that `at` calls zero
//     (padding) copies nothing. No branches in the inner loop.
//   gather: each thread loads its elements of the slice after next into registers before the
//     mma's of the current one, and stores them to shared memory after (a register-staged copy:
//     any strides, any alignment, implicit zeros).
// Shared-memory layout per operand of R rows (compile-time): k-fast [R rows][32 k + 8],
// fragments through ldmatrix.x4; or row-fast [32 k][R rows + 8], fragments through
// ldmatrix.x4.trans, which hands each lane exactly the pairs the mma fragment layouts ask for
// from the transposed storage. The 8 padding elements (16 bytes) put the 8 row addresses of one
// ldmatrix in different banks. Every operand is stored the way it lies in memory (rows walking k
// when k is adjacent, else rows adjacent), so chunks stay 16-byte runs and gathers coalesce.

#define TC_BK 32
#define TC_PAD 8
#define TC_LDK (TC_BK + TC_PAD)  // row length of a k-fast stage

// One block's geometry: a BM×BN output tile, warps of WM×WN (each (WM/16)×(WN/8) mma tiles),
// STAGES k-slices in flight. Its shared memory is dynamic (`SMEM` bytes, set by the host).
template <int BM_, int BN_, int WM_, int WN_, int STAGES_> struct TcShape {
  static constexpr int BM = BM_, BN = BN_, WM = WM_, WN = WN_, STAGES = STAGES_;
  static constexpr int WARPS_M = BM / WM, WARPS_N = BN / WN;
  static constexpr int THREADS = WARPS_M * WARPS_N * 32;
  static constexpr int MI = WM / 16, NJ = WN / 8;  // mma tiles of a warp along m and n
  // Elements of one operand stage: the k-fast layout, which is the larger of the two.
  static constexpr int STAGE_A = BM * TC_LDK, STAGE_B = BN * TC_LDK;
  static constexpr int SMEM = STAGES * (STAGE_A + STAGE_B) * 2;
  static_assert(BM % WM == 0 && BN % WN == 0 && WM % 16 == 0 && WN % 16 == 0, "warp tiling");
  static_assert(TC_BK * (BM + TC_PAD) <= STAGE_A && TC_BK * (BN + TC_PAD) <= STAGE_B,
                "a row-fast stage fits");
};
// The two tiles the host picks between (src/cuda/gemm_tc.rs `TcTile`): 64×64 in 4 warps of
// 32×32 (128 threads, 3 stages, 30 KiB) and 128×128 in 8 warps of 64×32 (256 threads, 4 stages,
// 80 KiB), which reads each operand element from global memory half as often and issues 6
// ldmatrix per 16 mma's instead of 4 per 8. Tc128 needs 160-200 registers a thread (one block
// a multiprocessor; capped at 128 for two, ptxas spills), so the deeper pipeline costs nothing.
typedef TcShape<64, 64, 32, 32, 3> Tc64;
typedef TcShape<128, 128, 64, 32, 4> Tc128;

// All of the tile's shared stages (A's, then B's); 16-byte aligned for cp.async and ldmatrix.
extern __shared__ __align__(16) unsigned char tc_smem[];

// ---- helpers -----------------------------------------------------------------------------------

__device__ __forceinline__ unsigned smem_addr(const void* p) {
  return (unsigned)__cvta_generic_to_shared(p);
}

// Shared memory is addressed through 32-bit shared-window addresses (`smem_addr`), which keeps
// the stage pointers of the main loop in single registers. Every shared access is one of these
// asm statements; the stores and the wait clobber memory, so no access moves across them.

// 16 bytes global -> shared; the first `bytes` (0..16) come from `src`, the rest are zero.
__device__ __forceinline__ void cp16(unsigned dst, const void* src, int bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(bytes));
}

__device__ __forceinline__ void sts128(unsigned dst, unsigned a, unsigned b, unsigned c, unsigned d) {
  asm volatile("st.shared.v4.u32 [%0], {%1,%2,%3,%4};" ::"r"(dst), "r"(a), "r"(b), "r"(c), "r"(d)
               : "memory");
}
__device__ __forceinline__ void sts16(unsigned dst, unsigned v) {
  asm volatile("st.shared.u16 [%0], %1;" ::"r"(dst), "h"((unsigned short)v) : "memory");
}

__device__ __forceinline__ void commit() { asm volatile("cp.async.commit_group;"); }

// Waits until at most `n` committed groups are still in flight.
template <int n> __device__ __forceinline__ void wait_groups() {
  asm volatile("cp.async.wait_group %0;" ::"n"(n) : "memory");
}

// Four 8×8 matrices of 16-bit elements; lanes 8i..8i+7 give the row addresses of matrix i.
__device__ __forceinline__ void ldm_x4(unsigned* r, unsigned row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(row));
}
__device__ __forceinline__ void ldm_x4_trans(unsigned* r, unsigned row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(row));
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

// The raw 16 bits of element (slot's row, k) of loader `l`, 0 where `at` says so.
template <class L>
__device__ __forceinline__ unsigned tc_bits(const L& l, const typename L::Slot& s, int k) {
  i64 o = l.at(s, k);
  return o < 0 ? 0u : (unsigned)l.p[o].bits;
}

// The 16 (rows) × 16 (k) block at (r0, k0) of a stage as the four 8×8 matrices of an mma
// fragment: for A (B = false) in the order (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7,
// k 8-15), (rows 8-15, k 8-15); for B, (rows 0-7, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 0-7),
// (rows 8-15, k 8-15), i.e. the b-fragments of two 8-column mma tiles. Lane l gives row l%8 of
// matrix l/8: a row of 8 k (k-fast) or, transposed, a row of 8 rows at one k (row-fast, rows
// LDR elements apart); `lane` is this lane's part of the address (tc_lane), `st` the stage's
// shared address.
template <bool KR, int LDR>
__device__ __forceinline__ void tc_frag(unsigned* f, unsigned st, int r0, int k0) {
  if (KR) {
    ldm_x4_trans(f, st + (k0 * LDR + r0) * 2);
  } else {
    ldm_x4(f, st + (r0 * TC_LDK + k0) * 2);
  }
}
template <bool KR, bool B, int LDR> __device__ __forceinline__ unsigned tc_lane(int lane) {
  const int mat = lane >> 3, row = lane & 7;
  const int ro = (B ? mat >> 1 : mat & 1) * 8, ko = (B ? mat & 1 : mat >> 1) * 8;
  return (KR ? (ko + row) * LDR + ro : (ro + row) * TC_LDK + ko) * 2;
}

// ---- fillers -----------------------------------------------------------------------------------

// Fills one operand's stages (shared addresses) with ROWS-row × 32-k slices, by THREADS threads:
// rows r0.. of an R-row operand, k from k0 below kend. `fetch` starts a slice (issues its
// copies, or loads its gather into registers); `store` finishes a gather (registers -> shared
// memory; nothing for copies).
template <typename T, bool KR, class L, int ROWS, int THREADS> struct TcFill;

// k-fast: thread t owns chunks t + i·THREADS (i < CH) of the slice's ROWS×4 chunks of 8 k (row
// c/4, k (c%4)·8), both for copies and for gathers, so its row slots are computed once.
template <typename T, class L, int ROWS, int THREADS> struct TcFill<T, false, L, ROWS, THREADS> {
  static constexpr int CH = ROWS * 4 / THREADS;
  static_assert(CH * THREADS == ROWS * 4, "whole chunks a thread");
  const L& l;
  const bool async;
  typename L::Slot s[CH];
  unsigned v[CH][4];  // a gather's CH×8 elements, packed in pairs
  __device__ TcFill(const L& l_, bool async_, int, int r0) : l(l_), async(async_) {
#pragma unroll
    for (int i = 0; i < CH; i++) s[i] = l.slot(r0 + (threadIdx.x + i * THREADS) / 4);
  }
  // Chunk i's byte offset in a stage.
  __device__ __forceinline__ unsigned dst(int i) const {
    const int c = threadIdx.x + i * THREADS;
    return (c / 4 * TC_LDK + c % 4 * 8) * 2;
  }
  __device__ __forceinline__ void fetch(unsigned st, int k0, int kend) {
#pragma unroll
    for (int i = 0; i < CH; i++) {
      const int k = k0 + (threadIdx.x + i * THREADS) % 4 * 8;
      if (async) {
        int n = s[i].ok ? min(kend - k, 8) : 0;
        const T* src = l.p;
        if (n > 0) {
          i64 o = l.at(s[i], k);
          if (o < 0) n = 0;
          else src = l.p + o;
        }
        cp16(st + dst(i), src, max(n, 0) * 2);
      } else {
#pragma unroll
        for (int e = 0; e < 8; e += 2) {
          unsigned lo = s[i].ok && k + e < kend ? tc_bits(l, s[i], k + e) : 0u;
          unsigned hi = s[i].ok && k + e + 1 < kend ? tc_bits(l, s[i], k + e + 1) : 0u;
          v[i][e / 2] = lo | hi << 16;
        }
      }
    }
  }
  __device__ __forceinline__ void store(unsigned st) {
    if (async) return;
#pragma unroll
    for (int i = 0; i < CH; i++) sts128(st + dst(i), v[i][0], v[i][1], v[i][2], v[i][3]);
  }
};

// Row-fast, rows LDR = ROWS + 8 apart. Copies: thread t owns chunks t + i·THREADS of the slice's
// 32×(ROWS/8) chunks of 8 rows (k c/RC, rows (c%RC)·8 with RC = ROWS/8: the same 8 rows for
// every i, one slot). Gathers: thread t owns row t%ROWS at k = t/ROWS + KS·e, e < 32/KS with
// KS = THREADS/ROWS (one slot; a warp reads 32 adjacent rows, stores 32 adjacent halves).
template <typename T, class L, int ROWS, int THREADS> struct TcFill<T, true, L, ROWS, THREADS> {
  static constexpr int LDR = ROWS + TC_PAD, RC = ROWS / 8, CH = ROWS * 4 / THREADS;
  static constexpr int KS = THREADS / ROWS, NE = TC_BK / KS;
  static_assert(THREADS % RC == 0 && THREADS % ROWS == 0 && CH * THREADS == ROWS * 4,
                "whole chunks and rows a thread");
  const L& l;
  const bool async;
  int rows;  // rows of the operand left from this thread's first row
  typename L::Slot s;
  unsigned v[NE / 2];  // a gather's NE elements, packed in pairs
  __device__ TcFill(const L& l_, bool async_, int R, int r0) : l(l_), async(async_) {
    const int r = r0 + (async ? threadIdx.x % RC * 8 : threadIdx.x % ROWS);
    rows = R - r;
    s = l.slot(r);
  }
  __device__ __forceinline__ void fetch(unsigned st, int k0, int kend) {
    if (async) {
#pragma unroll
      for (int i = 0; i < CH; i++) {
        const int c = threadIdx.x + i * THREADS, k = k0 + c / RC;
        int n = s.ok && k < kend ? min(rows, 8) : 0;
        const T* src = l.p;
        if (n > 0) {
          i64 o = l.at(s, k);
          if (o < 0) n = 0;
          else src = l.p + o;
        }
        cp16(st + (c / RC * LDR + c % RC * 8) * 2, src, n * 2);
      }
    } else {
#pragma unroll
      for (int e = 0; e < NE; e += 2) {
        const int k = k0 + threadIdx.x / ROWS + e * KS;
        unsigned lo = s.ok && k < kend ? tc_bits(l, s, k) : 0u;
        unsigned hi = s.ok && k + KS < kend ? tc_bits(l, s, k + KS) : 0u;
        v[e / 2] = lo | hi << 16;
      }
    }
  }
  __device__ __forceinline__ void store(unsigned st) {
    if (async) return;
    st += (threadIdx.x / ROWS * LDR + threadIdx.x % ROWS) * 2;
#pragma unroll
    for (int e = 0; e < NE; e++) sts16(st + e * KS * LDR * 2, v[e / 2] >> (e % 2 * 16));
  }
};

// ---- the main loop -----------------------------------------------------------------------------

// A lane's accumulators for shape C: mma tile (i, j) of its warp, 4 values each.
template <class C> using TcAcc = float[C::MI][C::NJ][4];

// This warp's corner (wm, wn) in the block tile.
template <class C> __device__ __forceinline__ void tc_warp(int& wm, int& wn) {
  const int warp = threadIdx.x / 32;
  wm = warp / C::WARPS_N * C::WM;
  wn = warp % C::WARPS_N * C::WN;
}

// Output tile of the block: grid.x walks the BM×BN tiles of an N-column output, column tiles
// fastest.
template <class C> __device__ __forceinline__ void tc_origin(int N, int& m0, int& n0) {
  const int tiles_n = (N + C::BN - 1) / C::BN;
  m0 = blockIdx.x / tiles_n * C::BM;
  n0 = blockIdx.x % tiles_n * C::BN;
}

// acc = A[m0.., kbeg..kend)·B[kbeg..kend), n0..] for this block's tile (A: M rows, layout KRA;
// B: N rows, layout KRB; `*_async` picks copies or gathers). All threads must call it. With
// copies of k-fast chunks, kbeg must be a multiple of 8.
template <class C, typename T, bool KRA, bool KRB, class LA, class LB>
__device__ __forceinline__ void tc_tile(const LA& la, bool a_async, const LB& lb, bool b_async,
                                        int M, int N, int kbeg, int kend, int m0, int n0,
                                        TcAcc<C>& acc) {
  constexpr int LDA = C::BM + TC_PAD, LDB = C::BN + TC_PAD;
  const unsigned sa0 = smem_addr(tc_smem), sb0 = sa0 + C::STAGES * C::STAGE_A * 2;
  const unsigned stage_a = C::STAGE_A * 2, stage_b = C::STAGE_B * 2;
  const int lane = threadIdx.x % 32;
  int wm, wn;
  tc_warp<C>(wm, wn);
  const unsigned fa_lane = tc_lane<KRA, false, LDA>(lane), fb_lane = tc_lane<KRB, true, LDB>(lane);
#pragma unroll
  for (int i = 0; i < C::MI; i++)
#pragma unroll
    for (int j = 0; j < C::NJ; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) acc[i][j][e] = 0.0f;
  TcFill<T, KRA, LA, C::BM, C::THREADS> fa(la, a_async, M, m0);
  TcFill<T, KRB, LB, C::BN, C::THREADS> fb(lb, b_async, N, n0);
  const int slices = (kend - kbeg + TC_BK - 1) / TC_BK;
  // A previous tile of this block (grid-stride loops) may still be reading the stages.
  __syncthreads();
  for (int s = 0; s < C::STAGES - 1; s++) {
    if (s < slices) {
      fa.fetch(sa0 + s * stage_a, kbeg + s * TC_BK, kend);
      fb.fetch(sb0 + s * stage_b, kbeg + s * TC_BK, kend);
      fa.store(sa0 + s * stage_a);
      fb.store(sb0 + s * stage_b);
    }
    commit();
  }
  for (int kt = 0; kt < slices; kt++) {
    // Slice kt has landed once at most STAGES-2 newer groups are in flight; the barrier also
    // publishes the gathers stored last iteration and tells every warp that the stage about to
    // be refilled was read in the last iteration.
    wait_groups<C::STAGES - 2>();
    __syncthreads();
    const int next = kt + C::STAGES - 1;
    const unsigned na = sa0 + next % C::STAGES * stage_a, nb = sb0 + next % C::STAGES * stage_b;
    const bool more = next < slices;
    if (more) {
      fa.fetch(na, kbeg + next * TC_BK, kend);
      fb.fetch(nb, kbeg + next * TC_BK, kend);
    }
    commit();
    const unsigned ca = sa0 + kt % C::STAGES * stage_a + fa_lane;
    const unsigned cb = sb0 + kt % C::STAGES * stage_b + fb_lane;
#pragma unroll
    for (int kk = 0; kk < TC_BK; kk += 16) {
      unsigned af[C::MI][4], bfr[C::NJ / 2][4];
#pragma unroll
      for (int i = 0; i < C::MI; i++) tc_frag<KRA, LDA>(af[i], ca, wm + i * 16, kk);
#pragma unroll
      for (int j = 0; j < C::NJ / 2; j++) tc_frag<KRB, LDB>(bfr[j], cb, wn + j * 16, kk);
#pragma unroll
      for (int i = 0; i < C::MI; i++)
#pragma unroll
        for (int j = 0; j < C::NJ; j++) mma<T>(acc[i][j], af[i], &bfr[j / 2][(j % 2) * 2]);
    }
    // The gathered slice goes to the stage read last iteration (freed by the barrier above).
    if (more) {
      fa.store(na);
      fb.store(nb);
    }
  }
  wait_groups<0>();
}

// Stores alpha·acc (+ beta·C when beta != 0; C is not read otherwise) for the tile at (m0, n0)
// of an M×N output, rounding once to the store's element type. Accumulator e of an mma tile
// holds row groupID + 8·(e/2), column 2·threadID_in_group + e%2.
template <class C, class ST>
__device__ __forceinline__ void tc_store(const ST& st, const TcAcc<C>& acc, int M, int N, int m0,
                                         int n0, float alpha, float beta) {
  const int lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  int wm, wn;
  tc_warp<C>(wm, wn);
#pragma unroll
  for (int i = 0; i < C::MI; i++)
#pragma unroll
    for (int e2 = 0; e2 < 2; e2++) {
      const int m = m0 + wm + i * 16 + g + 8 * e2;
      if (m >= M) continue;
      const i64 r = st.row(m);
#pragma unroll
      for (int j = 0; j < C::NJ; j++)
#pragma unroll
        for (int e1 = 0; e1 < 2; e1++) {
          const int n = n0 + wn + j * 8 + 2 * t + e1;
          if (n >= N) continue;
          typename ST::Elem* q = st.p + r + st.col(n);
          float v = alpha * acc[i][j][e2 * 2 + e1];
          if (beta != 0.0f) v += beta * to_acc(*q);
          *q = from_acc<typename ST::Elem>(v);
        }
    }
}
