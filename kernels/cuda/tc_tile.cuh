#line 1 "tc_tile.cuh"
// The tensor-core main loop behind gemm_tc.cu and conv_tc.cu (prepended to both, after
// operands.cuh). C[m, n] = alpha·Σ_k A[m, k]·B[k, n] (+ beta·C) over one 64×64 output tile,
// f16 or bf16 operands, f32 accumulators, one rounding at the store. Needs sm_80+ (mma.sync
// m16n8k16, ldmatrix, cp.async).
//
// Geometry: 128 threads (4 warps) a block; each warp owns a 32×32 quarter of the tile, 2×4 mma
// tiles of 16×8, 32 f32 accumulators a lane. K advances 32 at a time through a 3-stage pipeline
// in shared memory: while stage s is multiplied, the next two k-slices are on their way.
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
// Shared-memory layout per operand (compile-time): k-fast [64 rows][32 k + 8], fragments through
// ldmatrix.x4; or row-fast [32 k][64 rows + 8], fragments through ldmatrix.x4.trans, which hands
// each lane exactly the pairs the mma fragment layouts ask for from the transposed storage. The
// 8 padding elements (16 bytes) put the 8 row addresses of one ldmatrix in different banks.
// Every operand is stored the way it lies in memory (rows walking k when k is adjacent, else
// rows adjacent), so chunks stay 16-byte runs and gathers coalesce.

#define TC_BM 64
#define TC_BN 64
#define TC_BK 32
#define TC_STAGES 3
#define TC_PAD 8
#define TC_THREADS 128
#define TC_LDK (TC_BK + TC_PAD)     // row length of a k-fast stage
#define TC_LDR (TC_BM + TC_PAD)     // row length of a row-fast stage
#define TC_STAGE (TC_BM * TC_LDK)   // elements of one operand stage (the larger layout)
static_assert(TC_BM == TC_BN, "fillers serve A and B alike");
static_assert(TC_BK * TC_LDR <= TC_STAGE, "a row-fast stage fits");

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
// matrix l/8: a row of 8 k (k-fast) or, transposed, a row of 8 rows at one k (row-fast);
// `lane` is this lane's part of the address (tc_lane), `st` the stage's shared address.
template <bool KR> __device__ __forceinline__ void tc_frag(unsigned* f, unsigned st, int r0, int k0) {
  if (KR) {
    ldm_x4_trans(f, st + (k0 * TC_LDR + r0) * 2);
  } else {
    ldm_x4(f, st + (r0 * TC_LDK + k0) * 2);
  }
}
template <bool KR, bool B> __device__ __forceinline__ unsigned tc_lane(int lane) {
  const int mat = lane >> 3, row = lane & 7;
  const int ro = (B ? mat >> 1 : mat & 1) * 8, ko = (B ? mat & 1 : mat >> 1) * 8;
  return (KR ? (ko + row) * TC_LDR + ro : (ro + row) * TC_LDK + ko) * 2;
}

// ---- fillers -----------------------------------------------------------------------------------

// Fills one operand's stages (shared addresses) with 64-row × 32-k slices: rows r0.. of an
// R-row operand, k from k0 below kend. `fetch` starts a slice (issues its copies, or loads its
// gather into registers); `store` finishes a gather (registers -> shared memory; nothing for
// copies).
template <typename T, bool KR, class L> struct TcFill;

// k-fast: thread t owns chunks t and t + 128 of the slice's 64×4 chunks of 8 k (row c/4, k
// (c%4)·8), both for copies and for gathers, so its two row slots are computed once.
template <typename T, class L> struct TcFill<T, false, L> {
  const L& l;
  const bool async;
  typename L::Slot s[2];
  unsigned v[2][4];  // a gather's 2×8 elements, packed in pairs
  __device__ TcFill(const L& l_, bool async_, int, int r0) : l(l_), async(async_) {
#pragma unroll
    for (int i = 0; i < 2; i++) s[i] = l.slot(r0 + (threadIdx.x + i * TC_THREADS) / 4);
  }
  // Chunk i's byte offset in a stage.
  __device__ __forceinline__ unsigned dst(int i) const {
    const int c = threadIdx.x + i * TC_THREADS;
    return (c / 4 * TC_LDK + c % 4 * 8) * 2;
  }
  __device__ __forceinline__ void fetch(unsigned st, int k0, int kend) {
#pragma unroll
    for (int i = 0; i < 2; i++) {
      const int k = k0 + (threadIdx.x + i * TC_THREADS) % 4 * 8;
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
    for (int i = 0; i < 2; i++) sts128(st + dst(i), v[i][0], v[i][1], v[i][2], v[i][3]);
  }
};

// Row-fast. Copies: thread t owns chunks t and t + 128 of the slice's 32×8 chunks of 8 rows (k
// c/8, rows (c%8)·8: the same 8 rows for both, one slot). Gathers: thread t owns row t%64 at
// k = t/64 + 2e, e < 16 (one slot; a warp reads 32 adjacent rows, stores 32 adjacent halves).
template <typename T, class L> struct TcFill<T, true, L> {
  const L& l;
  const bool async;
  int rows;  // rows of the operand left from this thread's first row
  typename L::Slot s;
  unsigned v[8];  // a gather's 16 elements, packed in pairs
  __device__ TcFill(const L& l_, bool async_, int R, int r0) : l(l_), async(async_) {
    const int r = r0 + (async ? threadIdx.x % 8 * 8 : threadIdx.x % 64);
    rows = R - r;
    s = l.slot(r);
  }
  __device__ __forceinline__ void fetch(unsigned st, int k0, int kend) {
    if (async) {
#pragma unroll
      for (int i = 0; i < 2; i++) {
        const int c = threadIdx.x + i * TC_THREADS, k = k0 + c / 8;
        int n = s.ok && k < kend ? min(rows, 8) : 0;
        const T* src = l.p;
        if (n > 0) {
          i64 o = l.at(s, k);
          if (o < 0) n = 0;
          else src = l.p + o;
        }
        cp16(st + (c / 8 * TC_LDR + c % 8 * 8) * 2, src, n * 2);
      }
    } else {
#pragma unroll
      for (int e = 0; e < 16; e += 2) {
        const int k = k0 + threadIdx.x / 64 + e * 2;
        unsigned lo = s.ok && k < kend ? tc_bits(l, s, k) : 0u;
        unsigned hi = s.ok && k + 2 < kend ? tc_bits(l, s, k + 2) : 0u;
        v[e / 2] = lo | hi << 16;
      }
    }
  }
  __device__ __forceinline__ void store(unsigned st) {
    if (async) return;
    st += (threadIdx.x / 64 * TC_LDR + threadIdx.x % 64) * 2;
#pragma unroll
    for (int e = 0; e < 16; e++) sts16(st + e * 2 * TC_LDR * 2, v[e / 2] >> (e % 2 * 16));
  }
};

// ---- the main loop -----------------------------------------------------------------------------

template <typename T> struct TcSmem {
  T a[TC_STAGES][TC_STAGE];
  T b[TC_STAGES][TC_STAGE];
};

// Output tile of the block: grid.x walks 64×64 tiles of an N-column output, column tiles
// fastest.
__device__ __forceinline__ void tc_origin(int N, int& m0, int& n0) {
  const int tiles_n = (N + TC_BN - 1) / TC_BN;
  m0 = blockIdx.x / tiles_n * TC_BM;
  n0 = blockIdx.x % tiles_n * TC_BN;
}

// acc = A[m0.., kbeg..kend)·B[kbeg..kend), n0..] for this block's tile (A: M rows, layout KRA;
// B: N rows, layout KRB; `*_async` picks copies or gathers). All threads must call it. With
// copies of k-fast chunks, kbeg must be a multiple of 8.
template <typename T, bool KRA, bool KRB, class LA, class LB>
__device__ __forceinline__ void tc_tile(const LA& la, bool a_async, const LB& lb, bool b_async,
                                        int M, int N, int kbeg, int kend, int m0, int n0,
                                        float (&acc)[2][4][4]) {
  __shared__ __align__(16) TcSmem<T> sm;
  const unsigned sa0 = smem_addr(sm.a), sb0 = smem_addr(sm.b);
  const unsigned stage = TC_STAGE * sizeof(T);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int wm = warp / 2 * 32, wn = warp % 2 * 32;
  const unsigned fa_lane = tc_lane<KRA, false>(lane), fb_lane = tc_lane<KRB, true>(lane);
#pragma unroll
  for (int i = 0; i < 2; i++)
#pragma unroll
    for (int j = 0; j < 4; j++)
#pragma unroll
      for (int e = 0; e < 4; e++) acc[i][j][e] = 0.0f;
  TcFill<T, KRA, LA> fa(la, a_async, M, m0);
  TcFill<T, KRB, LB> fb(lb, b_async, N, n0);
  const int slices = (kend - kbeg + TC_BK - 1) / TC_BK;
  // A previous tile of this block (grid-stride loops) may still be reading the stages.
  __syncthreads();
  for (int s = 0; s < TC_STAGES - 1; s++) {
    if (s < slices) {
      fa.fetch(sa0 + s * stage, kbeg + s * TC_BK, kend);
      fb.fetch(sb0 + s * stage, kbeg + s * TC_BK, kend);
      fa.store(sa0 + s * stage);
      fb.store(sb0 + s * stage);
    }
    commit();
  }
  for (int kt = 0; kt < slices; kt++) {
    // Slice kt has landed once at most STAGES-2 newer groups are in flight; the barrier also
    // publishes the gathers stored last iteration and tells every warp that the stage about to
    // be refilled was read in the last iteration.
    wait_groups<TC_STAGES - 2>();
    __syncthreads();
    const int next = kt + TC_STAGES - 1;
    const unsigned na = sa0 + next % TC_STAGES * stage, nb = sb0 + next % TC_STAGES * stage;
    const bool more = next < slices;
    if (more) {
      fa.fetch(na, kbeg + next * TC_BK, kend);
      fb.fetch(nb, kbeg + next * TC_BK, kend);
    }
    commit();
    const unsigned ca = sa0 + kt % TC_STAGES * stage + fa_lane;
    const unsigned cb = sb0 + kt % TC_STAGES * stage + fb_lane;
#pragma unroll
    for (int kk = 0; kk < TC_BK; kk += 16) {
      unsigned af[2][4], bfr[2][4];
#pragma unroll
      for (int i = 0; i < 2; i++) tc_frag<KRA>(af[i], ca, wm + i * 16, kk);
#pragma unroll
      for (int j = 0; j < 2; j++) tc_frag<KRB>(bfr[j], cb, wn + j * 16, kk);
#pragma unroll
      for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) mma<T>(acc[i][j], af[i], &bfr[j / 2][(j % 2) * 2]);
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
template <class ST>
__device__ __forceinline__ void tc_store(const ST& st, const float (&acc)[2][4][4], int M, int N,
                                         int m0, int n0, float alpha, float beta) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int wm = warp / 2 * 32, wn = warp % 2 * 32, g = lane / 4, t = lane % 4;
#pragma unroll
  for (int i = 0; i < 2; i++)
#pragma unroll
    for (int e2 = 0; e2 < 2; e2++) {
      const int m = m0 + wm + i * 16 + g + 8 * e2;
      if (m >= M) continue;
      const i64 r = st.row(m);
#pragma unroll
      for (int j = 0; j < 4; j++)
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
