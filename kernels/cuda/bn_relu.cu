// BatchNorm over (N, H, W) per channel fused with an optional residual add and ReLU, forward and
// backward, NCHW or NHWC (channels_last). Twin of src/cpu/bn_relu.rs.
//
// Why fuse: unfused, BN + add + ReLU writes and re-reads the activation three times in the forward
// and keeps a ReLU mask for the backward. Here the forward writes y once; the backward recovers the
// mask from y (y <= 0 where ReLU cut), gets Σg and Σg·(x-mean) per channel in one read of
// (dy, y, x), then writes dx (and the residual's gradient) in a second.
//
// Kernels:
//   bn_partials  grid (channel tiles, splits): each block sums two quantities over its share of
//                a channel's N·H·W elements into a double workspace [splits][C][2].
//                Statistics: Σ(x - K), Σ(x - K)² with K = the channel's first element (shifted
//                sums: no cancellation when |mean| >> std). Backward: Σg, Σg·(x - mean).
//                NCHW: a 256-thread block per (channel, split), walking the channel's planes.
//                NHWC: 32x8 blocks, x = 32 adjacent channels (coalesced), y = pixels.
//   bn_finalize  a warp per channel combines the splits in double (lanes stride over them, then
//                a shuffle sum): mean and biased var, or dγ = Σg·(x - mean)·invstd and dβ = Σg.
//                In training it also updates the running mean/var (PyTorch's momentum rule, the
//                variance unbiased) and num_batches_tracked, and writes invstd = 1/√(var + eps),
//                scale = γ·invstd and shift = β - mean·scale for bn_act_fwd, so no launch of
//                bookkeeping or per-channel arithmetic follows.
//   bn_finalize_tiles  bn_finalize from partial statistics another kernel produced (the
//                conv epilogue of conv_tc.cu, cuDNN's genstats): per tile and channel a sum and
//                either Σ(v - tile mean)² or Σv², combined in double in two passes over the tiles
//                (Chan et al.'s pairwise rule), so the BN after such a conv reads no activation.
//   bn_act_fwd / bn_act_bwd_dx  elementwise, grid-stride.
//   *_packed     the NHWC kernels where C is a multiple of the 16-byte pack (8 f16/bf16, 4 f32,
//                2 f64) and every buffer is 16-byte aligned: a thread moves a pack of adjacent
//                channels of one pixel per load, and needs no index division per element.
//
// Activations are T (f32, f64, f16, bf16); per-channel vectors (mean, invstd, γ, scale, shift,
// dγ, dβ) are A = Acc<T>::t, so f16/bf16 activations keep f32 statistics, as PyTorch's BN does
// under autocast, and no cast pass runs around the BN.

// ---- helpers --------------------------------------------------------------------------------

template <typename A> __device__ __forceinline__ A warp_add(A v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// The gradient past the ReLU: the mask is y > 0 (NaN passes, as the twin).
template <typename A> __device__ __forceinline__ A relu_grad(A dy, A y, bool relu) {
  return (relu && y <= A(0)) ? A(0) : dy;
}

// The forward output at element `off` for the ReLU mask: read from y, or (y null: the output
// was never stored, a convolution's prologue applied the BN) recomputed from x as bn_act_fwd
// computed it, relu(x·sc + sh) rounded to T, sc and sh the element's channel's scale and shift.
template <typename T>
__device__ __forceinline__ typename Acc<T>::t bn_out(const T* x, const T* y, i64 off,
                                                     typename Acc<T>::t sc,
                                                     typename Acc<T>::t sh) {
  typedef typename Acc<T>::t A;
  if (y) return to_acc(y[off]);
  return to_acc(from_acc<T>(fmax(to_acc(x[off]) * sc + sh, A(0))));
}

// ---- kernels --------------------------------------------------------------------------------

template <typename T>
__device__ void bn_partials(const T* x, const T* dy, const T* y, const typename Acc<T>::t* mean,
                            const typename Acc<T>::t* scale, const typename Acc<T>::t* shift,
                            bool relu, bool bwd, i64 n, i64 C, i64 hw, bool cl, double* partials) {
  typedef typename Acc<T>::t A;
  const i64 M = n * hw, S = gridDim.y, s = blockIdx.y;
  const i64 chunk = (M + S - 1) / S, start = s * chunk, end = min(M, start + chunk);
  A s1 = A(0), s2 = A(0);
  // The recomputed ReLU mask's scale and shift of channel c (read once per channel).
  const bool remask = bwd && relu && !y;
  auto affine_of = [&](i64 c, A& sc, A& sf) {
    sc = remask ? scale[c] : A(0);
    sf = remask ? shift[c] : A(0);
  };
  // Adds element `off` (shift K or mean: `sh`; the mask's scale and shift: `sc`, `sf`).
  auto add = [&](i64 off, A sh, A sc, A sf) {
    A v = to_acc(x[off]);
    if (bwd) {
      A g = relu_grad(to_acc(dy[off]), relu ? bn_out(x, y, off, sc, sf) : A(1), relu);
      s1 += g;
      s2 += g * (v - sh);
    } else {
      A d = v - sh;
      s1 += d;
      s2 += d * d;
    }
  };
  if (!cl) {
    __shared__ A part[2][32];
    const i64 c = blockIdx.x;
    const A sh = bwd ? mean[c] : (M > 0 ? to_acc(x[c * hw]) : A(0));
    A sc, sf;
    affine_of(c, sc, sf);
    i64 j = start + threadIdx.x;
    if (j < end) {
      // Element j of the channel is pixel p of image nn; step both without dividing.
      i64 nn = j / hw, p = j - nn * hw;
      const i64 step_n = blockDim.x / hw, step_p = blockDim.x - step_n * hw;
      for (; j < end; j += blockDim.x) {
        add((nn * C + c) * hw + p, sh, sc, sf);
        p += step_p;
        nn += step_n;
        if (p >= hw) p -= hw, ++nn;
      }
    }
    s1 = warp_add(s1);
    s2 = warp_add(s2);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) part[0][warp] = s1, part[1][warp] = s2;
    __syncthreads();
    if (warp == 0) {
      bool live = lane < (int)(blockDim.x >> 5);
      s1 = warp_add(live ? part[0][lane] : A(0));
      s2 = warp_add(live ? part[1][lane] : A(0));
      if (lane == 0) {
        partials[(s * C + c) * 2] = s1;
        partials[(s * C + c) * 2 + 1] = s2;
      }
    }
  } else {
    __shared__ A part[2][8][33];
    const i64 c = (i64)blockIdx.x * 32 + threadIdx.x;
    const bool live = c < C;
    if (live) {
      const A sh = bwd ? mean[c] : (M > 0 ? to_acc(x[c]) : A(0));
      A sc, sf;
      affine_of(c, sc, sf);
      for (i64 p = start + threadIdx.y; p < end; p += blockDim.y) add(p * C + c, sh, sc, sf);
    }
    part[0][threadIdx.y][threadIdx.x] = s1;
    part[1][threadIdx.y][threadIdx.x] = s2;
    __syncthreads();
    if (threadIdx.y == 0 && live) {
      for (int r = 1; r < (int)blockDim.y; ++r) s1 += part[0][r][threadIdx.x], s2 += part[1][r][threadIdx.x];
      partials[(s * C + c) * 2] = s1;
      partials[(s * C + c) * 2 + 1] = s2;
    }
  }
}

// PyTorch's running update r = (1 - momentum)·r + momentum·batch for channel c, the variance
// made unbiased (·M/(M - 1)); null buffers are skipped. Twin of `update_running`.
template <typename A>
__device__ __forceinline__ void update_running(i64 c, double mean, double var, i64 M,
                                               double momentum, A* run_mean, A* run_var) {
  const double unbias = M > 1 ? (double)M / (double)(M - 1) : 1.0;
  if (run_mean) run_mean[c] = (A)((1.0 - momentum) * (double)run_mean[c] + momentum * mean);
  if (run_var) run_var[c] = (A)((1.0 - momentum) * (double)run_var[c] + momentum * var * unbias);
}

// What the statistics pass derives for the forward (pointers null when not wanted): invstd,
// scale = γ·invstd and shift = β - mean·scale from γ, β (null: ones, zeros) and eps, in double.
// Twin of `affine_from_stats`.
template <typename A> struct BnAffine {
  const A* gamma;
  const A* beta;
  A* invstd;
  A* scale;
  A* shift;
  double eps;
};

template <typename A>
__device__ __forceinline__ void write_affine(const BnAffine<A>& f, i64 c, double mean, double var) {
  if (!f.invstd) return;
  const double is = 1.0 / sqrt(var + f.eps);
  const double sc = (f.gamma ? (double)f.gamma[c] : 1.0) * is;
  f.invstd[c] = (A)is;
  f.scale[c] = (A)sc;
  f.shift[c] = (A)((f.beta ? (double)f.beta[c] : 0.0) - mean * sc);
}

// Statistics: out1 = mean, out2 = biased var, `aff` written, and the running buffers (when not
// null) updated;
// num_batches_tracked (when not null) counts the batch. Backward: out1 = dγ, out2 = dβ.
template <typename T>
__device__ void bn_finalize(const T* x, const typename Acc<T>::t* invstd, bool bwd, i64 n, i64 C,
                            i64 hw, bool cl, const double* partials, i64 splits,
                            typename Acc<T>::t* out1, typename Acc<T>::t* out2,
                            typename Acc<T>::t* run_mean, typename Acc<T>::t* run_var,
                            i64* batches, double momentum,
                            const BnAffine<typename Acc<T>::t>& aff) {
  typedef typename Acc<T>::t A;
  // Every lane of a warp has the same channel, so a warp returns whole or not at all.
  const i64 c = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (c >= C) return;
  double s1 = 0.0, s2 = 0.0;
  for (i64 s = lane; s < splits; s += 32) s1 += partials[(s * C + c) * 2], s2 += partials[(s * C + c) * 2 + 1];
  s1 = warp_add(s1);
  s2 = warp_add(s2);
  if (lane == 0) {
    const i64 M = n * hw;
    if (bwd) {
      out1[c] = (A)(s2 * (double)invstd[c]);
      out2[c] = (A)s1;
    } else {
      const double m = (double)(M > 0 ? M : 1), k = M > 0 ? (double)to_acc(x[cl ? c : c * hw]) : 0.0;
      const double d = s1 / m, var = fmax(s2 / m - d * d, 0.0);
      out1[c] = (A)(k + d);
      out2[c] = (A)var;
      update_running(c, k + d, var, M, momentum, run_mean, run_var);
      write_affine(aff, c, k + d, var);
      if (batches && c == 0) *batches += 1;
    }
  }
}

// Statistics from tile partials: tile t < tiles of channel c holds n_t = min(rows, M - t·rows)
// values, its sum at p[(t·C + c)·stride] and its second quantity at p[second + (t·C + c)·stride]:
// M2_t = Σ(v - sum/n_t)² when `centered`, else Σv² (M2_t = Σv² - sum²/n_t). mean = Σ sums / M,
// M·var = Σ_t M2_t + n_t·(sum_t/n_t - mean)². Then as bn_finalize: mean, biased var, the running
// buffers, num_batches_tracked and `aff`. A warp per channel.
template <typename A>
__device__ void bn_finalize_tiles(const float* p, i64 second, i64 stride, i64 tiles, i64 rows,
                                  bool centered, i64 C, i64 M, A* out1, A* out2, A* run_mean,
                                  A* run_var, i64* batches, double momentum,
                                  const BnAffine<A>& aff) {
  const i64 c = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (c >= C) return;
  double s = 0.0;
  for (i64 t = lane; t < tiles; t += 32) s += (double)p[(t * C + c) * stride];
  const double mean = warp_add(s) / (double)(M > 0 ? M : 1);
  double m2 = 0.0;
  for (i64 t = lane; t < tiles; t += 32) {
    const i64 o = (t * C + c) * stride;
    const double n = (double)min(rows, M - t * rows), st = (double)p[o], q = (double)p[second + o];
    const double d = st / n - mean;
    m2 += (centered ? q : q - st * st / n) + n * d * d;
  }
  m2 = warp_add(m2);
  if (lane == 0) {
    const double var = fmax(m2 / (double)(M > 0 ? M : 1), 0.0);
    out1[c] = (A)mean;
    out2[c] = (A)var;
    update_running(c, mean, var, M, momentum, run_mean, run_var);
    write_affine(aff, c, mean, var);
    if (batches && c == 0) *batches += 1;
  }
}

// The channel of dense element i.
template <typename I> __device__ __forceinline__ I channel_of(I i, I C, I hw, bool cl) {
  return cl ? i % C : (i / hw) % C;
}

// y = act(x·scale[c] + shift[c] + residual).
template <typename I, typename T>
__device__ void bn_act_fwd(const T* x, const T* res, const typename Acc<T>::t* scale,
                           const typename Acc<T>::t* shift, bool relu, I total, I C, I hw, bool cl,
                           T* y) {
  typedef typename Acc<T>::t A;
  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (I)gridDim.x * blockDim.x) {
    const I c = channel_of(i, C, hw, cl);
    A v = to_acc(x[i]) * scale[c] + shift[c];
    if (res) v += to_acc(res[i]);
    y[i] = from_acc<T>(relu ? fmax(v, A(0)) : v);
  }
}

// Training: dx = γ·invstd·(g - dβ/M - (x - mean)·invstd·dγ/M); eval: dx = γ·invstd·g. The ReLU
// mask comes from y, or from x·scale + shift where y is null (bn_out).
// dres (when not null) = g.
template <typename I, typename T>
__device__ void bn_act_bwd_dx(const T* dy, const T* y, const T* x, const typename Acc<T>::t* scale,
                              const typename Acc<T>::t* shift, const typename Acc<T>::t* mean,
                              const typename Acc<T>::t* invstd, const typename Acc<T>::t* gamma,
                              const typename Acc<T>::t* dgamma, const typename Acc<T>::t* dbeta,
                              bool relu, bool training, I total, I C, I hw, bool cl, T* dx,
                              T* dres) {
  typedef typename Acc<T>::t A;
  const I M = total / (C > 0 ? C : 1);
  const A inv_m = A(1) / A(M > 0 ? M : 1);
  for (I i = (I)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (I)gridDim.x * blockDim.x) {
    const I c = channel_of(i, C, hw, cl);
    const A m = relu ? bn_out(x, y, i, y ? A(0) : scale[c], y ? A(0) : shift[c]) : A(1);
    const A g = relu_grad(to_acc(dy[i]), m, relu);
    if (dres) dres[i] = from_acc<T>(g);
    const A is = invstd[c], sc = gamma[c] * is;
    A d = g;
    if (training) d -= dbeta[c] * inv_m + (to_acc(x[i]) - mean[c]) * (is * dgamma[c] * inv_m);
    dx[i] = from_acc<T>(sc * d);
  }
}

// ---- packed channels-last kernels --------------------------------------------------------------

// bn_partials over NHWC with 16-byte loads: thread t sums channels [c0, c0 + W) (c0 = (t % cp)·W,
// cp = C / W ≤ blockDim.x) over the pixels t / cp, t / cp + rows, ... of its split (rows =
// blockDim.x / cp); the block's rows then combine in shared memory. blockDim.x = 256.
template <typename T>
__device__ void bn_partials_packed(const T* x, const T* dy, const T* y,
                                   const typename Acc<T>::t* mean,
                                   const typename Acc<T>::t* scale,
                                   const typename Acc<T>::t* shift, bool relu, bool bwd, i64 n,
                                   i64 C, i64 hw, double* partials) {
  typedef typename Acc<T>::t A;
  constexpr int W = 16 / sizeof(T);
  __shared__ A part[2][256][W];
  const int cp = (int)(C / W), rows = blockDim.x / cp, t = threadIdx.x;
  const int pack = t % cp, row = t / cp;
  const i64 M = n * hw, S = gridDim.y, s = blockIdx.y, c0 = (i64)pack * W;
  const i64 chunk = (M + S - 1) / S, start = s * chunk, end = min(M, start + chunk);
  const bool remask = bwd && relu && !y;
  A s1[W], s2[W], sh[W], sc[W], sf[W];
#pragma unroll
  for (int j = 0; j < W; ++j) {
    s1[j] = s2[j] = A(0);
    sh[j] = bwd ? mean[c0 + j] : (M > 0 ? to_acc(x[c0 + j]) : A(0));
    sc[j] = remask ? scale[c0 + j] : A(0);
    sf[j] = remask ? shift[c0 + j] : A(0);
  }
  const Pack<T>* xp = reinterpret_cast<const Pack<T>*>(x);
  for (i64 p = start + row; row < rows && p < end; p += rows) {
    const i64 at = p * cp + pack;
    const Pack<T> xv = xp[at];
    if (bwd) {
      const Pack<T> gv = reinterpret_cast<const Pack<T>*>(dy)[at];
      Pack<T> yv;
      if (relu && y) yv = reinterpret_cast<const Pack<T>*>(y)[at];
#pragma unroll
      for (int j = 0; j < W; ++j) {
        const A v = to_acc(xv.v[j]);
        const A m = !relu ? A(1)
                    : y   ? to_acc(yv.v[j])
                          : to_acc(from_acc<T>(fmax(v * sc[j] + sf[j], A(0))));
        const A g = relu_grad(to_acc(gv.v[j]), m, relu);
        s1[j] += g;
        s2[j] += g * (v - sh[j]);
      }
    } else {
#pragma unroll
      for (int j = 0; j < W; ++j) {
        const A d = to_acc(xv.v[j]) - sh[j];
        s1[j] += d;
        s2[j] += d * d;
      }
    }
  }
#pragma unroll
  for (int j = 0; j < W; ++j) part[0][t][j] = s1[j], part[1][t][j] = s2[j];
  __syncthreads();
  if (t < cp) {
    for (int r = 1; r < rows; ++r) {
#pragma unroll
      for (int j = 0; j < W; ++j) s1[j] += part[0][r * cp + t][j], s2[j] += part[1][r * cp + t][j];
    }
#pragma unroll
    for (int j = 0; j < W; ++j) {
      partials[(s * C + c0 + j) * 2] = s1[j];
      partials[(s * C + c0 + j) * 2 + 1] = s2[j];
    }
  }
}

// The packed elementwise kernels' layout: a block of 256 threads spans `rows` = 256 / cp pixels
// of cp packs each (threads past rows·cp idle), and strides over pixels by gridDim.x·rows, so a
// thread keeps one channel pack: channels [(t % cp)·W, +W). Its per-channel factors load once,
// not once a pixel (the launcher gives each thread several pixels).
struct PackedLane {
  unsigned pack, first, stride, pixels;
  __device__ PackedLane(unsigned packs, unsigned cp) {
    const unsigned rows = blockDim.x / cp, row = threadIdx.x / cp;
    pack = threadIdx.x % cp;
    pixels = packs / cp;
    first = row < rows ? blockIdx.x * rows + row : pixels;  // an idle thread starts at the end
    stride = gridDim.x * rows;
  }
};

// bn_act_fwd over NHWC packs.
template <typename T>
__device__ void bn_act_fwd_packed(const T* x, const T* res, const typename Acc<T>::t* scale,
                                  const typename Acc<T>::t* shift, bool relu, unsigned packs,
                                  unsigned cp, T* y) {
  typedef typename Acc<T>::t A;
  constexpr int W = 16 / sizeof(T);
  const PackedLane l(packs, cp);
  A sc[W], sf[W];
#pragma unroll
  for (int j = 0; j < W; ++j) sc[j] = scale[l.pack * W + j], sf[j] = shift[l.pack * W + j];
  for (unsigned p = l.first; p < l.pixels; p += l.stride) {
    const unsigned i = p * cp + l.pack;
    Pack<T> v = reinterpret_cast<const Pack<T>*>(x)[i];
    Pack<T> r;
    if (res) r = reinterpret_cast<const Pack<T>*>(res)[i];
#pragma unroll
    for (int j = 0; j < W; ++j) {
      A u = to_acc(v.v[j]) * sc[j] + sf[j];
      if (res) u += to_acc(r.v[j]);
      v.v[j] = from_acc<T>(relu ? fmax(u, A(0)) : u);
    }
    reinterpret_cast<Pack<T>*>(y)[i] = v;
  }
}

// bn_act_bwd_dx over NHWC packs: the formulas of bn_act_bwd_dx, dx = γ·invstd·(g - dβ/m -
// (x - mean)·invstd·dγ/m), with the per-channel factors formed once a thread, in the same order.
template <typename T>
__device__ void bn_act_bwd_dx_packed(const T* dy, const T* y, const T* x,
                                     const typename Acc<T>::t* scale,
                                     const typename Acc<T>::t* shift,
                                     const typename Acc<T>::t* mean,
                                     const typename Acc<T>::t* invstd,
                                     const typename Acc<T>::t* gamma,
                                     const typename Acc<T>::t* dgamma,
                                     const typename Acc<T>::t* dbeta, bool relu, bool training,
                                     unsigned packs, unsigned cp, T* dx, T* dres) {
  typedef typename Acc<T>::t A;
  constexpr int W = 16 / sizeof(T);
  const PackedLane l(packs, cp);
  const A inv_m = A(1) / A(l.pixels > 0 ? l.pixels : 1);
  const bool remask = relu && !y, need_x = training || remask;
  A gs[W], db[W], q[W], mu[W], sc[W], sf[W];
#pragma unroll
  for (int j = 0; j < W; ++j) {
    const unsigned c = l.pack * W + j;
    const A is = invstd[c];
    gs[j] = gamma[c] * is;
    db[j] = training ? dbeta[c] * inv_m : A(0);
    q[j] = training ? is * dgamma[c] * inv_m : A(0);
    mu[j] = training ? mean[c] : A(0);
    sc[j] = remask ? scale[c] : A(0);
    sf[j] = remask ? shift[c] : A(0);
  }
  for (unsigned p = l.first; p < l.pixels; p += l.stride) {
    const unsigned i = p * cp + l.pack;
    Pack<T> g = reinterpret_cast<const Pack<T>*>(dy)[i];
    Pack<T> xv, yv;
    if (need_x) xv = reinterpret_cast<const Pack<T>*>(x)[i];
    if (relu && y) yv = reinterpret_cast<const Pack<T>*>(y)[i];
    Pack<T> out;
#pragma unroll
    for (int j = 0; j < W; ++j) {
      const A m = !relu ? A(1)
                  : y   ? to_acc(yv.v[j])
                        : to_acc(from_acc<T>(fmax(to_acc(xv.v[j]) * sc[j] + sf[j], A(0))));
      const A gj = relu_grad(to_acc(g.v[j]), m, relu);
      g.v[j] = from_acc<T>(gj);
      A d = gj;
      if (training) d -= db[j] + (to_acc(xv.v[j]) - mu[j]) * q[j];
      out.v[j] = from_acc<T>(gs[j] * d);
    }
    reinterpret_cast<Pack<T>*>(dx)[i] = out;
    if (dres) reinterpret_cast<Pack<T>*>(dres)[i] = g;
  }
}

// ---- dtypes ---------------------------------------------------------------------------------

// 32-bit indexing below 2^31 elements (no 64-bit division), 64-bit above.
#define BN_INDEXED(...)                                                                           \
  if (total < 0x7fffffffll) {                                                                     \
    typedef unsigned I;                                                                           \
    __VA_ARGS__;                                                                                  \
  } else {                                                                                        \
    typedef unsigned long long I;                                                                 \
    __VA_ARGS__;                                                                                  \
  }

// A: the per-channel vectors' type, Acc<T>::t.
#define BN_KERNELS(T, A, S)                                                                       \
  extern "C" __global__ void bn_partials_##S(                                                     \
      const T* x, const T* dy, const T* y, const A* scale, const A* shift, const A* mean, int relu, \
      int bwd, i64 n, i64 c, i64 hw, int cl, double* partials) {                                  \
    bn_partials<T>(x, dy, y, mean, scale, shift, relu != 0, bwd != 0, n, c, hw, cl != 0,         \
                   partials);                                                                     \
  }                                                                                               \
  extern "C" __global__ void bn_finalize_##S(                                                     \
      const T* x, const A* invstd, int bwd, i64 n, i64 c, i64 hw, int cl, const double* partials, \
      i64 splits, A* out1, A* out2, A* run_mean, A* run_var, i64* batches, double momentum,      \
      BnAffine<A> aff) {                                                                          \
    bn_finalize<T>(x, invstd, bwd != 0, n, c, hw, cl != 0, partials, splits, out1, out2,          \
                   run_mean, run_var, batches, momentum, aff);                                    \
  }                                                                                               \
  extern "C" __global__ void bn_act_fwd_##S(const T* x, const T* res, const A* scale,            \
                                            const A* shift, int relu, i64 total, i64 c, i64 hw,   \
                                            int cl, T* y) {                                       \
    BN_INDEXED(bn_act_fwd<I, T>(x, res, scale, shift, relu != 0, (I)total, (I)c, (I)hw, cl != 0, \
                                y))                                                               \
  }                                                                                               \
  extern "C" __global__ void bn_act_bwd_dx_##S(                                                   \
      const T* dy, const T* y, const T* x, const A* scale, const A* shift, const A* mean,         \
      const A* invstd, const A* gamma, const A* dgamma, const A* dbeta, int relu, int training,   \
      i64 total, i64 c, i64 hw, int cl, T* dx, T* dres) {                                         \
    BN_INDEXED(bn_act_bwd_dx<I, T>(dy, y, x, scale, shift, mean, invstd, gamma, dgamma, dbeta,   \
                                   relu != 0,                                                     \
                                   training != 0, (I)total, (I)c, (I)hw, cl != 0, dx, dres))      \
  }                                                                                               \
  extern "C" __global__ void bn_partials_packed_##S(                                              \
      const T* x, const T* dy, const T* y, const A* scale, const A* shift, const A* mean, int relu, \
      int bwd, i64 n, i64 c, i64 hw, double* partials) {                                          \
    bn_partials_packed<T>(x, dy, y, mean, scale, shift, relu != 0, bwd != 0, n, c, hw, partials); \
  }                                                                                               \
  extern "C" __global__ void bn_act_fwd_packed_##S(const T* x, const T* res, const A* scale,     \
                                                   const A* shift, int relu, unsigned packs,     \
                                                   unsigned cp, T* y) {                           \
    bn_act_fwd_packed<T>(x, res, scale, shift, relu != 0, packs, cp, y);                          \
  }                                                                                               \
  extern "C" __global__ void bn_act_bwd_dx_packed_##S(                                            \
      const T* dy, const T* y, const T* x, const A* scale, const A* shift, const A* mean,         \
      const A* invstd, const A* gamma, const A* dgamma, const A* dbeta, int relu, int training,   \
      unsigned packs, unsigned cp, T* dx, T* dres) {                                              \
    bn_act_bwd_dx_packed<T>(dy, y, x, scale, shift, mean, invstd, gamma, dgamma, dbeta, relu != 0, \
                            training != 0, packs, cp, dx, dres);                                  \
  }
BN_KERNELS(float, float, f32)
BN_KERNELS(double, double, f64)
BN_KERNELS(f16, float, f16)
BN_KERNELS(bf16, float, bf16)

extern "C" __global__ void bn_finalize_tiles_f32(const float* p, i64 second, i64 stride,
                                                 i64 tiles, i64 rows, int centered, i64 c, i64 m,
                                                 float* out1, float* out2, float* run_mean,
                                                 float* run_var, i64* batches, double momentum,
                                                 BnAffine<float> aff) {
  bn_finalize_tiles<float>(p, second, stride, tiles, rows, centered != 0, c, m, out1, out2,
                           run_mean, run_var, batches, momentum, aff);
}
