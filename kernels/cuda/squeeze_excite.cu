// The two feature-map passes of the fused squeeze-excite, NCHW or NHWC (channels_last). Twin of
// src/cpu/squeeze_excite.rs; host side src/cuda/squeeze_excite.rs.
//
// Squeeze-excite is out = x · gate(W2·act(W1·mean_hw(x) + b1) + b2). Unfused it is a pool, two
// 1×1 convs, two activations and a broadcast multiply, and its backward adds a product, a sum
// and an expanded mean gradient: the activation-sized tensors are read and written several times.
// Fused, the forward reads x twice (pool, scale) and writes out once; the backward reads x once,
// dout twice and writes dx once. The FC layers in between act on [N, C] vectors and run as
// ordinary ops.
//
// Kernels (activations T = f32, f64, f16, bf16; per-channel vectors A = Acc<T>::t):
//   se_channel_sum   out[n·C + c] = scale · Σ_p a[n,c,p] · b[n,c,p] (b = 1 when null), summed in
//                    a fixed order (deterministic). NCHW: a 256-thread block per (n, c) plane.
//                    NHWC: grid (channel tiles, n), 32×8 blocks, x = 32 adjacent channels
//                    (coalesced), y = pixels; the 8 row partials are added in order.
//   se_channel_apply out[i] = a[i] · g[n·C + c] + add[n·C + c] (add = 0 when null), grid-stride.

// ---- kernels --------------------------------------------------------------------------------

template <typename T>
__device__ void se_channel_sum(const T* a, const T* b, typename Acc<T>::t* out, i64 C, i64 hw,
                               bool cl, double scale) {
  typedef typename Acc<T>::t A;
  A s = A(0);
  if (!cl) {
    const i64 plane = blockIdx.x;
    const T* pa = a + plane * hw;
    const T* pb = b ? b + plane * hw : nullptr;
    for (i64 p = threadIdx.x; p < hw; p += blockDim.x) s += to_acc(pa[p]) * (pb ? to_acc(pb[p]) : A(1));
    A v[1] = {s};
    group_add<A, 1>(v, false);
    if (threadIdx.x == 0) out[plane] = v[0] * A(scale);
    return;
  }
  __shared__ A part[8][32];
  const i64 n = blockIdx.y, c = (i64)blockIdx.x * 32 + threadIdx.x;
  if (c < C) {
    for (i64 p = threadIdx.y; p < hw; p += blockDim.y) {
      i64 off = (n * hw + p) * C + c;
      s += to_acc(a[off]) * (b ? to_acc(b[off]) : A(1));
    }
  }
  part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    A t = A(0);
    for (int r = 0; r < (int)blockDim.y; ++r) t += part[r][threadIdx.x];
    out[n * C + c] = t * A(scale);
  }
}

template <typename T>
__device__ void se_channel_apply(const T* a, const typename Acc<T>::t* g,
                                 const typename Acc<T>::t* add, T* out, i64 total, i64 C, i64 hw,
                                 bool cl) {
  typedef typename Acc<T>::t A;
  KILN_FOR(i, total) {
    i64 nc = cl ? (i / (hw * C)) * C + i % C : i / hw;
    A v = to_acc(a[i]) * g[nc];
    if (add) v += add[nc];
    out[i] = from_acc<T>(v);
  }
}

// ---- dtypes ---------------------------------------------------------------------------------

#define SE_KERNELS(T, S)                                                                          \
  extern "C" __global__ void se_channel_sum_##S(const T* a, const T* b, Acc<T>::t* out, i64 C,   \
                                                i64 hw, int cl, double scale) {                   \
    se_channel_sum<T>(a, b, out, C, hw, cl != 0, scale);                                          \
  }                                                                                               \
  extern "C" __global__ void se_channel_apply_##S(const T* a, const Acc<T>::t* g,                 \
                                                  const Acc<T>::t* add, T* out, i64 total, i64 C, \
                                                  i64 hw, int cl) {                               \
    se_channel_apply<T>(a, g, add, out, total, C, hw, cl != 0);                                   \
  }

SE_KERNELS(float, f32)
SE_KERNELS(double, f64)
SE_KERNELS(f16, f16)
SE_KERNELS(bf16, bf16)
