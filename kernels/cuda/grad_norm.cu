// The squared L2 norm of a list of f32 tensors in one pass (clip_grad_norm_'s global norm): each
// block sums g² over its MT_CHUNK elements and writes one partial; the host adds the partials in
// f64, or, inside a CUDA graph, one thread does (clip_factor_f32) in the host's order. One launch per 32 tensors instead of one reduction per tensor and a norm of norms, and a
// deterministic result (no atomics). Twin of src/cpu/grad_norm.rs.
//
// Geometry: as optim.cu (tensor lists by value, a 256-thread block per MT_CHUNK elements).

// (TensorList and chunk_of come from tensor_list.cuh, block_sum from the prelude.)

// ---- kernels --------------------------------------------------------------------------------

// partial[blockIdx.x] = Σ g² over this block's chunk of its tensor.
extern "C" __global__ void sq_norm_partials_f32(TensorList<1> l, float* partial) {
  i64 lo, hi;
  const int t = chunk_of(l, lo, hi);
  const float* g = (const float*)l.ptr[t][0];
  float s = 0.0f;
  for (i64 i = lo + threadIdx.x; i < hi; i += blockDim.x) s = fmaf(g[i], g[i], s);
  s = block_sum(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// *factor = max_norm / (√(Σ partial) + eps) when that is below 1, else 1: clip_grad_norm_'s
// coefficient computed where a CUDA graph needs it, on the device. One thread adds the partials
// in f64 in index order, as the host does, so the factor has the same bits as the host's.
extern "C" __global__ void clip_factor_f32(const float* partial, int count, double max_norm,
                                           double eps, float* factor) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  double s = 0.0;
  for (int i = 0; i < count; ++i) s += (double)partial[i];
  const double coef = max_norm / (sqrt(s) + eps);
  *factor = coef < 1.0 ? (float)coef : 1.0f;
}
