//! conv.cu and conv_tc.cu (through their launchers) against a naive direct convolution in f64:
//! the forward, and the data and filter gradients as that convolution's adjoints, NCHW and NHWC,
//! every kernel family (direct, 64- and 128-tile implicit GEMM, tensor-core implicit GEMM with
//! operands copied or gathered, split filter reductions), stride, padding, dilation, groups up to
//! depthwise, and every dtype. Inputs are rounded to the dtype first, so the
//! reference multiplies exactly what the kernel reads; outputs start as NaN, so every element
//! must be written.

mod common;
use common::elem::{values, Elem, PerDtype};
use common::gpu;
use half::{bf16, f16};
use kiln_kernels::cuda::conv::{
    conv2d, conv2d_planned, tc_copies, ConvAlgo, ConvDims, ConvPass, ConvPlan,
};
use kiln_kernels::cuda::gemm::{sm_count, Tile};
use kiln_kernels::cuda::gemm_tc::{choose_tile, forced_tile};
use kiln_kernels::cuda::Kernels;

/// Per dtype, the tolerance |got - want| <= TOL·(1 + |want|). Halves accumulate in f32 and round
/// once on output (2^-11 for f16, 2^-8 for bf16).
const TOL: PerDtype<f64> = PerDtype {
    f32: 2e-5,
    f64: 1e-12,
    f16: 1.5e-3,
    bf16: 8e-3,
};

/// A convolution: (N, C, H, W) -> OC with kernel, stride, padding, dilation, groups.
#[derive(Debug, Clone, Copy)]
struct Conv {
    x: [usize; 4],
    oc: usize,
    k: [usize; 2],
    stride: [usize; 2],
    pad: [usize; 2],
    dil: [usize; 2],
    groups: usize,
}

impl Conv {
    fn dims(&self, channels_last: bool) -> ConvDims {
        let [n, c, h, w] = self.x;
        let out = |a: usize, len: usize| {
            (len + 2 * self.pad[a] - self.dil[a] * (self.k[a] - 1) - 1) / self.stride[a] + 1
        };
        ConvDims {
            n,
            c,
            h,
            w,
            oc: self.oc,
            kh: self.k[0],
            kw: self.k[1],
            oh: out(0, h),
            ow: out(1, w),
            stride: self.stride,
            padding: self.pad,
            dilation: self.dil,
            groups: self.groups,
            channels_last,
        }
    }
}

const fn conv(x: [usize; 4], oc: usize, k: usize, s: usize, p: usize, d: usize, g: usize) -> Conv {
    Conv {
        x,
        oc,
        k: [k, k],
        stride: [s, s],
        pad: [p, p],
        dil: [d, d],
        groups: g,
    }
}

/// Odd shapes covering each feature; the comments say which kernels the default plan picks.
const SHAPES: [Conv; 8] = [
    // 3x3 same: GEMM forward/filter, direct data gradient (3 input channels).
    conv([2, 3, 9, 9], 16, 3, 1, 1, 1, 1),
    // strided 3x3 over a non-square map, 8 -> 20 channels.
    conv([2, 8, 11, 10], 20, 3, 2, 1, 1, 1),
    // a ResNet stem in miniature: 7x7, stride 2, padding 3.
    conv([2, 3, 9, 9], 16, 7, 2, 3, 1, 1),
    // dilation 2 with padding 2.
    conv([2, 4, 11, 11], 17, 3, 1, 2, 2, 1),
    // pointwise, two narrow groups.
    conv([2, 6, 7, 7], 18, 1, 1, 0, 1, 2),
    // two groups of 16: GEMM for all three passes.
    conv([2, 32, 5, 6], 32, 3, 1, 1, 1, 2),
    // depthwise 3x3 and depthwise with a channel multiplier of 2, stride 2.
    conv([2, 8, 9, 9], 8, 3, 1, 1, 1, 8),
    conv([2, 5, 10, 9], 10, 3, 2, 1, 1, 5),
];

/// The logical (NCHW / OIHW) sizes of the pass's inputs and output.
fn sizes(d: &ConvDims, pass: ConvPass) -> [[usize; 4]; 3] {
    let x = [d.n, d.c, d.h, d.w];
    let w = [d.oc, d.c / d.groups, d.kh, d.kw];
    let y = [d.n, d.oc, d.oh, d.ow];
    match pass {
        ConvPass::Fwd => [x, w, y],
        ConvPass::BwdData => [y, w, x],
        ConvPass::BwdFilter => [x, y, w],
    }
}

/// Calls `f(y, x, w)` with the logical flat indices of every product y += x·w of the
/// convolution (seven nested loops).
fn for_each_product(d: &ConvDims, mut f: impl FnMut(usize, usize, usize)) {
    let (cg, ocg) = (d.c / d.groups, d.oc / d.groups);
    for n in 0..d.n {
        for o in 0..d.oc {
            let grp = o / ocg;
            for oh in 0..d.oh {
                for ow in 0..d.ow {
                    let yi = ((n * d.oc + o) * d.oh + oh) * d.ow + ow;
                    for c in 0..cg {
                        for r in 0..d.kh {
                            let ih = (oh * d.stride[0] + r * d.dilation[0]) as isize
                                - d.padding[0] as isize;
                            if ih < 0 || ih >= d.h as isize {
                                continue;
                            }
                            for s in 0..d.kw {
                                let iw = (ow * d.stride[1] + s * d.dilation[1]) as isize
                                    - d.padding[1] as isize;
                                if iw < 0 || iw >= d.w as isize {
                                    continue;
                                }
                                let ci = grp * cg + c;
                                let xi = ((n * d.c + ci) * d.h + ih as usize) * d.w + iw as usize;
                                let wi = ((o * cg + c) * d.kh + r) * d.kw + s;
                                f(yi, xi, wi);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The pass's output from its (logical) inputs: the convolution or one of its adjoints.
fn reference(d: &ConvDims, pass: ConvPass, a: &[f64], b: &[f64]) -> Vec<f64> {
    let len: usize = sizes(d, pass)[2].iter().product();
    let mut out = vec![0.0; len];
    for_each_product(d, |y, x, w| match pass {
        ConvPass::Fwd => out[y] += a[x] * b[w],
        ConvPass::BwdData => out[x] += a[y] * b[w],
        ConvPass::BwdFilter => out[w] += a[x] * b[y],
    });
    out
}

/// Where each logical [A, B, C, D] element lives: itself, or at [A, C, D, B] when channels-last
/// (NHWC for activations, OHWI for weights).
fn placement([a, b, c, e]: [usize; 4], channels_last: bool) -> Vec<usize> {
    let mut p = Vec::with_capacity(a * b * c * e);
    for i in 0..a {
        for j in 0..b {
            for k in 0..c {
                for l in 0..e {
                    p.push(if channels_last {
                        ((i * c + k) * e + l) * b + j
                    } else {
                        ((i * b + j) * c + k) * e + l
                    });
                }
            }
        }
    }
    p
}

/// Runs `pass` of `d` in dtype T with `plan` (or the launcher's own) and compares every output.
fn check<T: Elem>(
    g: &common::Gpu,
    k: &Kernels,
    d: &ConvDims,
    pass: ConvPass,
    plan: Option<ConvPlan>,
) {
    let [sa, sb, so] = sizes(d, pass);
    let cl = d.channels_last;
    let rounded = |len: usize, seed| -> Vec<f64> {
        values(len, seed)
            .into_iter()
            .map(|v| T::enc(v).dec())
            .collect()
    };
    let a = rounded(sa.iter().product(), 1);
    let b = rounded(sb.iter().product(), 2);
    let want = reference(d, pass, &a, &b);
    let upload = |v: &[f64], shape| {
        let mut phys = vec![T::default(); v.len()];
        for (&p, &x) in placement(shape, cl).iter().zip(v) {
            phys[p] = T::enc(x);
        }
        g.upload(&phys)
    };
    let (da, db) = (upload(&a, sa), upload(&b, sb));
    let dout = g.upload(&vec![T::enc(f64::NAN); want.len()]);
    let (pa, pb, po) = (g.ptr(&da), g.ptr(&db), g.ptr(&dout));
    let what = format!("{} {pass:?} {plan:?} {d:?}", T::TY);
    match plan {
        Some(p) => conv2d_planned(k, T::TY, d, (pass, &p), (pa, pb, po)),
        None => conv2d(k, T::TY, d, pass, (pa, pb, po)),
    }
    .unwrap_or_else(|e| panic!("{what}: {e}"));
    let got = g.download(&dout);
    for (i, (&p, &w)) in placement(so, cl).iter().zip(&want).enumerate() {
        let v = got[p].dec();
        assert!(
            (v - w).abs() <= T::of(&TOL) * (1.0 + w.abs()),
            "{what}: logical element {i} = {v}, want {w}"
        );
    }
}

const PASSES: [ConvPass; 3] = [ConvPass::Fwd, ConvPass::BwdData, ConvPass::BwdFilter];

/// Direct and 64-tile GEMM kernels; the filter gradient also split in three (the default plans
/// cover unsplit direct filter gradients).
fn plans(pass: ConvPass) -> Vec<ConvPlan> {
    let plan = |algo, splits| ConvPlan { algo, splits };
    let mut v = vec![plan(ConvAlgo::Gemm(Tile::T64), 1)];
    if pass == ConvPass::BwdFilter {
        v.push(plan(ConvAlgo::Gemm(Tile::T64), 3));
        v.push(plan(ConvAlgo::Direct, 3));
    } else {
        v.push(plan(ConvAlgo::Direct, 1));
    }
    v
}

fn every_kernel_f32(channels_last: bool) {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    for s in SHAPES {
        let d = s.dims(channels_last);
        for pass in PASSES {
            check::<f32>(&g, &k, &d, pass, None);
            let default = d.plan("f32", pass, sm_count(&k), false);
            for p in plans(pass).into_iter().filter(|&p| p != default) {
                check::<f32>(&g, &k, &d, pass, Some(p));
            }
        }
    }
}

#[test]
fn conv_f32_nchw_every_pass_and_kernel_matches_naive() {
    every_kernel_f32(false);
}

#[test]
fn conv_f32_nhwc_every_pass_and_kernel_matches_naive() {
    every_kernel_f32(true);
}

#[test]
fn conv_128_tiles_match_naive() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let plan = ConvPlan {
        algo: ConvAlgo::Gemm(Tile::T128),
        splits: 1,
    };
    for s in [SHAPES[1], SHAPES[5]] {
        for cl in [false, true] {
            let d = s.dims(cl);
            for pass in PASSES {
                check::<f32>(&g, &k, &d, pass, Some(plan));
            }
            check::<bf16>(&g, &k, &d, ConvPass::Fwd, Some(plan));
        }
    }
}

#[test]
fn conv_f64_runs_direct_kernels() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    for s in [SHAPES[1], SHAPES[3], SHAPES[7]] {
        for cl in [false, true] {
            for pass in PASSES {
                check::<f64>(&g, &k, &s.dims(cl), pass, None);
            }
        }
    }
}

#[test]
fn conv_half_inputs_accumulate_in_f32() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    for s in [SHAPES[0], SHAPES[5], SHAPES[6]] {
        for cl in [false, true] {
            let d = s.dims(cl);
            for pass in PASSES {
                // The default plans (tensor cores where wide, on sm_80+) and the SIMT ones.
                let simt = d.plan("f16", pass, sm_count(&k), false);
                for plan in [None, Some(simt)] {
                    check::<f16>(&g, &k, &d, pass, plan);
                    check::<bf16>(&g, &k, &d, pass, plan);
                }
            }
        }
    }
}

#[test]
fn conv_plans_direct_for_narrow_groups_and_splits_small_filter_grids() {
    let depthwise = SHAPES[6].dims(false);
    assert_eq!(
        depthwise.plan("f32", ConvPass::Fwd, 132, true).algo,
        ConvAlgo::Direct
    );
    let wide = conv([128, 256, 14, 14], 256, 3, 1, 1, 1, 1).dims(true);
    assert_eq!(
        wide.plan("f32", ConvPass::Fwd, 132, true).algo,
        ConvAlgo::Gemm(Tile::T128)
    );
    // KILN_TC_TILE (the suites also run with 64 and 128 forced) overrides the choice.
    let auto = |t: Tile| forced_tile().unwrap().unwrap_or(t);
    assert_eq!(
        wide.plan("f16", ConvPass::Fwd, 132, true).algo,
        ConvAlgo::TensorCore(auto(Tile::T128))
    );
    // 128×128 tiles where both sides have 128 and they fill the multiprocessors, else 64×64.
    assert_eq!(choose_tile(25088, 256, 1, 132), auto(Tile::T128));
    assert_eq!(
        choose_tile(3136, 512, 1, 132),
        auto(Tile::T64),
        "100 tiles < 132"
    );
    assert_eq!(choose_tile(3136, 512, 2, 132), auto(Tile::T128));
    assert_eq!(
        choose_tile(100_000, 64, 1, 132),
        auto(Tile::T64),
        "64 columns"
    );
    // The filter gradient's slices fill the GPU: 64·576 weights and a 25088-pixel reduction.
    let filter = conv([32, 64, 28, 28], 512, 3, 1, 1, 1, 1).dims(true);
    let plan = filter.plan("f16", ConvPass::BwdFilter, 132, true);
    assert_eq!(
        plan.algo,
        ConvAlgo::TensorCore(auto(Tile::T128)),
        "{plan:?}"
    );
    assert_eq!(
        wide.plan("f16", ConvPass::Fwd, 132, false).algo,
        ConvAlgo::Gemm(Tile::T128)
    );
    assert_eq!(
        wide.plan("f64", ConvPass::Fwd, 132, true).algo,
        ConvAlgo::Direct
    );
    for tc in [false, true] {
        let filter = wide.plan("bf16", ConvPass::BwdFilter, 132, tc);
        assert!(filter.splits > 1, "{filter:?}");
    }
    assert_eq!(wide.plan("f32", ConvPass::BwdData, 132, false).splits, 1);
}

/// The tensor-core implicit GEMM in `tile`, the filter gradient's reduction in `splits` slices.
fn tensor_cores(tile: Tile, splits: usize) -> ConvPlan {
    ConvPlan {
        algo: ConvAlgo::TensorCore(tile),
        splits,
    }
}

/// Every shape (narrow ones too, which default plans send to direct kernels) and pass on tensor
/// cores in both tiles, f16 and bf16, both layouts, the filter gradient also in three slices;
/// plus shapes whose NHWC operands all copy in 16-byte chunks (16 and 32 channels a group, a
/// 9-slice reduction) or only some do (20 output channels).
#[test]
fn conv_tensor_cores_match_naive() {
    let Some(g) = gpu() else { return };
    let Some(k) = g.tensor_core_kernels("convolution") else {
        return;
    };
    let wide = [
        conv([2, 16, 9, 7], 24, 3, 2, 1, 1, 1),
        conv([1, 32, 6, 5], 16, 3, 1, 1, 1, 1),
    ];
    for tile in [Tile::T64, Tile::T128] {
        let plan = |splits| tensor_cores(tile, splits);
        for (i, s) in SHAPES.iter().chain(&wide).enumerate() {
            for cl in [false, true] {
                let d = s.dims(cl);
                for pass in PASSES {
                    // The half types alternate over the shapes and tiles to keep the emulator's
                    // time down.
                    if (i + tile.edge() / 64) % 2 == 0 {
                        check::<f16>(&g, &k, &d, pass, Some(plan(1)));
                    } else {
                        check::<bf16>(&g, &k, &d, pass, Some(plan(1)));
                    }
                }
                check::<f16>(&g, &k, &d, ConvPass::BwdFilter, Some(plan(3)));
            }
        }
    }
    // Which operands copy (device buffers are 256-byte aligned): NHWC with channel counts
    // multiple of 8 all do; 20 output channels a group keep dy gathered; NCHW pixels never copy.
    let (p, q) = (0x1000, 0x2000);
    let all = wide[0].dims(true);
    for pass in PASSES {
        assert_eq!(tc_copies(&all, pass, p, q), [true, true], "{pass:?}");
        // The first input (x, dy, x) one element off: the operand it feeds gathers.
        let odd = tc_copies(&all, pass, p + 2, q);
        let want = if pass == ConvPass::BwdFilter {
            [true, false]
        } else {
            [false, true]
        };
        assert_eq!(odd, want, "{pass:?} odd start");
    }
    let mixed = SHAPES[1].dims(true);
    assert_eq!(tc_copies(&mixed, ConvPass::Fwd, p, q), [true, true]);
    assert_eq!(tc_copies(&mixed, ConvPass::BwdData, p, q), [false, true]);
    assert_eq!(tc_copies(&mixed, ConvPass::BwdFilter, p, q), [false, true]);
    let nchw = wide[0].dims(false);
    assert_eq!(tc_copies(&nchw, ConvPass::Fwd, p, q), [true, false]);
    assert_eq!(tc_copies(&nchw, ConvPass::BwdData, p, q), [false, false]);
}

/// Shapes spanning several 128×128 tiles with partial last ones on every GEMM side (180 and 144
/// pixels, 136 and 130 channels), 1×1 and strided 3×3, two groups of 72, every pass on both
/// tensor-core tiles, the filter gradient also in four slices.
#[test]
fn conv_tensor_core_tiles_match_naive_across_partial_tiles() {
    let Some(g) = gpu() else { return };
    let Some(k) = g.tensor_core_kernels("convolution") else {
        return;
    };
    let shapes = [
        conv([2, 24, 10, 9], 136, 1, 1, 0, 1, 1),
        conv([2, 16, 17, 15], 130, 3, 2, 1, 1, 1),
        conv([1, 144, 9, 16], 144, 1, 1, 0, 1, 2),
    ];
    for tile in [Tile::T64, Tile::T128] {
        let plan = |splits| tensor_cores(tile, splits);
        for (i, s) in shapes.iter().enumerate() {
            let cl = i != 1 || tile == Tile::T128;
            let d = s.dims(cl);
            for pass in PASSES {
                check::<f16>(&g, &k, &d, pass, Some(plan(1)));
            }
            check::<bf16>(&g, &k, &d, ConvPass::BwdFilter, Some(plan(4)));
        }
    }
}

#[test]
fn conv_rejects_groups_that_do_not_divide_channels() {
    let Some(g) = gpu() else { return };
    let k = g.kernels();
    let mut d = SHAPES[0].dims(false);
    d.groups = 2;
    let err = conv2d(&k, "f32", &d, ConvPass::Fwd, (0, 0, 0)).unwrap_err();
    assert!(err.to_string().contains("groups"), "{err}");
}
