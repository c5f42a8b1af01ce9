// Philox4x32-10 streams on the device: dropout keep masks, uniform and normal fills that give the
// CPU's numbers for the same (seed, offset). Twin of src/cpu/philox.rs, used as the engine does
// (engine/src/ops/creation.rs, dropout.rs):
//   element i's 32 bits are word i % 4 of philox(counter = offset + i / 4, key = seed);
//   uniform(bits) = (bits >> 8)·2^-24; normal i uses the words of elements 2i and 2i+1
//   (Box-Muller in double, its radius from 1 - uniform in (0, 1]); dropout keeps element i when
//   f32(uniform) >= f32(p).
//
// Geometry: grid-stride, a thread per Philox block: four uniforms / dropout decisions, or two
// normals.

// ---- helpers --------------------------------------------------------------------------------

__device__ __forceinline__ uint4 philox4x32_10(uint4 c, uint2 k) {
  const unsigned M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
#pragma unroll
  for (int round = 0; round < 10; ++round) {
    if (round > 0) k.x += W0, k.y += W1;
    const unsigned hi0 = __umulhi(M0, c.x), lo0 = M0 * c.x;
    const unsigned hi1 = __umulhi(M1, c.z), lo1 = M1 * c.z;
    c = make_uint4(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
  }
  return c;
}

// The four words of Philox block `block` under `seed`.
__device__ __forceinline__ uint4 philox_block(unsigned long long seed, unsigned long long block) {
  return philox4x32_10(make_uint4((unsigned)block, (unsigned)(block >> 32), 0u, 0u),
                       make_uint2((unsigned)seed, (unsigned)(seed >> 32)));
}

__device__ __forceinline__ unsigned word(uint4 w, int k) {
  return k == 0 ? w.x : (k == 1 ? w.y : (k == 2 ? w.z : w.w));
}

// [0, 1) with 24 random bits, exact in float and double.
__device__ __forceinline__ double uniform01(unsigned bits) { return (double)(bits >> 8) * (1.0 / 16777216.0); }

// Box-Muller from two words, in double as the twin (rounding kept apart: no fused multiply-add).
// The radius's uniform is 1 - u, in (0, 1] and exact, so no draw lies beyond 5.77 sigma.
__device__ __forceinline__ double box_muller(unsigned a, unsigned b) {
  const double u1 = 1.0 - uniform01(a), u2 = uniform01(b);
  return sqrt(-2.0 * log(u1)) * cos(__dmul_rn(6.283185307179586, u2));
}

// ---- kernels --------------------------------------------------------------------------------

// out[i] = keep ? scale : 0, keep = f32(uniform_i) >= p32 (the engine compares in f32).
template <typename T>
__device__ void dropout_mask(unsigned long long seed, unsigned long long offset, float p32,
                             double scale, T* out, i64 n) {
  typedef typename Acc<T>::t A;
  const T kept = from_acc<T>(A(scale)), dropped = from_acc<T>(A(0));
  KILN_FOR(j, (n + 3) / 4) {
    const uint4 w = philox_block(seed, offset + j);
    for (int k = 0; k < 4 && 4 * j + k < n; ++k)
      out[4 * j + k] = (float)uniform01(word(w, k)) >= p32 ? kept : dropped;
  }
}

// out[i] = lo + (hi - lo)·uniform_i, in double, rounded once to T.
template <typename T>
__device__ void uniform_fill(unsigned long long seed, unsigned long long offset, double lo,
                             double hi, T* out, i64 n) {
  typedef typename Acc<T>::t A;
  KILN_FOR(j, (n + 3) / 4) {
    const uint4 w = philox_block(seed, offset + j);
    for (int k = 0; k < 4 && 4 * j + k < n; ++k)
      out[4 * j + k] = from_acc<T>(A(__dadd_rn(lo, __dmul_rn(hi - lo, uniform01(word(w, k))))));
  }
}

// out[i] = mean + std·normal_i; block j holds the words of normals 2j (x, y) and 2j+1 (z, w).
template <typename T>
__device__ void normal_fill(unsigned long long seed, unsigned long long offset, double mean,
                            double std_, T* out, i64 n) {
  typedef typename Acc<T>::t A;
  KILN_FOR(j, (n + 1) / 2) {
    const uint4 w = philox_block(seed, offset + j);
    out[2 * j] = from_acc<T>(A(__dadd_rn(mean, __dmul_rn(std_, box_muller(w.x, w.y)))));
    if (2 * j + 1 < n)
      out[2 * j + 1] = from_acc<T>(A(__dadd_rn(mean, __dmul_rn(std_, box_muller(w.z, w.w)))));
  }
}

// ---- dtypes ---------------------------------------------------------------------------------

#define RNG_KERNELS(T, S)                                                                         \
  extern "C" __global__ void dropout_mask_##S(unsigned long long seed, unsigned long long offset, \
                                              float p32, double scale, T* out, i64 n) {           \
    dropout_mask<T>(seed, offset, p32, scale, out, n);                                            \
  }                                                                                               \
  extern "C" __global__ void uniform_##S(unsigned long long seed, unsigned long long offset,      \
                                         double lo, double hi, T* out, i64 n) {                   \
    uniform_fill<T>(seed, offset, lo, hi, out, n);                                                \
  }                                                                                               \
  extern "C" __global__ void normal_##S(unsigned long long seed, unsigned long long offset,       \
                                        double mean, double std_, T* out, i64 n) {                \
    normal_fill<T>(seed, offset, mean, std_, out, n);                                             \
  }
RNG_KERNELS(float, f32)
RNG_KERNELS(double, f64)
RNG_KERNELS(f16, f16)
RNG_KERNELS(bf16, bf16)
