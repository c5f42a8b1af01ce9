// Tensor lists by value for multi-tensor kernels (optim.cu, amp.cu), after apex's
// multi_tensor_apply: the host splits every tensor into chunks of MT_CHUNK elements and passes the
// tensors' pointers, lengths and first chunk; a block serves one chunk.

#define MT_TENSORS 32
#define MT_CHUNK 4096

// P pointers per tensor (param, grad, state...); start[t] = the first block of tensor t.
template <int P> struct TensorList {
  unsigned long long ptr[MT_TENSORS][P];
  i64 len[MT_TENSORS];
  int start[MT_TENSORS + 1];
  int count;
};

// The tensor this block serves and its [lo, hi) element range.
template <int P>
__device__ __forceinline__ int chunk_of(const TensorList<P>& l, i64& lo, i64& hi) {
  // The last tensor starting at or before this block (empty tensors share a start), by bisection.
  int t = 0, last = l.count - 1;
  while (t < last) {
    const int mid = (t + last + 1) >> 1;
    if (l.start[mid] <= (int)blockIdx.x) t = mid;
    else last = mid - 1;
  }
  lo = (i64)(blockIdx.x - l.start[t]) * MT_CHUNK;
  hi = min(l.len[t], lo + MT_CHUNK);
  return t;
}
