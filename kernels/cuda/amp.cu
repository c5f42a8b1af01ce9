// Mixed-precision helpers over lists of f32 tensors, each one launch per 32 tensors: unscale all
// gradients by 1/scale in place while flagging any inf/NaN (the GradScaler step, which otherwise
// reads every gradient twice), and the model EMA update. Twin of src/cpu/amp.rs.
//
// Geometry: as optim.cu (tensor lists by value, a 256-thread block per MT_CHUNK elements).

// (TensorList and chunk_of come from tensor_list.cuh.)

// ---- kernels --------------------------------------------------------------------------------

// g *= inv_scale; *found_inf = 1 when any g was inf/NaN before scaling (every writer stores the
// same value, and a warp votes first so at most one store per warp). `inv_p`, when not null,
// holds the factor in device memory instead (a CUDA graph's loss scale, or a clip factor the
// device computed).
extern "C" __global__ void unscale_check_f32(TensorList<1> l, float inv_scale, const float* inv_p,
                                             float* found_inf) {
  i64 lo, hi;
  const int t = chunk_of(l, lo, hi);
  if (inv_p) inv_scale = *inv_p;
  float* g = (float*)l.ptr[t][0];
  bool bad = false;
  for (i64 i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    const float v = g[i];
    bad |= !isfinite(v);
    g[i] = v * inv_scale;
  }
  if (__any_sync(0xffffffffu, bad) && (threadIdx.x & 31) == 0) *found_inf = 1.0f;
}

// ema = decay·ema + (1 - decay)·model. ptr = {ema, model}.
extern "C" __global__ void ema_update_f32(TensorList<2> l, float decay) {
  i64 lo, hi;
  const int t = chunk_of(l, lo, hi);
  float* e = (float*)l.ptr[t][0];
  const float* m = (const float*)l.ptr[t][1];
  for (i64 i = lo + threadIdx.x; i < hi; i += blockDim.x) e[i] = decay * e[i] + (1.0f - decay) * m[i];
}
