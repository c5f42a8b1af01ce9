// Fused scaled-dot-product attention, forward and backward, flash-attention style. Twin of
// src/cpu/attention.rs (which states the math: S = scale·Q·Kᵀ, P = softmax(S), O = P·V, lse per
// row, Δ = rowsum(dO∘O), dS = P∘(dO·Vᵀ − Δ)).
//
// Operands are dense [bh, rows, d] with d ≤ HD, HD ∈ {32, 64} a compile-time bucket: rows live in
// registers and shared tiles zero-padded to HD, so odd head dims (24, 40) cost padding, not code.
// Geometry (blockIdx.y = problem):
// - attention_fwd: a block of ATT_BR threads owns ATT_BR query rows, a thread a row (its scaled q
//   and its O accumulator in registers). K and V stream through shared memory in tiles of ATT_BC
//   rows; each thread scores its row against the tile (every thread reads the same K element:
//   a broadcast, no bank conflicts) and folds it in with the online softmax (running max m, sum l,
//   O rescaled by e^(m_old − m_new)). Only O and lse = m + ln l reach global memory.
// - attention_bwd_dq: the same tiling; a thread computes its row's Δ (written for the dK/dV
//   kernel), recomputes P = e^(S − lse) tile by tile and accumulates dQ = scale·dS·K (q and dQ in
//   registers, dO in padded shared memory).
// - attention_bwd_dkv: a block of ATT_BK threads owns ATT_BK key rows (K and V rows in padded
//   shared memory, dK and dV accumulators in registers); Q, dO, lse and Δ stream through shared
//   memory in tiles of ATT_BC rows. dK = scale·dSᵀ·Q, dV = Pᵀ·dO.
// Each output element is written by one thread after a fixed-order loop: no atomics, the same
// bits every run, and no N×N matrix in global memory (the unfused path writes and rereads S, P,
// dP and dS). Causal: query i sees keys j ≤ i.
// Bias (optional, null when absent): S = scale·Q·Kᵀ + B with problem h reading matrix
// (h / bdiv) % bcount of a dense [bcount, lq, lk] bias, straight from global memory in the tile
// loops (the forward's and dQ's thread reads its row, dK/dV's thread its column: coalesced). Its
// gradient dB is dS summed over the problems reading each matrix: the dQ kernel then takes
// `groups` block rows per matrix (blockIdx.y = n·groups + g), each walking its share of the
// matrix's `per` problems in order, each thread adding its row's dS into row i of the group's own
// partial (f32 [bcount, groups, lq, lk], zeroed by the caller, summed over groups after), which
// only it touches: deterministic, and as many block rows as the GPU needs.

#define ATT_BR 64  // query rows per block of the forward and dQ kernels
#define ATT_BK 32  // key rows per block of the dK/dV kernel
#define ATT_BC 32  // rows per tile streamed through shared memory

// Keys [0, n) query row i sees.
__device__ __forceinline__ i64 att_keys(i64 i, i64 lk, int causal) {
  return causal && i + 1 < lk ? i + 1 : lk;
}

template <typename T, int HD> struct Attn {
  // ---- helpers ------------------------------------------------------------------------------

  // Rows [r0, r0 + ROWS) of a [rows, d] operand, times mul, into a zero-padded tile of pitch P.
  template <int ROWS, int P>
  __device__ static void load_tile(float* tile, const T* src, i64 r0, i64 rows, int d, float mul) {
    for (int e = threadIdx.x; e < ROWS * HD; e += blockDim.x) {
      int r = e / HD, c = e % HD;
      i64 row = r0 + r;
      tile[r * P + c] = row < rows && c < d ? to_acc(src[row * d + c]) * mul : 0.0f;
    }
  }

  // One row of d values, times mul, into registers zero-padded to HD.
  __device__ __forceinline__ static void load_row(float* dst, const T* src, bool live, int d, float mul) {
#pragma unroll
    for (int c = 0; c < HD; ++c) dst[c] = live && c < d ? to_acc(src[c]) * mul : 0.0f;
  }

  __device__ __forceinline__ static float dot(const float* a, const float* b) {
    float t = 0.0f;
#pragma unroll
    for (int c = 0; c < HD; ++c) t += a[c] * b[c];
    return t;
  }

  // How many of the tile's ATT_BC keys from j0 a row that sees [0, kmax) uses (≤ 0: none).
  __device__ __forceinline__ static int tile_keys(i64 kmax, i64 j0) {
    i64 left = kmax - j0;
    return left < ATT_BC ? (int)left : ATT_BC;
  }

  // ---- kernels ------------------------------------------------------------------------------

  // Problem h's [lq, lk] bias matrix, or null.
  __device__ __forceinline__ static const T* bias_of(const T* bias, i64 h, i64 lq, i64 lk,
                                                     i64 bdiv, i64 bcount) {
    return bias ? bias + ((h / bdiv) % bcount) * lq * lk : nullptr;
  }

  __device__ static void fwd(const T* q, const T* k, const T* v, const T* bias, T* o, float* lse,
                             i64 lq, i64 lk, int d, float scale, int causal, i64 bdiv,
                             i64 bcount) {
    __shared__ float ks[ATT_BC * HD], vs[ATT_BC * HD];
    const float ninf = -1.0f / 0.0f;
    i64 bh = blockIdx.y, i0 = (i64)blockIdx.x * ATT_BR, i = i0 + threadIdx.x;
    q += bh * lq * d, k += bh * lk * d, v += bh * lk * d, o += bh * lq * d, lse += bh * lq;
    bool live = i < lq;
    const T* brow = live && bias ? bias_of(bias, bh, lq, lk, bdiv, bcount) + i * lk : nullptr;
    float qr[HD], acc[HD];
    load_row(qr, q + i * d, live, d, scale);
#pragma unroll
    for (int c = 0; c < HD; ++c) acc[c] = 0.0f;
    float m = ninf, l = 0.0f;
    i64 last = (i0 + ATT_BR < lq ? i0 + ATT_BR : lq) - 1;
    i64 kend = att_keys(last, lk, causal), kmax = live ? att_keys(i, lk, causal) : 0;
    for (i64 j0 = 0; j0 < kend; j0 += ATT_BC) {
      __syncthreads();  // the previous tile is consumed
      load_tile<ATT_BC, HD>(ks, k, j0, lk, d, 1.0f);
      load_tile<ATT_BC, HD>(vs, v, j0, lk, d, 1.0f);
      __syncthreads();
      int jn = tile_keys(kmax, j0);
      if (jn <= 0) continue;
      float s[ATT_BC], bm = ninf;
#pragma unroll
      for (int r = 0; r < ATT_BC; ++r) {
        s[r] = r < jn ? dot(qr, ks + r * HD) + (brow ? to_acc(brow[j0 + r]) : 0.0f) : ninf;
        bm = fmaxf(bm, s[r]);
      }
      float mn = fmaxf(m, bm);
      if (mn == ninf) continue;  // every key so far masked by the bias: nothing to fold in
      float alpha = exp(m - mn);  // m = -inf on the first live tile: alpha = 0
      l *= alpha;
#pragma unroll
      for (int c = 0; c < HD; ++c) acc[c] *= alpha;
#pragma unroll
      for (int r = 0; r < ATT_BC; ++r) {
        float p = exp(s[r] - mn);
        l += p;
#pragma unroll
        for (int c = 0; c < HD; ++c) acc[c] += p * vs[r * HD + c];
      }
      m = mn;
    }
    if (!live) return;
    float inv = 1.0f / l;
#pragma unroll
    for (int c = 0; c < HD; ++c)
      if (c < d) o[i * d + c] = from_acc<T>(acc[c] * inv);
    lse[i] = m + log(l);
  }

  // dQ (and Δ) of problem h's query block blockIdx.x; dS added into `dbr` (this thread's row of
  // the bias gradient) when non-null.
  __device__ static void bwd_dq_one(i64 h, const T* q, const T* k, const T* v, const T* bm,
                                    const T* o, const T* dout, const float* lse, float* delta,
                                    T* dq, float* dbr, i64 lq, i64 lk, int d, float scale,
                                    int causal) {
    __shared__ float ks[ATT_BC * HD], vs[ATT_BC * HD];
    __shared__ float dos[ATT_BR * (HD + 1)];  // the block's dO rows, padded: no conflicts
    i64 i0 = (i64)blockIdx.x * ATT_BR, i = i0 + threadIdx.x;
    q += h * lq * d, k += h * lk * d, v += h * lk * d, o += h * lq * d, dout += h * lq * d;
    lse += h * lq, delta += h * lq, dq += h * lq * d;
    bool live = i < lq;
    const T* brow = live && bm ? bm + i * lk : nullptr;
    float qr[HD], g[HD];  // dO stays in shared memory: three register rows would spill
    load_row(qr, q + i * d, live, d, scale);
    __syncthreads();  // the previous problem's dO tile is consumed
    load_tile<ATT_BR, HD + 1>(dos, dout, i0, lq, d, 1.0f);
    __syncthreads();
    const float* dor = dos + threadIdx.x * (HD + 1);
    float dl = 0.0f;
#pragma unroll
    for (int c = 0; c < HD; ++c) {
      dl += live && c < d ? dor[c] * to_acc(o[i * d + c]) : 0.0f;
      g[c] = 0.0f;
    }
    float ls = live ? lse[i] : 0.0f;
    if (live) delta[i] = dl;
    i64 last = (i0 + ATT_BR < lq ? i0 + ATT_BR : lq) - 1;
    i64 kend = att_keys(last, lk, causal), kmax = live ? att_keys(i, lk, causal) : 0;
    for (i64 j0 = 0; j0 < kend; j0 += ATT_BC) {
      __syncthreads();
      load_tile<ATT_BC, HD>(ks, k, j0, lk, d, 1.0f);
      load_tile<ATT_BC, HD>(vs, v, j0, lk, d, 1.0f);
      __syncthreads();
      int jn = tile_keys(kmax, j0);
#pragma unroll 1  // r indexes shared memory only; unrolling it raises register pressure
      for (int r = 0; r < jn; ++r) {
        float s = dot(qr, ks + r * HD) + (brow ? to_acc(brow[j0 + r]) : 0.0f);
        float p = exp(s - ls);
        float ds = p * (dot(dor, vs + r * HD) - dl);
        if (dbr) dbr[j0 + r] += ds;
        const volatile float* kv = ks + r * HD;  // reread: keeping the row would spill
#pragma unroll
        for (int c = 0; c < HD; ++c) g[c] += ds * kv[c];
      }
    }
    if (!live) return;
#pragma unroll
    for (int c = 0; c < HD; ++c)
      if (c < d) dq[i * d + c] = from_acc<T>(g[c] * scale);
  }

  // Without dB: problem blockIdx.y. With dB: group g of matrix n (blockIdx.y = n·groups + g),
  // problems [g·per/groups, (g+1)·per/groups) of the matrix's `per`.
  __device__ static void bwd_dq(const T* q, const T* k, const T* v, const T* bias, const T* o,
                                const T* dout, const float* lse, float* delta, T* dq,
                                float* dbias, i64 lq, i64 lk, int d, float scale, int causal,
                                i64 bdiv, i64 bcount, i64 per, i64 groups) {
    i64 y = blockIdx.y, i = (i64)blockIdx.x * ATT_BR + threadIdx.x;
    if (!dbias) {
      const T* bm = bias_of(bias, y, lq, lk, bdiv, bcount);
      bwd_dq_one(y, q, k, v, bm, o, dout, lse, delta, dq, nullptr, lq, lk, d, scale, causal);
      return;
    }
    i64 n = y / groups, g = y % groups;
    const T* bm = bias + n * lq * lk;
    float* dbr = i < lq ? dbias + y * lq * lk + i * lk : nullptr;
    for (i64 t = g * per / groups; t < (g + 1) * per / groups; ++t) {
      i64 h = ((t / bdiv) * bcount + n) * bdiv + t % bdiv;
      bwd_dq_one(h, q, k, v, bm, o, dout, lse, delta, dq, dbr, lq, lk, d, scale, causal);
    }
  }

  __device__ static void bwd_dkv(const T* q, const T* k, const T* v, const T* bias,
                                 const T* dout, const float* lse, const float* delta, T* dk,
                                 T* dv, i64 lq, i64 lk, int d, float scale, int causal, i64 bdiv,
                                 i64 bcount) {
    __shared__ float qs[ATT_BC * HD], dos[ATT_BC * HD], ls[ATT_BC], dl[ATT_BC];
    __shared__ float kself[ATT_BK * (HD + 1)], vself[ATT_BK * (HD + 1)];  // padded: no conflicts
    i64 bh = blockIdx.y, j0 = (i64)blockIdx.x * ATT_BK, j = j0 + threadIdx.x;
    q += bh * lq * d, k += bh * lk * d, v += bh * lk * d, dout += bh * lq * d;
    lse += bh * lq, delta += bh * lq, dk += bh * lk * d, dv += bh * lk * d;
    bool live = j < lk;
    const T* bcol = live && bias ? bias_of(bias, bh, lq, lk, bdiv, bcount) + j : nullptr;
    load_tile<ATT_BK, HD + 1>(kself, k, j0, lk, d, 1.0f);
    load_tile<ATT_BK, HD + 1>(vself, v, j0, lk, d, 1.0f);
    const float* kr = kself + threadIdx.x * (HD + 1);
    const float* vr = vself + threadIdx.x * (HD + 1);
    float gk[HD], gv[HD];
#pragma unroll
    for (int c = 0; c < HD; ++c) gk[c] = gv[c] = 0.0f;
    for (i64 i0 = causal ? j0 : 0; i0 < lq; i0 += ATT_BC) {
      __syncthreads();
      load_tile<ATT_BC, HD>(qs, q, i0, lq, d, scale);
      load_tile<ATT_BC, HD>(dos, dout, i0, lq, d, 1.0f);
      for (int r = threadIdx.x; r < ATT_BC; r += blockDim.x) {
        bool in = i0 + r < lq;
        ls[r] = in ? lse[i0 + r] : 0.0f;
        dl[r] = in ? delta[i0 + r] : 0.0f;
      }
      __syncthreads();
      int rn = lq - i0 < ATT_BC ? (int)(lq - i0) : ATT_BC;
#pragma unroll 1
      for (int r = 0; r < rn; ++r) {
        if (!live || (causal && i0 + r < j)) continue;
        float s = dot(qs + r * HD, kr) + (bcol ? to_acc(bcol[(i0 + r) * lk]) : 0.0f);
        float p = exp(s - ls[r]);
        float ds = p * (dot(dos + r * HD, vr) - dl[r]);
        // Reread the rows the dots used: keeping them in registers would spill.
        const volatile float *qv = qs + r * HD, *dov = dos + r * HD;
#pragma unroll
        for (int c = 0; c < HD; ++c) {
          gv[c] += p * dov[c];
          gk[c] += ds * qv[c];
        }
      }
    }
    if (!live) return;
#pragma unroll
    for (int c = 0; c < HD; ++c)
      if (c < d) dk[j * d + c] = from_acc<T>(gk[c]), dv[j * d + c] = from_acc<T>(gv[c]);
  }
};

// ---- dtypes and head-dim buckets ------------------------------------------------------------

#define ATTENTION_KERNELS(T, S, HD)                                                               \
  extern "C" __global__ void attention_fwd_h##HD##_##S(                                           \
      const T* q, const T* k, const T* v, const T* bias, T* o, float* lse, i64 lq, i64 lk, int d,  \
      float scale, int causal, i64 bdiv, i64 bcount) {                                            \
    Attn<T, HD>::fwd(q, k, v, bias, o, lse, lq, lk, d, scale, causal, bdiv, bcount);              \
  }                                                                                               \
  extern "C" __global__ void attention_bwd_dq_h##HD##_##S(                                        \
      const T* q, const T* k, const T* v, const T* bias, const T* o, const T* dout,               \
      const float* lse, float* delta, T* dq, float* dbias, i64 lq, i64 lk, int d, float scale,    \
      int causal, i64 bdiv, i64 bcount, i64 per, i64 groups) {                                    \
    Attn<T, HD>::bwd_dq(q, k, v, bias, o, dout, lse, delta, dq, dbias, lq, lk, d, scale, causal,  \
                        bdiv, bcount, per, groups);                                               \
  }                                                                                               \
  extern "C" __global__ void attention_bwd_dkv_h##HD##_##S(                                       \
      const T* q, const T* k, const T* v, const T* bias, const T* dout, const float* lse,         \
      const float* delta, T* dk, T* dv, i64 lq, i64 lk, int d, float scale, int causal, i64 bdiv, \
      i64 bcount) {                                                                               \
    Attn<T, HD>::bwd_dkv(q, k, v, bias, dout, lse, delta, dk, dv, lq, lk, d, scale, causal, bdiv, \
                         bcount);                                                                 \
  }
ATTENTION_KERNELS(float, f32, 32)
ATTENTION_KERNELS(float, f32, 64)
ATTENTION_KERNELS(f16, f16, 32)
ATTENTION_KERNELS(f16, f16, 64)
ATTENTION_KERNELS(bf16, bf16, 32)
ATTENTION_KERNELS(bf16, bf16, 64)
