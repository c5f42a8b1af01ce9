// Prepended to every kiln module (kernels/src/registry.rs). Header-free: NVRTC needs no include
// path, so kiln runs wherever libnvrtc loads. Half types are raw 16-bit patterns converted with
// PTX `cvt` (f16) or bit shifts (bf16); arithmetic happens in `Acc<T>::t` (f32, f64 for f64).

// Distinct 16-bit types so overloads and templates can tell them apart.
struct __align__(2) f16 { unsigned short bits; };
struct __align__(2) bf16 { unsigned short bits; };
typedef long long i64;
typedef unsigned char u8;

#define KILN_MAX_DIMS 6

// A strided operand of up to KILN_MAX_DIMS dimensions, passed by value.
struct Strides { i64 s[KILN_MAX_DIMS]; };
struct Shape { i64 d[KILN_MAX_DIMS]; int rank; };

// The type each storage type computes in, and conversions to and from it.
template <typename T> struct Acc { typedef float t; };
template <> struct Acc<double> { typedef double t; };

__device__ __forceinline__ float to_acc(f16 h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h.bits));
  return f;
}
__device__ __forceinline__ float to_acc(bf16 h) { return __uint_as_float(((unsigned)h.bits) << 16); }
__device__ __forceinline__ float to_acc(float v) { return v; }
__device__ __forceinline__ double to_acc(double v) { return v; }

template <typename T> __device__ __forceinline__ T from_acc(typename Acc<T>::t v);
template <> __device__ __forceinline__ float from_acc<float>(float v) { return v; }
template <> __device__ __forceinline__ double from_acc<double>(double v) { return v; }
template <> __device__ __forceinline__ f16 from_acc<f16>(float v) {
  f16 h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h.bits) : "f"(v));
  return h;
}
template <> __device__ __forceinline__ bf16 from_acc<bf16>(float v) {
  unsigned u = __float_as_uint(v);
  bf16 h;
  if ((u & 0x7fffffffu) > 0x7f800000u) {
    h.bits = (unsigned short)((u >> 16) | 0x40);  // keep NaN a quiet NaN
  } else {
    u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
    h.bits = (unsigned short)(u >> 16);
  }
  return h;
}

// The offset of linear (row-major) index `i` of `shape` in an operand with `st` strides.
__device__ __forceinline__ i64 strided_offset(i64 i, const Shape& shape, const Strides& st) {
  if (shape.rank == 1) return i * st.s[0];  // coalesced operands: no 64-bit division
  i64 off = 0;
  for (int d = shape.rank - 1; d >= 0; --d) {
    i64 n = shape.d[d];
    off += (i % n) * st.s[d];
    i /= n;
  }
  return off;
}

// 16 bytes of T (4 f32, 8 f16 or bf16, 2 f64), for one vector load or store from a 16-byte
// aligned address.
template <typename T> struct __align__(16) Pack {
  T v[16 / sizeof(T)];
};

// Grid-stride loop over [0, n).
#define KILN_FOR(i, n) \
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)gridDim.x * blockDim.x)

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over a block of blockDim.x (a multiple of 32, at most 1024) threads; every thread gets it.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float partial[32];
  __syncthreads();  // partial may still be read by a previous call
  v = warp_sum(v);
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  int warps = blockDim.x >> 5;
  v = lane < warps ? partial[lane] : 0.0f;
  return warp_sum(v);
}
