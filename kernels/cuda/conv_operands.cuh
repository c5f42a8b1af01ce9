#line 1 "conv_operands.cuh"
// A convolution's geometry and its implicit-GEMM operands (loaders and stores, operands.cuh),
// shared by the SIMT kernels of conv.cu and the tensor-core kernels of conv_tc.cu. The im2col
// matrices are never stored: their loaders gather straight from the feature maps.
//
// Index arithmetic divides by runtime sizes in every gather, so divisions use precomputed
// multiply-shift reciprocals (Div), exact for numerators below 2^31.

// ---- geometry ----------------------------------------------------------------------------------

// x / d for 0 <= x < 2^31 as a high multiply and a shift (mul and shr from conv.rs's Div::new).
struct Div {
  int d;
  unsigned mul, shr;
};
__device__ __forceinline__ int divq(int x, const Div& v) {
  return v.d == 1 ? x : (int)(__umulhi((unsigned)x, v.mul) >> v.shr);
}

// Sizes of one convolution (matches Geom in src/cuda/conv.rs).
struct ConvGeom {
  int n, c, h, w, oc, kh, kw, oh, ow;
  int sh, sw, ph, pw, dh, dw;
  int groups, cg, ocg;                            // cg = c / groups, ocg = oc / groups
  Div d_cg, d_ocg, d_kw, d_khw, d_ow, d_p, d_w, d_hw, d_sh, d_sw;  // p = oh·ow, hw = h·w
};

// ---- operand loaders ---------------------------------------------------------------------------

// Forward im2col X̂: rows (NHWC) or columns (NCHW) are output pixels q; k = (c, r, s) for NCHW,
// (r, s, c) for NHWC. With C/g a multiple of 8, 8 consecutive NHWC k are 8 adjacent channels of
// one tap.
template <typename T, bool CL> struct Im2col {
  const T* p;  // x
  ConvGeom g;
  int grp;
  struct Slot {
    i64 base;
    int ih0, iw0;
    bool ok;
  };
  __device__ bool kfast() const { return CL; }
  __device__ Slot slot(int q) const {
    Slot s;
    int n = divq(q, g.d_p), pix = q - n * g.d_p.d;
    int oh = divq(pix, g.d_ow), ow = pix - oh * g.ow;
    s.ok = n < g.n;
    s.ih0 = oh * g.sh - g.ph;
    s.iw0 = ow * g.sw - g.pw;
    s.base = CL ? (i64)n * g.h * g.w * g.c + grp * g.cg : ((i64)n * g.c + grp * g.cg) * g.h * g.w;
    return s;
  }
  __device__ i64 at(const Slot& s, int k) const {
    int c, rs;
    if (CL) {
      rs = divq(k, g.d_cg);
      c = k - rs * g.cg;
    } else {
      c = divq(k, g.d_khw);
      rs = k - c * g.d_khw.d;
    }
    int r = divq(rs, g.d_kw), t = rs - r * g.kw;
    int ih = s.ih0 + r * g.dh, iw = s.iw0 + t * g.dw;
    if ((unsigned)ih >= (unsigned)g.h || (unsigned)iw >= (unsigned)g.w) return -1;
    return CL ? s.base + ((i64)ih * g.w + iw) * g.c + c : s.base + ((i64)c * g.h + ih) * g.w + iw;
  }
  // The channel of the group element (slot's pixel, k) reads.
  __device__ int chan(const Slot&, int k) const {
    return CL ? k - divq(k, g.d_cg) * g.cg : divq(k, g.d_khw);
  }
};

// Data-gradient gather dŶ: rows (NHWC) or columns (NCHW) are input pixels q'; k = (o, r, s) for
// NCHW, (r, s, o) for NHWC; the element is dy at the output pixel whose window puts tap (r, s)
// on q', or 0 when no output does.
template <typename T, bool CL> struct Col2imDy {
  const T* p;  // dy
  ConvGeom g;
  int grp;
  struct Slot {
    i64 base;
    int th0, tw0;
    bool ok;
  };
  __device__ bool kfast() const { return CL; }
  __device__ Slot slot(int q) const {
    Slot s;
    int n = divq(q, g.d_hw), t = q - n * g.d_hw.d;
    int ih = divq(t, g.d_w), iw = t - ih * g.w;
    s.ok = n < g.n;
    s.th0 = ih + g.ph;
    s.tw0 = iw + g.pw;
    s.base = CL ? (i64)n * g.oh * g.ow * g.oc + grp * g.ocg
                : ((i64)n * g.oc + grp * g.ocg) * g.oh * g.ow;
    return s;
  }
  __device__ i64 at(const Slot& s, int k) const {
    int o, rs;
    if (CL) {
      rs = divq(k, g.d_ocg);
      o = k - rs * g.ocg;
    } else {
      o = divq(k, g.d_khw);
      rs = k - o * g.d_khw.d;
    }
    int r = divq(rs, g.d_kw), t = rs - r * g.kw;
    int th = s.th0 - r * g.dh, tw = s.tw0 - t * g.dw;
    if (th < 0 || tw < 0) return -1;
    int oh = divq(th, g.d_sh), ow = divq(tw, g.d_sw);
    if (oh * g.sh != th || ow * g.sw != tw || oh >= g.oh || ow >= g.ow) return -1;
    return CL ? s.base + ((i64)oh * g.ow + ow) * g.oc + o : s.base + ((i64)o * g.oh + oh) * g.ow + ow;
  }
};

// The group's weights seen as [c, (o, r, s)] (NCHW) or [(r, s, o), c] (NHWC, OHWI storage);
// `p` points at the group's first filter.
template <typename T, bool CL> struct WeightT {
  const T* p;  // w
  ConvGeom g;
  struct Slot {
    int off;
    bool ok;
  };
  __device__ bool kfast() const { return !CL && g.d_khw.d > 1; }
  __device__ Slot slot(int c) const { return {CL ? c : c * g.d_khw.d, c < g.cg}; }
  __device__ i64 at(const Slot& s, int k) const {
    const i64 kc = (i64)g.cg * g.d_khw.d;
    if (CL) {
      int rs = divq(k, g.d_ocg), o = k - rs * g.ocg;
      return s.off + o * kc + rs * g.cg;
    }
    int o = divq(k, g.d_khw), rs = k - o * g.d_khw.d;
    return s.off + o * kc + rs;
  }
};

// dy of NCHW as [o, q]: the filter gradient's left operand.
template <typename T> struct DyRows {
  const T* p;  // dy
  ConvGeom g;
  int grp;
  struct Slot {
    i64 off;
    bool ok;
  };
  __device__ bool kfast() const { return true; }
  __device__ Slot slot(int o) const { return {(i64)(grp * g.ocg + o) * g.d_p.d, o < g.ocg}; }
  __device__ i64 at(const Slot& s, int q) const {
    int n = divq(q, g.d_p), pix = q - n * g.d_p.d;
    return s.off + (i64)n * g.oc * g.d_p.d + pix;
  }
};

// X̂ transposed, [q, (c, r, s)] or [q, (r, s, c)]: the filter gradient's right operand, rows
// (c, r, s) or (r, s, c).
template <typename T, bool CL> struct Im2colT {
  const T* p;  // x
  ConvGeom g;
  int grp;
  struct Slot {
    int ch, roff, soff;
    bool ok;
  };
  __device__ bool kfast() const { return !CL; }
  __device__ Slot slot(int kk) const {
    int c, rs;
    if (CL) {
      rs = divq(kk, g.d_cg);
      c = kk - rs * g.cg;
    } else {
      c = divq(kk, g.d_khw);
      rs = kk - c * g.d_khw.d;
    }
    int r = divq(rs, g.d_kw), t = rs - r * g.kw;
    return {grp * g.cg + c, r * g.dh - g.ph, t * g.dw - g.pw, kk < g.cg * g.d_khw.d};
  }
  __device__ i64 at(const Slot& s, int q) const {
    int n = divq(q, g.d_p), pix = q - n * g.d_p.d;
    int oh = divq(pix, g.d_ow), ow = pix - oh * g.ow;
    int ih = oh * g.sh + s.roff, iw = ow * g.sw + s.soff;
    if ((unsigned)ih >= (unsigned)g.h || (unsigned)iw >= (unsigned)g.w) return -1;
    return CL ? (((i64)n * g.h + ih) * g.w + iw) * g.c + s.ch
              : ((i64)n * g.c + s.ch) * g.d_hw.d + ih * g.w + iw;
  }
  // The channel of the group element (slot's row, q) reads.
  __device__ int chan(const Slot& s, int) const { return s.ch - grp * g.cg; }
};

// ---- stores ------------------------------------------------------------------------------------

// Writes GEMM element (m, n) of an NCHW map: rows are channels (planes of `plane` pixels),
// columns are (image, pixel) pairs, images `img` elements apart.
template <typename S> struct StorePlanes {
  typedef S Elem;
  S* p;
  Div plane;
  i64 img;
  __device__ i64 row(int m) const { return (i64)m * plane.d; }
  __device__ i64 col(int n) const {
    int i = divq(n, plane);
    return i * img + (n - i * plane.d);
  }
};
