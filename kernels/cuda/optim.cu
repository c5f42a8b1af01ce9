// Multi-tensor optimizer rules: one launch updates up to MT_TENSORS parameter tensors, each
// element read once (param, grad, state) and written once. Twin of src/cpu/optim.rs.
//
// Geometry (apex's multi_tensor_apply): the host splits every tensor into chunks of MT_CHUNK
// elements and passes, by value, the tensors' pointers, lengths and first chunk; a 256-thread
// block updates one chunk, finding its tensor by bisecting the chunk starts. Longer lists take
// one launch per MT_TENSORS tensors. Parameters and gradients are f32, f16 or bf16 (one kernel
// each, computing in f32 and rounding once on store); state and directions are f32, as the twin.
//
// One kernel serves every optimizer family: `rule_direction` switches on the rule number (uniform
// across the launch, so no divergence) and returns the direction u; the epilogue writes
// p = p·decay − lr·u, or (p − lr·u)·decay, or u itself to `dir` for the host's two-pass parts
// (cautious masks, trust ratios). Fusing the epilogue keeps one pass over the parameter.

// (TensorList and chunk_of come from tensor_list.cuh.)

#define RULE_SCALARS 12
#define MAX_STATES 4

// The twin's RuleStep (same field order and types).
struct RuleStep {
  int rule;
  float k[RULE_SCALARS];
  float l2, decay, lr;
  int decay_after;
};

// ---- rules ----------------------------------------------------------------------------------

__device__ __forceinline__ float lerpf(float a, float b, float w) { return a + w * (b - a); }

// The rules, numbered as the twin's `Rule`; k's meaning per rule is documented there.
__device__ __forceinline__ float rule_direction(int rule, const float* k, float p, float g,
                                                float* s) {
  switch (rule) {
    case 0: {  // SGD, branch-free
      s[0] = k[0] * s[0] + k[1] * g;
      return k[2] * g + k[3] * s[0];
    }
    case 1: {  // Adam family
      s[0] = lerpf(s[0], g, k[0]);
      s[1] = k[1] * s[1] + k[2] * g * g;
      return (k[4] * lerpf(s[0], g, k[3]) + k[5] * g) / (k[6] * sqrtf(s[1]) + k[7]);
    }
    case 2: {  // Adamax
      s[0] = lerpf(s[0], g, k[0]);
      s[1] = fmaxf(k[1] * s[1], fabsf(g) + k[2]);
      return k[3] * s[0] / s[1];
    }
    case 3: {  // RMSprop
      s[0] += k[0] * (g * g - s[0]);
      const float step = k[4] * g / (sqrtf(s[0] + k[1]) + k[2]);
      if (k[3] > 0.0f) {
        s[1] = k[3] * s[1] + step;
        return s[1];
      }
      return step;
    }
    case 4: {  // Adagrad
      s[0] += g * g;
      return g / (sqrtf(s[0]) + k[0]);
    }
    case 5: {  // Adadelta
      s[0] = k[0] * s[0] + k[1] * g * g;
      const float delta = sqrtf(s[1] + k[2]) / sqrtf(s[0] + k[2]) * g;
      s[1] = k[0] * s[1] + k[1] * delta * delta;
      return delta;
    }
    case 6: {  // Lion
      const float c = lerpf(s[0], g, k[0]);
      s[0] = lerpf(s[0], g, k[1]);
      return c > 0.0f ? 1.0f : (c < 0.0f ? -1.0f : 0.0f);
    }
    case 7: {  // LaProp
      s[1] = k[1] * s[1] + k[2] * g * g;
      s[0] = k[0] * s[0] + k[5] * (g / (sqrtf(s[1] / k[3]) + k[4]));
      return s[0];
    }
    case 8: {  // ADOPT
      if (k[5] != 0.0f) {
        s[1] += g * g;
        return 0.0f;
      }
      const float normed = fminf(fmaxf(g / fmaxf(sqrtf(s[1]), k[3]), -k[4]), k[4]);
      s[0] = lerpf(s[0], normed, k[0]);
      s[1] = k[1] * s[1] + k[2] * g * g;
      return s[0];
    }
    case 9: {  // AdaBelief
      s[0] = lerpf(s[0], g, k[0]);
      const float r = g - s[0];
      s[1] = k[1] * s[1] + k[2] * r * r + k[3];
      return k[4] * s[0] / (k[5] * sqrtf(s[1]) + k[6]);
    }
    case 10: {  // Adan
      const float d = k[9] != 0.0f ? 0.0f : s[3] + g;
      s[0] = lerpf(s[0], g, k[0]);
      s[2] = k[1] * s[2] + k[2] * d;
      const float nd = k[1] * d + g;
      s[1] = k[3] * s[1] + k[4] * nd * nd;
      s[3] = -g;
      return (k[5] * s[0] + k[6] * s[2]) / (k[7] * sqrtf(s[1]) + k[8]);
    }
    case 11: {  // MADGRAD (p is the decayed parameter)
      s[0] += k[0] * g * g;
      s[1] += k[0] * g;
      const float z = s[2] - s[1] / (powf(s[0], 1.0f / 3.0f) + k[1]);
      return k[2] * (p - z);
    }
    case 12: {  // AdEMAMix
      s[0] = lerpf(s[0], g, k[0]);
      s[1] = k[1] * s[1] + k[2] * g * g;
      s[2] = lerpf(s[2], g, k[3]);
      return (k[4] * s[0] + k[5] * s[2]) / (k[6] * sqrtf(s[1]) + k[7]);
    }
  }
  return 0.0f;
}

// ---- kernel ---------------------------------------------------------------------------------

// ptr = {param, grad, dir (null: apply), state 0..3 (null past the rule's count)}. Param and grad
// are T (f32, f16, bf16), read into f32 and rounded once on store; state and dir are f32.
template <typename T>
__device__ __forceinline__ void rule_body(const TensorList<3 + MAX_STATES>& l, const RuleStep& h,
                                          int states) {
  i64 lo, hi;
  const int t = chunk_of(l, lo, hi);
  T* p = (T*)l.ptr[t][0];
  const T* g = (const T*)l.ptr[t][1];
  float* dir = (float*)l.ptr[t][2];
  for (i64 i = lo + threadIdx.x; i < hi; i += blockDim.x) {
    float s[MAX_STATES] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int j = 0; j < states; ++j) s[j] = ((float*)l.ptr[t][3 + j])[i];
    const float pv = to_acc(p[i]);
    const float u = rule_direction(h.rule, h.k, pv * h.decay, to_acc(g[i]) + h.l2 * pv, s);
    for (int j = 0; j < states; ++j) ((float*)l.ptr[t][3 + j])[i] = s[j];
    if (dir) dir[i] = u;
    else if (h.decay_after) p[i] = from_acc<T>((pv - h.lr * u) * h.decay);
    else p[i] = from_acc<T>(pv * h.decay - h.lr * u);
  }
}

// ---- dtypes ---------------------------------------------------------------------------------

// `hp`, when not null, holds the step's scalars in device memory and replaces `h` (a CUDA graph
// replays the launch with scalars the host rewrites before each replay: lr, bias corrections);
// `skip`, when not null and non-zero, leaves everything untouched (the device found an overflow
// or a non-finite loss, and the step is skipped as the host would skip it).
#define RULE_KERNEL(T, NAME) \
  extern "C" __global__ void NAME(TensorList<3 + MAX_STATES> l, RuleStep h, const RuleStep* hp, \
                                  const float* skip, int states) { \
    if (skip && *skip != 0.0f) return; \
    if (hp) h = *hp; \
    rule_body<T>(l, h, states); \
  }
RULE_KERNEL(float, rule_f32)
RULE_KERNEL(f16, rule_f16)
RULE_KERNEL(bf16, rule_bf16)
