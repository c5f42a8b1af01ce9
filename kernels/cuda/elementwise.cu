// Elementwise unary (forward and backward), binary with broadcasting strides, comparisons,
// select, casts, fills and strided copies. Twin of src/cpu/elementwise.rs and src/cpu/copy.rs.
// Op codes follow the order of the Rust enums (UnaryOp, BinaryOp, CmpOp).

template <typename A> __device__ __forceinline__ A sigmoid_(A x) { return A(1) / (A(1) + exp(-x)); }
template <typename A> __device__ __forceinline__ A relu6_(A x) { return fmin(fmax(x, A(0)), A(6)); }
template <typename A> __device__ __forceinline__ A normal_cdf_(A x) {
  return A(0.5) * (A(1) + erf(x * A(0.70710678118654752)));
}

// torch's GELU(approximate='tanh'): u = √(2/π)·(x + 0.044715·x³), f = x·(1 + tanh u)/2.
template <typename A> __device__ __forceinline__ A gelu_tanh_arg_(A x) {
  return A(0.7978845608028654) * (x + A(0.044715) * x * x * x);
}
template <typename A> __device__ __forceinline__ A gelu_tanh_df_(A x) {
  A t = tanh(gelu_tanh_arg_(x));
  A du = A(0.7978845608028654) * (A(1) + A(3.0 * 0.044715) * x * x);
  return A(0.5) * (A(1) + t) + A(0.5) * x * (A(1) - t * t) * du;
}

template <typename A> __device__ __forceinline__ A unary_f(int op, A x, A p0, A p1) {
  switch (op) {
    case 0: return -x;
    case 1: return exp(x);
    case 2: return log(x);
    case 3: return sqrt(x);
    case 4: return A(1) / sqrt(x);
    case 5: return fabs(x);
    case 6: return x > A(0) ? x : A(0);
    case 7: return sigmoid_(x);
    case 8: return tanh(x);
    case 9: return x * sigmoid_(x);
    case 10: return x * normal_cdf_(x);
    case 11: return x * relu6_(x + A(3)) / A(6);
    case 12: return relu6_(x + A(3)) / A(6);
    case 13: return A(1) / x;
    case 14: return x * x;
    case 15: return pow(x, p0);
    case 16: return fmin(fmax(x, p0), p1);
    case 18: return A(0.5) * x * (A(1) + tanh(gelu_tanh_arg_(x)));
    default: return x * p0 + p1;
  }
}

// df/dx at x given y = f(x).
template <typename A> __device__ __forceinline__ A unary_df(int op, A x, A y, A p0, A p1) {
  switch (op) {
    case 0: return A(-1);
    case 1: return y;
    case 2: return A(1) / x;
    case 3: return A(0.5) / y;
    case 4: return A(-0.5) * y * y * y;
    case 5: return x > A(0) ? A(1) : (x < A(0) ? A(-1) : A(0));
    case 6: return x > A(0) ? A(1) : A(0);
    case 7: return y * (A(1) - y);
    case 8: return A(1) - y * y;
    case 9: {
      A s = sigmoid_(x);
      return s + x * s * (A(1) - s);
    }
    case 10: return normal_cdf_(x) + x * exp(-x * x / A(2)) / A(2.5066282746310002);
    case 11: return x < A(-3) ? A(0) : (x > A(3) ? A(1) : (x + x + A(3)) / A(6));
    case 12: return (x > A(-3) && x < A(3)) ? A(1) / A(6) : A(0);
    case 13: return -y * y;
    case 14: return x + x;
    case 15: return p0 * pow(x, p0 - A(1));
    case 16: return (x >= p0 && x <= p1) ? A(1) : A(0);
    case 18: return gelu_tanh_df_(x);
    default: return p0;
  }
}

template <typename T>
__device__ void unary_fwd(const T* x, T* y, i64 n, int op, double p0, double p1) {
  typedef typename Acc<T>::t A;
  KILN_FOR(i, n) y[i] = from_acc<T>(unary_f<A>(op, to_acc(x[i]), A(p0), A(p1)));
}

template <typename T>
__device__ void unary_bwd(const T* x, const T* y, const T* dy, T* dx, i64 n, int op, double p0,
                          double p1) {
  typedef typename Acc<T>::t A;
  KILN_FOR(i, n) {
    A d = unary_df<A>(op, to_acc(x[i]), to_acc(y[i]), A(p0), A(p1));
    dx[i] = from_acc<T>(to_acc(dy[i]) * d);
  }
}

template <typename A> __device__ __forceinline__ A binary_f(int op, A a, A b) {
  switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return a != a ? a : (a > b ? a : b);  // NaN propagates, as torch.maximum
    default: return a != a ? a : (a < b ? a : b);
  }
}

// out[i] = a ⊙ b over `shape` (row-major in the output's memory order); a and b are strided.
template <typename T>
__device__ void binary(const T* a, Strides sa, const T* b, Strides sb, T* out, Shape shape,
                       i64 n, int op) {
  typedef typename Acc<T>::t A;
  KILN_FOR(i, n) {
    A x = to_acc(a[strided_offset(i, shape, sa)]);
    A y = to_acc(b[strided_offset(i, shape, sb)]);
    out[i] = from_acc<T>(binary_f<A>(op, x, y));
  }
}

template <typename T> __device__ __forceinline__ double as_double(T v) { return (double)v; }
__device__ __forceinline__ double as_double(f16 v) { return to_acc(v); }
__device__ __forceinline__ double as_double(bf16 v) { return to_acc(v); }

template <typename T>
__device__ void compare(const T* a, Strides sa, const T* b, Strides sb, u8* out, Shape shape,
                        i64 n, int op) {
  KILN_FOR(i, n) {
    double x = as_double(a[strided_offset(i, shape, sa)]);
    double y = as_double(b[strided_offset(i, shape, sb)]);
    bool r;
    switch (op) {
      case 0: r = x == y; break;
      case 1: r = x != y; break;
      case 2: r = x < y; break;
      case 3: r = x <= y; break;
      case 4: r = x > y; break;
      default: r = x >= y; break;
    }
    out[i] = r;
  }
}

// out = cond ? a : b; cond is Bool bytes, all three strided.
template <typename T>
__device__ void select(const u8* cond, Strides sc, const T* a, Strides sa, const T* b, Strides sb,
                       T* out, Shape shape, i64 n) {
  KILN_FOR(i, n) {
    out[i] = cond[strided_offset(i, shape, sc)] ? a[strided_offset(i, shape, sa)]
                                                : b[strided_offset(i, shape, sb)];
  }
}

// Fast paths for dense, 16-byte-aligned operands (the launchers check alignment): each thread
// moves 16 bytes (4 f32, 8 f16 or bf16, 2 f64) with one vector load or store, and the tail that
// fills no pack goes element by element. No index arithmetic: the strided kernels' 64-bit
// divisions made the f16 residual-gradient sums compute-bound.
template <typename T>
__device__ void unary_vec(const T* x, T* y, i64 n, int op, double p0, double p1) {
  typedef typename Acc<T>::t A;
  constexpr int W = 16 / sizeof(T);
  const i64 packs = n / W;
  KILN_FOR(i, packs) {
    Pack<T> v = reinterpret_cast<const Pack<T>*>(x)[i];
#pragma unroll
    for (int j = 0; j < W; ++j) v.v[j] = from_acc<T>(unary_f<A>(op, to_acc(v.v[j]), A(p0), A(p1)));
    reinterpret_cast<Pack<T>*>(y)[i] = v;
  }
  KILN_FOR(i, n - packs * W) {
    const i64 k = packs * W + i;
    y[k] = from_acc<T>(unary_f<A>(op, to_acc(x[k]), A(p0), A(p1)));
  }
}

template <typename T> __device__ void binary_vec(const T* a, const T* b, T* out, i64 n, int op) {
  typedef typename Acc<T>::t A;
  constexpr int W = 16 / sizeof(T);
  const i64 packs = n / W;
  KILN_FOR(i, packs) {
    Pack<T> u = reinterpret_cast<const Pack<T>*>(a)[i];
    const Pack<T> v = reinterpret_cast<const Pack<T>*>(b)[i];
#pragma unroll
    for (int j = 0; j < W; ++j) u.v[j] = from_acc<T>(binary_f<A>(op, to_acc(u.v[j]), to_acc(v.v[j])));
    reinterpret_cast<Pack<T>*>(out)[i] = u;
  }
  KILN_FOR(i, n - packs * W) {
    const i64 k = packs * W + i;
    out[k] = from_acc<T>(binary_f<A>(op, to_acc(a[k]), to_acc(b[k])));
  }
}

#define FLOAT_KERNELS(T, S)                                                                       \
  extern "C" __global__ void unary_##S(const T* x, T* y, i64 n, int op, double p0, double p1) {   \
    unary_fwd<T>(x, y, n, op, p0, p1);                                                            \
  }                                                                                               \
  extern "C" __global__ void unary_bwd_##S(const T* x, const T* y, const T* dy, T* dx, i64 n,     \
                                           int op, double p0, double p1) {                        \
    unary_bwd<T>(x, y, dy, dx, n, op, p0, p1);                                                    \
  }                                                                                               \
  extern "C" __global__ void unary_vec_##S(const T* x, T* y, i64 n, int op, double p0,           \
                                           double p1) {                                           \
    unary_vec<T>(x, y, n, op, p0, p1);                                                            \
  }                                                                                               \
  extern "C" __global__ void binary_vec_##S(const T* a, const T* b, T* out, i64 n, int op) {      \
    binary_vec<T>(a, b, out, n, op);                                                              \
  }                                                                                               \
  extern "C" __global__ void binary_##S(const T* a, Strides sa, const T* b, Strides sb, T* out,   \
                                        Shape shape, i64 n, int op) {                             \
    binary<T>(a, sa, b, sb, out, shape, n, op);                                                   \
  }                                                                                               \
  extern "C" __global__ void select_##S(const u8* c, Strides sc, const T* a, Strides sa,         \
                                        const T* b, Strides sb, T* out, Shape shape, i64 n) {     \
    select<T>(c, sc, a, sa, b, sb, out, shape, n);                                                \
  }
FLOAT_KERNELS(float, f32)
FLOAT_KERNELS(double, f64)
FLOAT_KERNELS(f16, f16)
FLOAT_KERNELS(bf16, bf16)

#define COMPARE_KERNEL(T, S)                                                                      \
  extern "C" __global__ void compare_##S(const T* a, Strides sa, const T* b, Strides sb,         \
                                         u8* out, Shape shape, i64 n, int op) {                   \
    compare<T>(a, sa, b, sb, out, shape, n, op);                                                  \
  }
COMPARE_KERNEL(float, f32)
COMPARE_KERNEL(double, f64)
COMPARE_KERNEL(f16, f16)
COMPARE_KERNEL(bf16, bf16)
COMPARE_KERNEL(i64, i64)
COMPARE_KERNEL(int, i32)
COMPARE_KERNEL(u8, u8)

// Casts between every pair of dtypes, through double (Bool: nonzero -> 1).
template <typename D> __device__ __forceinline__ D convert(double v) { return (D)v; }
template <> __device__ __forceinline__ f16 convert<f16>(double v) { return from_acc<f16>((float)v); }
template <> __device__ __forceinline__ bf16 convert<bf16>(double v) { return from_acc<bf16>((float)v); }
// Integer targets saturate and map NaN to 0, as Rust's `as`.
template <> __device__ __forceinline__ i64 convert<i64>(double v) {
  if (v != v) return 0;
  if (v <= -9223372036854775808.0) return (i64)0x8000000000000000ull;
  if (v >= 9223372036854775807.0) return 0x7fffffffffffffffll;
  return (i64)v;
}
template <> __device__ __forceinline__ int convert<int>(double v) {
  return v != v ? 0 : (int)fmin(fmax(v, -2147483648.0), 2147483647.0);
}
template <> __device__ __forceinline__ u8 convert<u8>(double v) {
  return v != v ? 0 : (u8)fmin(fmax(v, 0.0), 255.0);
}
struct Bool { u8 v; };
template <> __device__ __forceinline__ Bool convert<Bool>(double v) { Bool b; b.v = v != 0.0; return b; }
__device__ __forceinline__ double as_double(Bool v) { return v.v; }

#define CAST(S, SN, D, DN)                                                                        \
  extern "C" __global__ void cast_##SN##_##DN(const S* x, D* y, i64 n) {                         \
    KILN_FOR(i, n) y[i] = convert<D>(as_double(x[i]));                                            \
  }
#define CAST_FROM(S, SN)                                                                          \
  CAST(S, SN, float, f32) CAST(S, SN, double, f64) CAST(S, SN, f16, f16) CAST(S, SN, bf16, bf16)  \
  CAST(S, SN, i64, i64) CAST(S, SN, int, i32) CAST(S, SN, u8, u8) CAST(S, SN, Bool, bool)
CAST_FROM(float, f32)
CAST_FROM(double, f64)
CAST_FROM(f16, f16)
CAST_FROM(bf16, bf16)
CAST_FROM(i64, i64)
CAST_FROM(int, i32)
CAST_FROM(u8, u8)
CAST_FROM(Bool, bool)

// Copies and fills by element width: dtype-agnostic.
#define BYTES_KERNELS(T, W)                                                                       \
  extern "C" __global__ void copy_b##W(const T* src, Strides ss, T* dst, Strides sd, Shape shape, \
                                       i64 n) {                                                   \
    KILN_FOR(i, n) dst[strided_offset(i, shape, sd)] = src[strided_offset(i, shape, ss)];         \
  }                                                                                               \
  extern "C" __global__ void fill_b##W(T* dst, i64 n, T value) { KILN_FOR(i, n) dst[i] = value; }
BYTES_KERNELS(u8, 1)
BYTES_KERNELS(unsigned short, 2)
BYTES_KERNELS(unsigned, 4)
BYTES_KERNELS(unsigned long long, 8)
