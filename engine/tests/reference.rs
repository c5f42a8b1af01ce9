//! Forward results against naive references written independently of the kernels.

mod common;
use common::conv2d_params;
use kiln_engine::conv_shape::ConvShape;
use kiln_engine::cpu::{conv_tile, winograd::Winograd};
use kiln_engine::{
    BatchNormArgs, Conv2dParams, DType, Error, MemoryFormat, Pool2d, SqueezeExcite, Tensor, UnaryOp,
};

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, DType::F32, seed).unwrap()
}

fn assert_close(a: &[f32], b: &[f32], tol: f32) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "element {i}: {x} vs reference {y}"
        );
    }
}

/// Direct 7-loop convolution, NCHW.
fn naive_conv(
    x: &[f32],
    xs: [usize; 4],
    w: &[f32],
    ws: [usize; 4],
    p: &Conv2dParams,
) -> (Vec<f32>, [usize; 4]) {
    let [n, c, h, wd] = xs;
    let [oc, cg, kh, kw] = ws;
    let oh = (h + 2 * p.padding[0] - p.dilation[0] * (kh - 1) - 1) / p.stride[0] + 1;
    let ow = (wd + 2 * p.padding[1] - p.dilation[1] * (kw - 1) - 1) / p.stride[1] + 1;
    let ocg = oc / p.groups;
    let mut y = vec![0f32; n * oc * oh * ow];
    for b in 0..n {
        for o in 0..oc {
            let g = o / ocg;
            for i in 0..oh {
                for j in 0..ow {
                    let mut acc = 0f64;
                    for ci in 0..cg {
                        for ki in 0..kh {
                            for kj in 0..kw {
                                let hi = (i * p.stride[0] + ki * p.dilation[0]) as isize
                                    - p.padding[0] as isize;
                                let wj = (j * p.stride[1] + kj * p.dilation[1]) as isize
                                    - p.padding[1] as isize;
                                if hi < 0 || wj < 0 || hi >= h as isize || wj >= wd as isize {
                                    continue;
                                }
                                let xv =
                                    x[((b * c + g * cg + ci) * h + hi as usize) * wd + wj as usize];
                                acc += (xv * w[((o * cg + ci) * kh + ki) * kw + kj]) as f64;
                            }
                        }
                    }
                    y[((b * oc + o) * oh + i) * ow + j] = acc as f32;
                }
            }
        }
    }
    (y, [n, oc, oh, ow])
}

#[test]
fn conv2d_matches_naive_in_both_formats() {
    // (x, w, conv2d_params(stride, padding, dilation, groups))
    let p = conv2d_params;
    let cases = [
        ([2, 3, 9, 7], [5, 3, 3, 3], p([1, 1], [1, 1], [1, 1], 1)),
        ([1, 4, 11, 10], [6, 2, 3, 2], p([2, 3], [1, 0], [2, 1], 2)),
        ([3, 6, 5, 5], [6, 1, 3, 3], p([1, 1], [1, 1], [1, 1], 6)),
        // Depthwise on the direct kernels: 5×5 stride 2, 7×7 dilated, odd channel counts.
        ([2, 19, 11, 9], [19, 1, 5, 5], p([2, 2], [2, 2], [1, 1], 19)),
        (
            [3, 13, 10, 13],
            [13, 1, 7, 7],
            p([1, 1], [5, 3], [2, 1], 13),
        ),
        ([4, 8, 6, 5], [7, 8, 1, 1], p([1, 1], [0, 0], [1, 1], 1)),
        // Many output channels on a small image: NHWC keeps im2col at this batch size.
        ([2, 4, 4, 4], [64, 4, 3, 3], p([1, 1], [1, 1], [1, 1], 1)),
        // Small images in a batch of 64: NHWC multiplies only the taps inside them.
        ([64, 5, 1, 1], [7, 5, 3, 3], p([1, 1], [1, 1], [1, 1], 1)),
        ([64, 6, 2, 3], [4, 6, 3, 2], p([2, 1], [1, 1], [1, 1], 1)),
        // Stride 1 with kernels and paddings of every shape: NHWC runs these as implicit GEMMs.
        ([2, 5, 14, 12], [6, 5, 5, 3], p([1, 1], [2, 0], [1, 1], 1)),
        ([3, 4, 12, 14], [5, 4, 3, 3], p([1, 1], [0, 0], [1, 1], 1)),
        ([4, 8, 20, 20], [16, 8, 3, 3], p([1, 1], [1, 1], [1, 1], 1)),
        ([2, 3, 6, 7], [4, 3, 2, 2], p([1, 1], [1, 1], [1, 1], 1)),
        ([1, 6, 4, 12], [3, 6, 1, 3], p([1, 1], [0, 1], [1, 1], 1)),
        ([2, 3, 15, 15], [8, 3, 7, 7], p([2, 2], [3, 3], [1, 1], 1)),
    ];
    for (k, (xs, ws, p)) in cases.into_iter().enumerate() {
        let x = randn(&xs, 10 + k as u64);
        let w = randn(&ws, 20 + k as u64);
        let (expected, shape) = naive_conv(
            &x.to_vec::<f32>().unwrap(),
            xs,
            &w.to_vec::<f32>().unwrap(),
            ws,
            &p,
        );
        for format in [MemoryFormat::Contiguous, MemoryFormat::ChannelsLast] {
            let y = x
                .to_memory_format(format)
                .unwrap()
                .conv2d(&w, None, p)
                .unwrap();
            assert_eq!(y.shape(), shape);
            if xs[1] > 1 && shape[2] * shape[3] > 1 {
                assert_eq!(
                    y.memory_format(),
                    Some(format),
                    "case {k}: output keeps the input's format"
                );
            }
            assert_close(
                &y.contiguous().unwrap().to_vec::<f32>().unwrap(),
                &expected,
                1e-4,
            );
        }
    }
}

/// Output and both gradients of one convolution in NHWC against the NCHW (im2col) path.
/// y, dx and dw of the convolution of x `xs` with w `ws`, run NCHW and run NHWC.
fn nchw_and_nhwc(xs: [usize; 4], ws: [usize; 4], p: Conv2dParams) -> [[Vec<f32>; 3]; 2] {
    let run = |format| {
        let x = randn(&xs, 1).to_memory_format(format).unwrap();
        let w = randn(&ws, 2);
        x.requires_grad_(true);
        w.requires_grad_(true);
        let y = x.conv2d(&w, None, p).unwrap();
        let dy = randn(y.shape(), 3);
        y.mul(&dy).unwrap().sum_all().unwrap().backward().unwrap();
        [y, x.grad().unwrap(), w.grad().unwrap()]
            .map(|t| t.contiguous().unwrap().to_vec::<f32>().unwrap())
    };
    [
        run(MemoryFormat::Contiguous),
        run(MemoryFormat::ChannelsLast),
    ]
}

fn nhwc_agrees_with_nchw(case: &str, xs: [usize; 4], ws: [usize; 4], p: Conv2dParams, tol: f32) {
    let [nchw, nhwc] = nchw_and_nhwc(xs, ws, p);
    for ((a, b), what) in nhwc.iter().zip(&nchw).zip(["y", "dx", "dw"]) {
        eprintln!("{case}: {what}");
        assert_close(a, b, tol);
    }
}

/// The largest error Winograd's NHWC results may have against NCHW's, as a fraction of the
/// reference's RMS: F(4×4, 3×3)'s f32 rounding follows the size of the terms it sums, not each
/// sum's own value, and reaches 5.2e-5 of the outputs' RMS against float64 (64 channels;
/// `scripts/winograd_error.py`, where the direct f32 sum reaches 1.4e-6); four times that.
const WINOGRAD_TOL: f32 = 2e-4;

/// [`nhwc_agrees_with_nchw`] for a stride-1, padding-1 convolution in `groups` that Winograd's
/// path takes, within [`WINOGRAD_TOL`] of the reference's RMS.
fn winograd_agrees_with_nchw(case: &str, xs: [usize; 4], ws: [usize; 4], groups: usize) {
    let p = Conv2dParams {
        padding: [1, 1],
        groups,
        ..Default::default()
    };
    let [n, c, h, w] = xs;
    let group = [n, c / groups, h, w];
    let group_p = Conv2dParams { groups: 1, ..p };
    let shape = ConvShape::new(&group, &[ws[0] / groups, ws[1], 3, 3], &group_p, true).unwrap();
    let taken = Winograd::new(&shape).is_some();
    assert!(
        taken || !conv_tile::available(),
        "{case}: not on Winograd's path"
    );
    let [nchw, nhwc] = nchw_and_nhwc(xs, ws, p);
    for ((a, b), what) in nhwc.iter().zip(&nchw).zip(["y", "dx", "dw"]) {
        eprintln!("{case}: {what}");
        let rms = (b.iter().map(|v| v * v).sum::<f32>() / b.len() as f32).sqrt();
        assert_close(a, b, WINOGRAD_TOL * (1.0 + rms));
    }
}

/// One stride-1 convolution large enough that NHWC splits it into several blocks, some spanning
/// two images.
#[test]
fn conv2d_forward_and_gradients_agree_across_formats() {
    let p = Conv2dParams {
        padding: [1, 1],
        ..Default::default()
    };
    nhwc_agrees_with_nchw("implicit GEMM", [4, 8, 20, 20], [16, 8, 3, 3], p, 1e-4);
}

/// Shapes the direct NHWC convolution takes on AVX-512 (channel counts that are multiples of 16,
/// outputs or batch at least 7 long): border regions, partial tiles, strides, dilation, padding
/// wider than the kernel reaches, a single image split by rows, 48 output channels (a 32- and a
/// 16-wide tile), tiny images tiled along a batch too small for `small_image_conv`, and RGB stems
/// (3 input channels, forward only: their gradients take im2col).
#[test]
fn direct_nhwc_conv_agrees_with_nchw() {
    let pad = |h, w| Conv2dParams {
        padding: [h, w],
        ..Default::default()
    };
    let strided = Conv2dParams {
        stride: [2, 1],
        padding: [1, 0],
        dilation: [2, 1],
        groups: 1,
    };
    let stem = Conv2dParams {
        stride: [2, 2],
        padding: [3, 3],
        ..Default::default()
    };
    let down = Conv2dParams {
        stride: [2, 2],
        ..Default::default()
    };
    let stride2 = Conv2dParams {
        stride: [2, 2],
        padding: [1, 1],
        ..Default::default()
    };
    let cases = [
        ("3x3 pad 1", [3, 16, 7, 15], [32, 16, 3, 3], pad(1, 1)),
        ("few rows", [20, 32, 3, 16], [16, 32, 3, 3], pad(1, 1)),
        ("strided, dilated", [2, 32, 10, 20], [48, 32, 3, 2], strided),
        (
            "pad beyond the taps",
            [2, 16, 5, 14],
            [16, 16, 3, 3],
            pad(4, 2),
        ),
        ("7x7 stride 2", [2, 16, 15, 29], [32, 16, 7, 7], stem),
        ("1x1 stride 2", [3, 16, 9, 30], [32, 16, 1, 1], down),
        ("7 wide", [12, 32, 7, 7], [32, 32, 3, 3], pad(1, 1)),
        ("c slices", [2, 192, 4, 14], [48, 192, 3, 3], pad(1, 1)),
        ("oc slices", [2, 32, 4, 14], [176, 32, 3, 3], pad(1, 1)),
        (
            "one image by rows",
            [1, 16, 40, 30],
            [16, 16, 3, 3],
            pad(1, 2),
        ),
        ("2x2 images", [9, 16, 2, 2], [32, 16, 3, 3], pad(1, 1)),
        ("4x4 images", [30, 32, 4, 4], [16, 32, 3, 3], pad(1, 1)),
        ("4x4 stride 2", [7, 16, 4, 4], [48, 16, 3, 3], stride2),
        ("1x1 images", [20, 16, 1, 1], [16, 16, 3, 3], pad(1, 1)),
        ("3-channel 7x7 stem", [2, 3, 15, 29], [32, 3, 7, 7], stem),
        ("3-channel 3x3 stem", [3, 3, 16, 18], [16, 3, 3, 3], stride2),
    ];
    for (case, xs, ws, p) in cases {
        nhwc_agrees_with_nchw(case, xs, ws, p, 1e-4);
    }
    // Partial weight gradients past the cache, summed as one block a thread (a batch of 2: at 3,
    // Winograd's path takes it). Its sums run over 4608 and 9216 terms, where f32 rounding alone
    // reaches 2e-4 of their (cancelled) results.
    let wide = ([2, 512, 7, 7], [1024, 512, 3, 3]);
    nhwc_agrees_with_nchw("wide dw", wide.0, wide.1, pad(1, 1), 1e-3);
}

/// Pointwise convolutions whose NHWC forward transposes the weights first (a batch of few
/// output pixels, 48 output channels) and one with too many pixels for that, on the plain product.
#[test]
fn pointwise_nhwc_conv_agrees_with_nchw() {
    let p = Conv2dParams::default();
    nhwc_agrees_with_nchw("few pixels", [2, 64, 4, 4], [48, 64, 1, 1], p, 1e-4);
    nhwc_agrees_with_nchw("many pixels", [40, 32, 8, 8], [16, 32, 1, 1], p, 1e-4);
}

/// Shapes the Winograd F(4×4, 3×3) path takes (3×3, stride 1, padding 1, channels in 16s, enough
/// tiles for the weights): odd sides (tiles cut by the edge), one image, 48 channels in and out
/// (a 32- and a 16-wide panel), enough tile rows for several blocks and several chunks of the
/// weight gradient, 256 channels (few tiles a block: the forward's products run point by point
/// over chunks of blocks, the weight gradient's sums all points of a register tile at once),
/// and large batches of 4² and 7² images.
#[test]
fn winograd_nhwc_conv_agrees_with_nchw() {
    let cases = [
        ("16x16", [4, 64, 16, 16], [64, 64, 3, 3]),
        ("odd sides", [8, 64, 13, 15], [48, 64, 3, 3]),
        ("one image", [1, 64, 28, 30], [64, 64, 3, 3]),
        ("48 channels", [16, 48, 8, 8], [48, 48, 3, 3]),
        ("several chunks", [4, 32, 64, 64], [32, 32, 3, 3]),
        ("256 channels", [16, 256, 8, 8], [256, 256, 3, 3]),
        ("4x4 images", [96, 64, 4, 4], [64, 64, 3, 3]),
        ("7x7 images", [64, 64, 7, 7], [32, 64, 3, 3]),
    ];
    for (case, xs, ws) in cases {
        winograd_agrees_with_nchw(case, xs, ws, 1);
    }
}

/// Grouped NHWC convolutions whose groups the ungrouped paths take (`grouped_conv`): ResNeSt's
/// two radix splits on Winograd's shapes, four groups on the direct tiles with stride 2, groups
/// of a large batch of tiny images (the small-image products).
#[test]
fn grouped_nhwc_conv_agrees_with_nchw() {
    let conv = |stride: usize, pad: usize, groups: usize| Conv2dParams {
        stride: [stride; 2],
        padding: [pad; 2],
        groups,
        ..Default::default()
    };
    let cases = [
        (
            "4 groups, stride 2",
            [2, 64, 16, 15],
            [64, 16, 3, 3],
            conv(2, 1, 4),
        ),
        (
            "2 groups, tiny images",
            [64, 32, 2, 2],
            [32, 16, 3, 3],
            conv(1, 1, 2),
        ),
    ];
    winograd_agrees_with_nchw("2 groups, Winograd", [16, 64, 8, 8], [128, 32, 3, 3], 2);
    for (case, xs, ws, p) in cases {
        nhwc_agrees_with_nchw(case, xs, ws, p, 1e-4);
    }
}

/// Shapes whose NHWC convolution multiplies only the taps inside the image (batches of at least
/// 64, at most 16 output pixels, at least a quarter of the padded taps outside): ResNet's last
/// stages on small inputs, stride 2, a non-square kernel, and padding so wide that some outputs
/// read nothing.
#[test]
fn small_image_nhwc_conv_agrees_with_nchw() {
    let conv = |stride: usize, padding: [usize; 2]| Conv2dParams {
        stride: [stride; 2],
        padding,
        ..Default::default()
    };
    let cases = [
        ("1x1 image", [64, 16, 1, 1], [24, 16, 3, 3], conv(1, [1, 1])),
        ("2x2 image", [64, 8, 2, 2], [12, 8, 3, 3], conv(1, [1, 1])),
        (
            "2x2 stride 2",
            [65, 8, 2, 2],
            [12, 8, 3, 3],
            conv(2, [1, 1]),
        ),
        ("4x4 stride 1", [64, 8, 4, 4], [8, 8, 3, 3], conv(1, [1, 1])),
        ("4x4 stride 2", [70, 8, 4, 4], [8, 8, 3, 3], conv(2, [1, 1])),
        ("3x1 image", [64, 5, 3, 1], [4, 5, 3, 3], conv(1, [1, 1])),
        (
            "empty outputs",
            [64, 4, 1, 1],
            [5, 4, 2, 2],
            conv(1, [2, 2]),
        ),
    ];
    for (case, xs, ws, p) in cases {
        nhwc_agrees_with_nchw(case, xs, ws, p, 1e-4);
    }
}

#[test]
fn matmul_matches_naive_with_strided_operands() {
    let a = randn(&[2, 7, 5], 1);
    let b = randn(&[2, 4, 5], 2).transpose(-2, -1).unwrap();
    let y = a.matmul(&b).unwrap().to_vec::<f32>().unwrap();
    let (av, bv) = (
        a.to_vec::<f32>().unwrap(),
        b.contiguous().unwrap().to_vec::<f32>().unwrap(),
    );
    let mut expected = vec![0f32; 2 * 7 * 4];
    for bi in 0..2 {
        for i in 0..7 {
            for j in 0..4 {
                expected[(bi * 7 + i) * 4 + j] = (0..5)
                    .map(|k| av[(bi * 7 + i) * 5 + k] * bv[(bi * 5 + k) * 4 + j])
                    .sum();
            }
        }
    }
    assert_close(&y, &expected, 1e-5);
}

/// An empty inner dimension gives a zero product (matmul outputs are not zero-filled up front).
#[test]
fn matmul_with_an_empty_inner_dimension_is_zero() {
    let a = Tensor::zeros(&[2, 3, 0], DType::F32).unwrap();
    let b = Tensor::zeros(&[2, 0, 4], DType::F32).unwrap();
    let y = a.matmul(&b).unwrap();
    assert_eq!(y.shape(), &[2, 3, 4]);
    assert_eq!(y.to_vec::<f32>().unwrap(), vec![0.0; 24]);
}

/// Products big enough to be cut into per-thread bands, by rows (m ≥ n) and by columns, with a
/// transposed right operand, on 3 threads so the bands do not divide evenly.
#[test]
fn large_matmul_split_across_threads_matches_naive() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    for (m, k, n) in [(300, 700, 40), (40, 700, 300)] {
        let a = randn(&[m, k], 4);
        let b = randn(&[n, k], 5).transpose(0, 1).unwrap();
        let y = pool.install(|| a.matmul(&b).unwrap().to_vec::<f32>().unwrap());
        let (av, bv) = (
            a.to_vec::<f32>().unwrap(),
            b.contiguous().unwrap().to_vec::<f32>().unwrap(),
        );
        let expected: Vec<f32> = (0..m * n)
            .map(|ij| {
                let (i, j) = (ij / n, ij % n);
                (0..k)
                    .map(|p| av[i * k + p] as f64 * bv[p * n + j] as f64)
                    .sum::<f64>() as f32
            })
            .collect();
        assert_close(&y, &expected, 1e-4);
    }
}

/// The per-channel mean and variance (`unbiased` or not) of an NCHW tensor.
fn channel_stats(t: &Tensor, unbiased: bool) -> (Vec<f32>, Vec<f32>) {
    let mean = t.mean_dims(&[0, 2, 3], false).unwrap();
    let var = t.var_dims(&[0, 2, 3], unbiased, false).unwrap();
    (mean.to_vec::<f32>().unwrap(), var.to_vec::<f32>().unwrap())
}

#[test]
fn batch_norm_normalizes_and_updates_running_stats() {
    let x = randn(&[4, 3, 5, 5], 3)
        .mul_scalar(2.0)
        .unwrap()
        .add_scalar(1.0)
        .unwrap();
    let rm = Tensor::zeros(&[3], DType::F32).unwrap();
    let rv = Tensor::ones(&[3], DType::F32).unwrap();
    let args = BatchNormArgs {
        running_mean: Some(&rm),
        running_var: Some(&rv),
        ..BatchNormArgs::batch_stats(None, None)
    };
    let y = x
        .to_memory_format(MemoryFormat::ChannelsLast)
        .unwrap()
        .batch_norm(args)
        .unwrap();
    let (mean, var) = channel_stats(&y, false);
    assert_close(&mean, &[0.0; 3], 1e-5);
    assert_close(&var, &[1.0; 3], 1e-3);
    let (batch_mean, batch_var) = channel_stats(&x, true);
    let want_rm: Vec<f32> = batch_mean.iter().map(|m| 0.1 * m).collect();
    let want_rv: Vec<f32> = batch_var.iter().map(|v| 0.9 + 0.1 * v).collect();
    assert_close(&rm.to_vec::<f32>().unwrap(), &want_rm, 1e-5);
    assert_close(&rv.to_vec::<f32>().unwrap(), &want_rv, 1e-5);
}

#[test]
fn fused_bn_add_relu_equals_the_unfused_ops() {
    let x = randn(&[2, 4, 3, 3], 4);
    let r = randn(&[2, 4, 3, 3], 5);
    let g = randn(&[4], 6);
    let b = randn(&[4], 7);
    let args = BatchNormArgs::batch_stats(Some(&g), Some(&b));
    let fused = x.bn_add_relu(&r, args).unwrap().to_vec::<f32>().unwrap();
    let unfused = x
        .batch_norm(args)
        .unwrap()
        .add(&r)
        .unwrap()
        .relu()
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    assert_close(&fused, &unfused, 1e-6);
}

/// Fused BN+add+ReLU on enough NHWC pixels for several multi-pixel runs, the last one short:
/// output and gradients against NCHW.
#[test]
fn fused_bn_add_relu_agrees_across_formats() {
    let shape = [4, 6, 17, 19];
    let (g, b, dy) = (randn(&[6], 6), randn(&[6], 7), randn(&shape, 8));
    let args = BatchNormArgs::batch_stats(Some(&g), Some(&b));
    let run = |format| {
        let x = randn(&shape, 4).to_memory_format(format).unwrap();
        let r = randn(&shape, 5).to_memory_format(format).unwrap();
        x.requires_grad_(true);
        r.requires_grad_(true);
        let y = x.bn_add_relu(&r, args).unwrap();
        y.mul(&dy).unwrap().sum_all().unwrap().backward().unwrap();
        [y, x.grad().unwrap(), r.grad().unwrap()]
            .map(|t| t.contiguous().unwrap().to_vec::<f32>().unwrap())
    };
    let nchw = run(MemoryFormat::Contiguous);
    let nhwc = run(MemoryFormat::ChannelsLast);
    for (a, b) in nhwc.iter().zip(&nchw) {
        assert_close(a, b, 1e-4);
    }
}

/// Max pooling in NCHW and NHWC (its own loop) against a naive maximum; both layouts route
/// the gradient to the same inputs.
#[test]
fn max_pool_with_padding_and_ceil_mode_matches_naive() {
    let x = randn(&[1, 2, 5, 5], 8);
    let dy = randn(&[1, 2, 3, 3], 9);
    let mut p = Pool2d::new(3, 2, 1);
    p.ceil_mode = true;
    let xv = x.to_vec::<f32>().unwrap();
    let mut grads = Vec::new();
    for format in [MemoryFormat::Contiguous, MemoryFormat::ChannelsLast] {
        let xf = x.to_memory_format(format).unwrap().detach();
        xf.requires_grad_(true);
        let y = xf.max_pool2d(p).unwrap();
        assert_eq!(y.shape(), &[1, 2, 3, 3]);
        let yv = y.contiguous().unwrap().to_vec::<f32>().unwrap();
        for c in 0..2 {
            for i in 0..3usize {
                for j in 0..3usize {
                    let mut m = f32::NEG_INFINITY;
                    for hi in (2 * i).saturating_sub(1)..(2 * i + 2).min(5) {
                        for wj in (2 * j).saturating_sub(1)..(2 * j + 2).min(5) {
                            m = m.max(xv[(c * 5 + hi) * 5 + wj]);
                        }
                    }
                    assert_eq!(yv[(c * 3 + i) * 3 + j], m, "{format:?}");
                }
            }
        }
        y.mul(&dy).unwrap().sum_all().unwrap().backward().unwrap();
        grads.push(
            xf.grad()
                .unwrap()
                .contiguous()
                .unwrap()
                .to_vec::<f32>()
                .unwrap(),
        );
    }
    assert_eq!(grads[0], grads[1]);
}

#[test]
fn global_average_pool_is_the_spatial_mean() {
    let x = randn(&[2, 3, 4, 5], 9)
        .to_memory_format(MemoryFormat::ChannelsLast)
        .unwrap();
    let y = x
        .adaptive_avg_pool2d([1, 1])
        .unwrap()
        .flatten_from(1)
        .unwrap()
        .contiguous()
        .unwrap();
    let m = x.mean_dims(&[2, 3], false).unwrap();
    assert_close(
        &y.to_vec::<f32>().unwrap(),
        &m.to_vec::<f32>().unwrap(),
        1e-6,
    );
}

#[test]
fn cross_entropy_with_smoothing_matches_the_formula() {
    let logits = randn(&[3, 4], 10);
    let target = Tensor::from_vec(vec![1i64, 3, 0], &[3]).unwrap();
    let loss = logits.cross_entropy(&target, 0.1).unwrap().item().unwrap();
    let lp = logits.log_softmax(-1).unwrap().to_vec::<f32>().unwrap();
    let expected: f64 = [1usize, 3, 0]
        .iter()
        .enumerate()
        .map(|(r, &t)| {
            let row = &lp[r * 4..r * 4 + 4];
            -0.9 * row[t] as f64 - 0.1 * row.iter().map(|&v| v as f64).sum::<f64>() / 4.0
        })
        .sum::<f64>()
        / 3.0;
    assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
}

#[test]
fn half_precision_ops_compute_in_f32_and_keep_their_dtype() {
    for dtype in [DType::F16, DType::BF16] {
        let x = randn(&[2, 3, 4, 4], 11);
        let w = randn(&[2, 3, 3, 3], 12);
        let want = x
            .conv2d(&w, None, Conv2dParams::default())
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        let got = x
            .to_dtype(dtype)
            .unwrap()
            .conv2d(&w.to_dtype(dtype).unwrap(), None, Conv2dParams::default())
            .unwrap();
        assert_eq!(got.dtype(), dtype);
        assert_close(&got.to_vec_f32().unwrap(), &want, 0.08);
    }
}

#[test]
fn views_share_storage_and_copies_do_not() {
    let x = Tensor::arange(0.0, 24.0, 1.0, DType::F32)
        .unwrap()
        .reshape(&[2, 3, 4])
        .unwrap();
    let v = x.permute(&[2, 0, 1]).unwrap().narrow(0, 1, 2).unwrap();
    assert!(v.same_storage(&x));
    assert_eq!(v.shape(), &[2, 2, 3]);
    assert_eq!(
        v.contiguous().unwrap().to_vec::<f32>().unwrap()[..3],
        [1.0, 5.0, 9.0]
    );
    let cl = Tensor::zeros(&[2, 3, 4, 5], DType::F32)
        .unwrap()
        .to_memory_format(MemoryFormat::ChannelsLast)
        .unwrap();
    assert_eq!(cl.stride(), &[60, 1, 15, 3]);
    assert_eq!(cl.memory_format(), Some(MemoryFormat::ChannelsLast));
}

#[test]
fn mismatched_shapes_name_the_op_and_both_shapes() {
    let a = Tensor::zeros(&[2, 3], DType::F32).unwrap();
    let b = Tensor::zeros(&[4, 5], DType::F32).unwrap();
    let err = a.matmul(&b).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { op: "matmul", .. }));
    assert_eq!(
        err.to_string(),
        "matmul: shape mismatch between [2, 3] and [4, 5]"
    );
    let err = a.add(&b).unwrap_err().to_string();
    assert!(
        err.contains("add") && err.contains("[2, 3]") && err.contains("[4, 5]"),
        "{err}"
    );
    let x = Tensor::zeros(&[1, 3, 8, 8], DType::F32).unwrap();
    let w = Tensor::zeros(&[4, 2, 3, 3], DType::F32).unwrap();
    let err = x
        .conv2d(&w, None, Conv2dParams::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "conv2d: shape mismatch between [1, 3, 8, 8] and [4, 2, 3, 3]"
    );
}

#[test]
fn backward_accumulates_into_leaf_grads() {
    let w = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]).unwrap();
    w.requires_grad_(true);
    for _ in 0..2 {
        w.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    }
    assert_eq!(
        w.grad().unwrap().to_vec::<f32>().unwrap(),
        vec![4.0, 8.0, 12.0]
    );
    let _guard = kiln_engine::no_grad();
    assert!(!w.sqr().unwrap().requires_grad());
}

#[test]
fn a_held_gradient_keeps_its_values_and_a_free_one_accumulates_in_place() {
    let w = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[3]).unwrap();
    w.requires_grad_(true);
    let step = || w.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    step();
    let held = w.grad().unwrap();
    step();
    assert_eq!(held.to_vec::<f32>().unwrap(), vec![2.0, 4.0, 6.0]);
    drop(held);
    step();
    assert_eq!(
        w.grad().unwrap().to_vec::<f32>().unwrap(),
        vec![6.0, 12.0, 18.0]
    );

    let x = randn(&[2, 3, 4, 5], 7)
        .to_memory_format(MemoryFormat::ChannelsLast)
        .unwrap();
    x.requires_grad_(true);
    for _ in 0..2 {
        x.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    }
    let (g, xv) = (x.grad().unwrap(), x.to_vec::<f32>().unwrap());
    for (g, x) in g.to_vec::<f32>().unwrap().iter().zip(&xv) {
        assert!(
            (g - 4.0 * x).abs() <= 1e-5 * (1.0 + x.abs()),
            "{g} vs 4·{x}"
        );
    }
}

#[test]
fn same_seed_gives_same_random_numbers() {
    let a = Tensor::randn(&[1000], DType::F32, 42)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    let b = Tensor::randn(&[1000], DType::F32, 42)
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    assert_eq!(a, b);
    let mean = a.iter().sum::<f32>() / 1000.0;
    let var = a.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 1000.0;
    assert!(
        mean.abs() < 0.1 && (var - 1.0).abs() < 0.15,
        "mean {mean} var {var}"
    );
}

/// LayerNorm against the formula per row, in f64: over the last dim, and over channels (2d)
/// for NCHW and channels-last inputs.
#[test]
fn layer_norm_matches_the_formula() {
    let naive = |x: &[f32], len: usize, g: &[f32], b: &[f32], eps: f64| -> Vec<f32> {
        x.chunks(len)
            .flat_map(|row| {
                let n = len as f64;
                let mu = row.iter().map(|&v| v as f64).sum::<f64>() / n;
                let var = row.iter().map(|&v| (v as f64 - mu).powi(2)).sum::<f64>() / n;
                let rs = 1.0 / (var + eps).sqrt();
                (0..len)
                    .map(move |k| ((row[k] as f64 - mu) * rs * g[k] as f64 + b[k] as f64) as f32)
            })
            .collect()
    };
    let (x, g, b) = (randn(&[6, 37], 130), randn(&[37], 131), randn(&[37], 132));
    let x = x.mul_scalar(3.0).unwrap().add_scalar(2.0).unwrap();
    let y = x.layer_norm(Some(&g), Some(&b), 1e-5).unwrap();
    let (xv, gv, bv) = (
        x.to_vec_f32().unwrap(),
        g.to_vec_f32().unwrap(),
        b.to_vec_f32().unwrap(),
    );
    assert_close(
        &y.to_vec_f32().unwrap(),
        &naive(&xv, 37, &gv, &bv, 1e-5),
        1e-5,
    );

    let x2 = randn(&[2, 5, 3, 4], 133);
    let (g2, b2) = (randn(&[5], 134), randn(&[5], 135));
    let nhwc = x2
        .permute(&[0, 2, 3, 1])
        .unwrap()
        .contiguous_copy()
        .unwrap();
    let want_nhwc = naive(
        &nhwc.to_vec_f32().unwrap(),
        5,
        &g2.to_vec_f32().unwrap(),
        &b2.to_vec_f32().unwrap(),
        1e-6,
    );
    let want = Tensor::from_vec(want_nhwc, &[2, 3, 4, 5])
        .unwrap()
        .permute(&[0, 3, 1, 2])
        .unwrap();
    for format in [MemoryFormat::Contiguous, MemoryFormat::ChannelsLast] {
        let y = x2
            .to_memory_format(format)
            .unwrap()
            .layer_norm2d(Some(&g2), Some(&b2), 1e-6)
            .unwrap();
        assert_eq!(y.shape(), [2, 5, 3, 4]);
        assert_close(&y.to_vec_f32().unwrap(), &want.to_vec_f32().unwrap(), 1e-5);
    }
}

/// Values of torch's `F.gelu(x, approximate='tanh')`, from the formula in f64
/// (0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), evaluated in Python's `math`).
#[test]
fn gelu_tanh_matches_torch_formula_values() {
    let x = Tensor::from_vec(vec![-3.0f64, -1.0, 0.5, 1.0, 2.0], &[5]).unwrap();
    let want = [
        -0.0036373920817729943,
        -0.15880800939172324,
        0.34571400982514394,
        0.8411919906082768,
        1.954597694087775,
    ];
    let got = x.gelu_tanh().unwrap().to_vec::<f64>().unwrap();
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "{g} vs {w}");
    }
}

/// The unfused squeeze-excite: pool, 1×1 convs, activation, gate, broadcast multiply.
fn se_composed(x: &Tensor, p: &[Tensor], act: UnaryOp, gate: UnaryOp) -> Tensor {
    let apply = |t: Tensor, op: UnaryOp| match op {
        UnaryOp::Relu => t.relu(),
        UnaryOp::Silu => t.silu(),
        UnaryOp::Sigmoid => t.sigmoid(),
        UnaryOp::HardSigmoid => t.hardsigmoid(),
        other => panic!("no composed twin for {other:?}"),
    };
    let s = x.mean_dims(&[2, 3], true).unwrap();
    let s = apply(
        s.conv2d(&p[0], Some(&p[1]), Default::default()).unwrap(),
        act,
    )
    .unwrap();
    let g = apply(
        s.conv2d(&p[2], Some(&p[3]), Default::default()).unwrap(),
        gate,
    )
    .unwrap();
    x.mul(&g).unwrap()
}

/// The fused squeeze-excite against its composition of engine ops, output and every gradient,
/// for timm's act/gate pairs (seresnet, efficientnet, mobilenetv3), odd sizes, both formats.
#[test]
fn fused_squeeze_excite_equals_the_composed_ops() {
    let pairs = [
        (UnaryOp::Relu, UnaryOp::Sigmoid),
        (UnaryOp::Silu, UnaryOp::Sigmoid),
        (UnaryOp::Relu, UnaryOp::HardSigmoid),
    ];
    for (k, (act, gate)) in pairs.into_iter().enumerate() {
        let (n, c, r, h, w) = (3, 13, 5, 7, 5);
        let seed = 200 + 10 * k as u64;
        let x0 = randn(&[n, c, h, w], seed);
        let p0 = [
            randn(&[r, c, 1, 1], seed + 1).mul_scalar(0.5).unwrap(),
            randn(&[r], seed + 2),
            randn(&[c, r, 1, 1], seed + 3).mul_scalar(0.5).unwrap(),
            randn(&[c], seed + 4),
        ];
        let dy = randn(&[n, c, h, w], seed + 5);
        for format in [MemoryFormat::Contiguous, MemoryFormat::ChannelsLast] {
            let run = |fused: bool| {
                let x = x0.to_memory_format(format).unwrap().detach();
                x.requires_grad_(true);
                let p: Vec<Tensor> = p0.iter().map(|t| t.detach()).collect();
                p.iter().for_each(|t| {
                    t.requires_grad_(true);
                });
                let y = if fused {
                    let se = SqueezeExcite {
                        w1: &p[0],
                        b1: &p[1],
                        w2: &p[2],
                        b2: &p[3],
                        act,
                        gate,
                    };
                    x.squeeze_excite(se).unwrap()
                } else {
                    se_composed(&x, &p, act, gate)
                };
                y.backward_with(&dy).unwrap();
                let mut out = vec![y.contiguous().unwrap().to_vec::<f32>().unwrap()];
                out.push(x.grad().unwrap().contiguous().unwrap().to_vec().unwrap());
                out.extend(p.iter().map(|t| t.grad().unwrap().to_vec::<f32>().unwrap()));
                (out, y.memory_format())
            };
            let ((fused, fmt), (composed, _)) = (run(true), run(false));
            assert_eq!(fmt, Some(format), "the output keeps the input's format");
            for (i, (a, b)) in fused.iter().zip(&composed).enumerate() {
                eprintln!("pair {k} {format:?}: output or gradient {i}");
                assert_close(a, b, 1e-5);
            }
        }
    }
}

#[test]
fn roll_moves_element_i_to_i_plus_shift_mod_n() {
    // torch.roll over H and W of [B, H, W, C] (Swin's cyclic shift) and its inverse, both layouts.
    let (b, h, w, c) = (2, 5, 6, 3);
    let x = randn(&[b, h, w, c], 81);
    let xs = x.to_vec_f32().unwrap();
    for format in [MemoryFormat::Contiguous, MemoryFormat::ChannelsLast] {
        let xf = x.to_memory_format(format).unwrap();
        let (sh, sw) = (-2isize, 3isize);
        let y = xf.roll(&[sh, sw], &[1, 2]).unwrap();
        let ys = y.contiguous().unwrap().to_vec_f32().unwrap();
        for (i, &v) in xs.iter().enumerate() {
            let (n, r, q, ch) = (i / (h * w * c), i / (w * c) % h, i / c % w, i % c);
            let r2 = (r as isize + sh).rem_euclid(h as isize) as usize;
            let q2 = (q as isize + sw).rem_euclid(w as isize) as usize;
            assert_eq!(
                ys[((n * h + r2) * w + q2) * c + ch],
                v,
                "{format:?} element {i}"
            );
        }
        let back = y.roll(&[-sh, -sw], &[1, 2]).unwrap();
        assert_eq!(back.contiguous().unwrap().to_vec_f32().unwrap(), xs);
    }
    let e = x.roll(&[1], &[0, 1]).unwrap_err().to_string();
    assert!(e.contains("1 shifts for 2 dims"), "{e}");
}

/// `copy_` against an element-by-element reference, for every pairing of layouts: the one-slice
/// path (both row-major, both channels-last, a dense block at an offset) and the walk in the
/// destination's order (formats that differ, a strided destination, a channel slice of a
/// channels-last map).
#[test]
fn copy_writes_each_element_where_its_index_says() {
    let shape = [2, 3, 4, 5];
    let src = randn(&shape, 11);
    let want = src.to_vec_f32().unwrap();
    let cl = |t: &Tensor| t.to_memory_format(MemoryFormat::ChannelsLast).unwrap();
    let sources = [src.clone(), cl(&src)];
    for (si, from) in sources.iter().enumerate() {
        for di in 0..2 {
            let zeros = Tensor::zeros(&shape, DType::F32).unwrap();
            let to = if di == 0 { zeros } else { cl(&zeros) };
            to.copy_(from).unwrap();
            assert_close(&to.to_vec_f32().unwrap(), &want, 0.0);
            assert_eq!(
                to.layout().is_contiguous(),
                di == 0,
                "source {si}: layout kept"
            );
        }
    }
    // Into a dense block at an offset (rows 1..3 of 4) and into a strided view (columns 1..3).
    let big = Tensor::zeros(&[4, 6], DType::F32).unwrap();
    let rows = randn(&[2, 6], 12);
    big.narrow(0, 1, 2).unwrap().copy_(&rows).unwrap();
    let cols = randn(&[4, 2], 13);
    big.narrow(1, 1, 2).unwrap().copy_(&cols).unwrap();
    let (r, c, got) = (
        rows.to_vec_f32().unwrap(),
        cols.to_vec_f32().unwrap(),
        big.to_vec_f32().unwrap(),
    );
    for i in 0..4 {
        for j in 0..6 {
            let want = match (i, j) {
                (_, 1 | 2) => c[i * 2 + j - 1],
                (1 | 2, _) => r[(i - 1) * 6 + j],
                _ => 0.0,
            };
            assert_eq!(got[i * 6 + j], want, "({i}, {j})");
        }
    }
    // Into channels 2..5 of a channels-last [2, 7, 3, 4] map (a concatenation's slice, one run
    // of channels per pixel), from either format.
    let part = randn(&[2, 3, 3, 4], 14);
    let p = part.to_vec_f32().unwrap();
    for from in [part.clone(), cl(&part)] {
        let map = cl(&Tensor::zeros(&[2, 7, 3, 4], DType::F32).unwrap());
        map.narrow(1, 2, 3).unwrap().copy_(&from).unwrap();
        let got = map.contiguous().unwrap().to_vec_f32().unwrap();
        for (i, &v) in got.iter().enumerate() {
            let (n, c, hw) = (i / 84, i / 12 % 7, i % 12);
            let want = match c {
                2..=4 => p[n * 36 + (c - 2) * 12 + hw],
                _ => 0.0,
            };
            assert_eq!(v, want, "element {i}");
        }
    }
}
