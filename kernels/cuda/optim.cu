// Multi-tensor optimizer steps: one launch updates up to MT_TENSORS parameter tensors, each
// element read once (param, grad, state) and written once. Twin of src/cpu/optim.rs.
//
// Geometry (apex's multi_tensor_apply): the host splits every tensor into chunks of MT_CHUNK
// elements and passes, by value, the tensors' pointers, lengths and first chunk; a 256-thread
// block updates one chunk, finding its tensor by bisecting the chunk starts. Longer
// lists take one launch per MT_TENSORS tensors. Everything is f32, as the twin.

// (TensorList and chunk_of come from tensor_list.cuh.)

// ---- kernels --------------------------------------------------------------------------------

// torch.optim.SGD: d = g + wd·p; with momentum, buf = first ? d : m·buf + (1-dampening)·d and
// d = nesterov ? d + m·buf : buf; p -= lr·d. ptr = {param, grad, momentum buffer}.
extern "C" __global__ void sgd_f32(TensorList<3> l, float lr, float momentum, float dampening,
                                   float weight_decay, int nesterov, int first_step) {
  i64 lo, hi;
  const int t = chunk_of(l, lo, hi);
  float* p = (float*)l.ptr[t][0];
  const float* g = (const float*)l.ptr[t][1];
  float* buf = (float*)l.ptr[t][2];
  for (i64 i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    float pv = p[i];
    float d = g[i] + weight_decay * pv;
    if (momentum != 0.0f) {
      float b = first_step ? d : momentum * buf[i] + (1.0f - dampening) * d;
      buf[i] = b;
      d = nesterov ? d + momentum * b : b;
    }
    p[i] = pv - lr * d;
  }
}

// torch.optim.AdamW with the host's bias corrections: p *= decay; m, v updated;
// p -= step_size·m / (√(v/bc2) + eps). ptr = {param, grad, m, v}.
extern "C" __global__ void adamw_f32(TensorList<4> l, float b1, float b2, float eps,
                                     float step_size, float decay, float bc2) {
  i64 lo, hi;
  const int t = chunk_of(l, lo, hi);
  float* p = (float*)l.ptr[t][0];
  const float* g = (const float*)l.ptr[t][1];
  float* m = (float*)l.ptr[t][2];
  float* v = (float*)l.ptr[t][3];
  for (i64 i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    const float gv = g[i];
    const float mv = b1 * m[i] + (1.0f - b1) * gv;
    const float vv = b2 * v[i] + (1.0f - b2) * gv * gv;
    m[i] = mv;
    v[i] = vv;
    p[i] = p[i] * decay - step_size * mv / (sqrtf(vv / bc2) + eps);
  }
}
