// The data prefetcher's device step: a uint8 NHWC batch (as decoded and copied to the device, a
// quarter of the float bytes) becomes normalized f32/f16/bf16, still channels-last, in one pass:
// dst = (src/255 - mean[c]) / std[c]. Twin of src/cpu/layout.rs.
//
// Geometry: grid-stride, a thread per 4 bytes (one 32-bit load when the source is 4-aligned); the
// channel advances with a wrap instead of a division per element.

#define NORM_MAX_CHANNELS 8

// Per-channel mean and std, passed by value.
struct Norm {
  float mean[NORM_MAX_CHANNELS];
  float std[NORM_MAX_CHANNELS];
};

template <typename T>
__device__ void normalize_u8_nhwc(const u8* src, i64 total, int c, const Norm& nm, int aligned,
                                  T* dst) {
  // Per-channel constants into shared memory (constant indices: no local copy of the struct).
  __shared__ float mean[NORM_MAX_CHANNELS], std_[NORM_MAX_CHANNELS];
  if (threadIdx.x == 0) {
#pragma unroll
    for (int i = 0; i < NORM_MAX_CHANNELS; ++i) mean[i] = nm.mean[i], std_[i] = nm.std[i];
  }
  __syncthreads();
  const i64 groups = (total + 3) / 4;
  KILN_FOR(gi, groups) {
    const i64 j0 = gi * 4;
    unsigned word = 0;
    if (aligned && j0 + 4 <= total) {
      word = *(const unsigned*)(src + j0);
    } else {
      for (int k = 0; k < 4 && j0 + k < total; ++k) word |= (unsigned)src[j0 + k] << (8 * k);
    }
    int ch = (int)(j0 % c);
    for (int k = 0; k < 4 && j0 + k < total; ++k) {
      const float v = (float)((word >> (8 * k)) & 255u);
      dst[j0 + k] = from_acc<T>((v / 255.0f - mean[ch]) / std_[ch]);
      ch = ch + 1 == c ? 0 : ch + 1;
    }
  }
}

#define NORMALIZE_KERNEL(T, S)                                                                    \
  extern "C" __global__ void normalize_u8_nhwc_##S(const u8* src, i64 total, int c, Norm nm,     \
                                                   int aligned, T* dst) {                         \
    normalize_u8_nhwc<T>(src, total, c, nm, aligned, dst);                                        \
  }
NORMALIZE_KERNEL(float, f32)
NORMALIZE_KERNEL(f16, f16)
NORMALIZE_KERNEL(bf16, bf16)
