// LayerNorm over the last dim of dense [rows, len] rows, forward and backward. Twin of
// src/cpu/layer_norm.rs.
//
// Geometry of the row kernels: as softmax_xent.cu (rows.cuh), 256-thread blocks with a warp per
// row below 1024 columns and a block per row above, rows grid-stride. The forward reads a row
// twice for μ and for the variance of x − μ (no E[x²] − μ² cancellation), then writes y; μ and
// rstd are kept in the accumulation type (f32 for half types). dγ and dβ are column sums: each
// block of layer_norm_bwd_params sums a band of rows for 32 columns with 32×8 threads and writes
// one partial per band; layer_norm_sum_bands adds the partials in band order, so the result does
// not depend on scheduling.

// T: the rows' dtype; P: γ, β and their gradients' (T itself, or f32 for f16/bf16 rows: autocast
// keeps LayerNorm's parameters in f32, and the rows need no cast pass).
template <typename T, typename P> struct Ln {
  typedef typename Acc<T>::t A;

  __device__ static void fwd(const T* x, const P* gamma, const P* beta, T* y, A* mean, A* rstd,
                             i64 rows, i64 len, double eps, bool warp) {
    RowGroup g = row_group(warp);
    for (i64 r = g.first; r < rows; r += g.step) {
      const T* xr = x + r * len;
      A s[1] = {A(0)};
      for (i64 i = g.rank; i < len; i += g.size) s[0] += to_acc(xr[i]);
      group_add<A, 1>(s, warp);
      A mu = s[0] / A(len);
      A q[1] = {A(0)};
      for (i64 i = g.rank; i < len; i += g.size) {
        A d = to_acc(xr[i]) - mu;
        q[0] += d * d;
      }
      group_add<A, 1>(q, warp);
      A rs = A(1) / sqrt(q[0] / A(len) + A(eps));
      if (g.rank == 0) mean[r] = mu, rstd[r] = rs;
      T* yr = y + r * len;
      for (i64 i = g.rank; i < len; i += g.size) {
        A v = (to_acc(xr[i]) - mu) * rs;
        if (gamma) v *= to_acc(gamma[i]);
        if (beta) v += to_acc(beta[i]);
        yr[i] = from_acc<T>(v);
      }
    }
  }

  // dx = rstd·(g − mean(g) − x̂·mean(g·x̂)), g = dy·γ, x̂ = (x − μ)·rstd.
  __device__ static void bwd_dx(const T* x, const T* dy, const P* gamma, const A* mean,
                                const A* rstd, T* dx, i64 rows, i64 len, bool warp) {
    RowGroup g = row_group(warp);
    for (i64 r = g.first; r < rows; r += g.step) {
      const T *xr = x + r * len, *dyr = dy + r * len;
      A mu = mean[r], rs = rstd[r];
      A s[2] = {A(0), A(0)};
      for (i64 i = g.rank; i < len; i += g.size) {
        A gv = to_acc(dyr[i]) * (gamma ? to_acc(gamma[i]) : A(1));
        s[0] += gv;
        s[1] += gv * (to_acc(xr[i]) - mu) * rs;
      }
      group_add<A, 2>(s, warp);
      A mean_g = s[0] / A(len), mean_gx = s[1] / A(len);
      T* dxr = dx + r * len;
      for (i64 i = g.rank; i < len; i += g.size) {
        A gv = to_acc(dyr[i]) * (gamma ? to_acc(gamma[i]) : A(1));
        A xh = (to_acc(xr[i]) - mu) * rs;
        dxr[i] = from_acc<T>(rs * (gv - mean_g - xh * mean_gx));
      }
    }
  }

  // Partial Σ dy·x̂ and Σ dy over the rows [blockIdx.y·band, +band) of 32 columns; 32×8 threads.
  __device__ static void bwd_params(const T* x, const T* dy, const A* mean, const A* rstd,
                                    A* part_g, A* part_b, i64 rows, i64 len, i64 band) {
    __shared__ A sg[8][33], sb[8][33];
    int tx = threadIdx.x, ty = threadIdx.y;
    i64 col = (i64)blockIdx.x * 32 + tx;
    i64 r0 = (i64)blockIdx.y * band;
    i64 r1 = r0 + band < rows ? r0 + band : rows;
    A pg = A(0), pb = A(0);
    if (col < len)
      for (i64 r = r0 + ty; r < r1; r += 8) {
        A d = to_acc(dy[r * len + col]);
        pg += d * (to_acc(x[r * len + col]) - mean[r]) * rstd[r];
        pb += d;
      }
    sg[ty][tx] = pg;
    sb[ty][tx] = pb;
    __syncthreads();
    if (ty == 0 && col < len) {
      for (int j = 1; j < 8; ++j) pg += sg[j][tx], pb += sb[j][tx];
      part_g[blockIdx.y * len + col] = pg;
      part_b[blockIdx.y * len + col] = pb;
    }
  }

  // dγ[c] = Σ_bands part_g[band, c] and dβ likewise, in band order, rounded to P once.
  __device__ static void sum_bands(const A* part_g, const A* part_b, P* dgamma, P* dbeta,
                                   i64 bands, i64 len) {
    KILN_FOR(c, len) {
      A sg = A(0), sb = A(0);
      for (i64 b = 0; b < bands; ++b) sg += part_g[b * len + c], sb += part_b[b * len + c];
      dgamma[c] = from_acc<P>(sg);
      dbeta[c] = from_acc<P>(sb);
    }
  }
};

// ---- dtypes ---------------------------------------------------------------------------------
// S names the rows' dtype; a second suffix names the parameters' where it differs (f16_f32).

#define LAYER_NORM_KERNELS(T, P, S)                                                               \
  extern "C" __global__ void layer_norm_fwd_##S(const T* x, const P* gamma, const P* beta, T* y, \
                                                Acc<T>::t* mean, Acc<T>::t* rstd, i64 rows,       \
                                                i64 len, double eps, int warp) {                  \
    Ln<T, P>::fwd(x, gamma, beta, y, mean, rstd, rows, len, eps, warp != 0);                      \
  }                                                                                               \
  extern "C" __global__ void layer_norm_bwd_dx_##S(const T* x, const T* dy, const P* gamma,      \
                                                   const Acc<T>::t* mean, const Acc<T>::t* rstd,  \
                                                   T* dx, i64 rows, i64 len, int warp) {          \
    Ln<T, P>::bwd_dx(x, dy, gamma, mean, rstd, dx, rows, len, warp != 0);                         \
  }                                                                                               \
  extern "C" __global__ void layer_norm_bwd_params_##S(                                           \
      const T* x, const T* dy, const Acc<T>::t* mean, const Acc<T>::t* rstd, Acc<T>::t* part_g,   \
      Acc<T>::t* part_b, i64 rows, i64 len, i64 band) {                                           \
    Ln<T, P>::bwd_params(x, dy, mean, rstd, part_g, part_b, rows, len, band);                     \
  }                                                                                               \
  extern "C" __global__ void layer_norm_sum_bands_##S(const Acc<T>::t* part_g,                   \
                                                      const Acc<T>::t* part_b, P* dgamma,        \
                                                      P* dbeta, i64 bands, i64 len) {             \
    Ln<T, P>::sum_bands(part_g, part_b, dgamma, dbeta, bands, len);                               \
  }
LAYER_NORM_KERNELS(float, float, f32)
LAYER_NORM_KERNELS(double, double, f64)
LAYER_NORM_KERNELS(f16, f16, f16)
LAYER_NORM_KERNELS(bf16, bf16, bf16)
LAYER_NORM_KERNELS(f16, float, f16_f32)
LAYER_NORM_KERNELS(bf16, float, bf16_f32)
