//! Finite-difference checks (f64) of every differentiable op's backward.

use kiln_engine::{
    check_gradients, AttnOptions, BatchNormArgs, Conv2dParams, DType, GradCheck, MemoryFormat,
    Pool2d, Result, Tensor,
};

fn randn(shape: &[usize], seed: u64) -> Tensor {
    Tensor::randn(shape, DType::F64, seed).unwrap()
}

fn positive(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand(shape, DType::F64, seed)
        .unwrap()
        .add_scalar(0.5)
        .unwrap()
}

fn check(inputs: &[Tensor], f: impl Fn(&[Tensor]) -> Result<Tensor>) {
    check_gradients(inputs, f, GradCheck::default()).unwrap();
}

macro_rules! unary_checks {
    ($($name:ident: $input:expr => $op:expr;)*) => {$(
        #[test]
        fn $name() {
            check(&[$input], |t| $op(&t[0]));
        }
    )*};
}

unary_checks! {
    grad_neg: randn(&[3, 5], 1) => |x: &Tensor| x.neg();
    grad_exp: randn(&[3, 5], 2) => |x: &Tensor| x.exp();
    grad_log: positive(&[3, 5], 3) => |x: &Tensor| x.log();
    grad_sqrt: positive(&[3, 5], 4) => |x: &Tensor| x.sqrt();
    grad_rsqrt: positive(&[3, 5], 5) => |x: &Tensor| x.rsqrt();
    grad_abs: randn(&[3, 5], 6) => |x: &Tensor| x.abs();
    grad_relu: randn(&[3, 5], 7) => |x: &Tensor| x.relu();
    grad_sigmoid: randn(&[3, 5], 8) => |x: &Tensor| x.sigmoid();
    grad_tanh: randn(&[3, 5], 9) => |x: &Tensor| x.tanh();
    grad_silu: randn(&[3, 5], 10) => |x: &Tensor| x.silu();
    grad_gelu: randn(&[3, 5], 11) => |x: &Tensor| x.gelu();
    grad_gelu_tanh: randn(&[3, 5], 29).mul_scalar(2.0).unwrap() => |x: &Tensor| x.gelu_tanh();
    grad_hardswish: randn(&[4, 7], 12).mul_scalar(3.0).unwrap() => |x: &Tensor| x.hardswish();
    grad_hardsigmoid: randn(&[4, 7], 13).mul_scalar(3.0).unwrap() => |x: &Tensor| x.hardsigmoid();
    grad_recip: positive(&[3, 5], 14) => |x: &Tensor| x.recip();
    grad_sqr: randn(&[3, 5], 15) => |x: &Tensor| x.sqr();
    grad_powf: positive(&[3, 5], 16) => |x: &Tensor| x.powf(2.5);
    grad_clamp: randn(&[3, 5], 17) => |x: &Tensor| x.clamp(-0.5, 0.7);
    grad_affine: randn(&[3, 5], 18) => |x: &Tensor| x.affine(-1.5, 0.25);
    grad_softmax_dim0: randn(&[4, 6], 19) => |x: &Tensor| x.softmax(0);
    grad_log_softmax: randn(&[4, 6], 20) => |x: &Tensor| x.log_softmax(-1);
    grad_sum_dim: randn(&[3, 4, 5], 21) => |x: &Tensor| x.sum(1, false);
    grad_mean_dims: randn(&[3, 4, 5], 22) => |x: &Tensor| x.mean_dims(&[0, 2], true);
    grad_max: randn(&[3, 4, 5], 23) => |x: &Tensor| x.max(-1, false);
    grad_min: randn(&[3, 4, 5], 24) => |x: &Tensor| x.min(0, true);
    grad_var: randn(&[3, 4, 5], 25) => |x: &Tensor| x.var_dims(&[1], true, false);
    grad_reshape_permute: randn(&[2, 3, 4], 26) => |x: &Tensor| x.permute(&[2, 0, 1])?.reshape(&[4, 6])?.exp();
    grad_narrow_transpose: randn(&[5, 6], 27) => |x: &Tensor| x.narrow(1, 1, 3)?.t()?.sqr();
    grad_expand_unsqueeze: randn(&[3, 1], 28) => |x: &Tensor| x.unsqueeze(0)?.expand(&[2, 3, 4])?.squeeze(0)?.exp();
    grad_channels_last_copy: randn(&[2, 3, 4, 5], 29) => |x: &Tensor| x.to_memory_format(MemoryFormat::ChannelsLast)?.sigmoid();
}

macro_rules! binary_checks {
    ($($name:ident: $a:expr, $b:expr => $op:ident;)*) => {$(
        #[test]
        fn $name() {
            check(&[$a, $b], |t| t[0].$op(&t[1]));
        }
    )*};
}

binary_checks! {
    grad_add_broadcast: randn(&[3, 4], 30), randn(&[4], 31) => add;
    grad_sub_broadcast: randn(&[3, 1], 32), randn(&[1, 4], 33) => sub;
    grad_mul_broadcast: randn(&[2, 3, 4], 34), randn(&[3, 1], 35) => mul;
    grad_div: randn(&[3, 4], 36), positive(&[3, 4], 37) => div;
    grad_maximum: randn(&[3, 4], 38), randn(&[3, 4], 39) => maximum;
    grad_minimum: randn(&[3, 4], 40), randn(&[4], 41) => minimum;
    grad_matmul_2d: randn(&[3, 5], 42), randn(&[5, 4], 43) => matmul;
    grad_matmul_batched_broadcast: randn(&[2, 3, 5], 44), randn(&[5, 4], 45) => matmul;
    grad_matmul_vector: randn(&[3, 5], 46), randn(&[5], 47) => matmul;
}

#[test]
fn grad_where() {
    let cond = randn(&[3, 4], 48)
        .gt(&Tensor::zeros(&[], DType::F64).unwrap())
        .unwrap();
    check(&[randn(&[3, 4], 49), randn(&[4], 50)], |t| {
        cond.where_cond(&t[0], &t[1])
    });
}

#[test]
fn grad_linear() {
    check(
        &[randn(&[4, 6], 51), randn(&[3, 6], 52), randn(&[3], 53)],
        |t| t[0].linear(&t[1], Some(&t[2])),
    );
}

#[test]
fn grad_matmul_of_transposed_operands() {
    check(&[randn(&[6, 4], 54), randn(&[5, 6], 55)], |t| {
        t[0].t()?.matmul(&t[1].t()?)
    });
    check(&[randn(&[2, 6, 4], 54), randn(&[5, 6], 55)], |t| {
        t[0].transpose(1, 2)?.matmul(&t[1].t()?)
    });
}

/// linear's weight enters its product transposed; its gradient comes out in the weight's own
/// row-major order, which the optimizers read without a copy.
#[test]
fn linear_weight_gradient_is_row_major() {
    let w = randn(&[3, 6], 52);
    w.requires_grad_(true);
    let y = randn(&[4, 6], 51).linear(&w, None).unwrap();
    y.sum_all().unwrap().backward().unwrap();
    assert!(w.grad().unwrap().is_contiguous());
}

#[test]
fn grad_linear_folds_leading_dims() {
    check(
        &[randn(&[2, 3, 6], 56), randn(&[4, 6], 57), randn(&[4], 58)],
        |t| t[0].linear(&t[1], Some(&t[2])),
    );
}

#[test]
fn grad_sum_over_outer_dims_of_channels_last() {
    check(&[randn(&[2, 3, 4, 5], 59)], |t| {
        t[0].to_memory_format(MemoryFormat::ChannelsLast)?
            .sum_dims(&[0, 2, 3], false)?
            .sqr()
    });
}

#[test]
fn grad_silu_channels_last() {
    check(&[randn(&[2, 3, 4, 5], 60)], |t| {
        t[0].to_memory_format(MemoryFormat::ChannelsLast)?
            .silu()?
            .sqr()
    });
}

/// ResNeSt's split attention on a channels-last map: channel slices weighted by a broadcast
/// [B, C, 1, 1] and summed. The product and the slices' gradient stay channels-last (the
/// layout the next convolution runs in), and the gradients match finite differences.
#[test]
fn grad_weighted_channel_slices_of_channels_last() {
    let split = |t: &[Tensor]| -> Result<Tensor> {
        let x = t[0].to_memory_format(MemoryFormat::ChannelsLast)?;
        let a = x.narrow(1, 0, 2)?.mul(&t[1])?;
        assert!(
            a.layout().is_channels_last(),
            "weighted slice {:?}",
            a.layout()
        );
        a.add(&x.narrow(1, 2, 2)?.mul(&t[1])?)?.sqr()
    };
    let inputs = [randn(&[2, 4, 3, 5], 61), randn(&[2, 2, 1, 1], 62)];
    check(&inputs, split);
    let x = inputs[0]
        .to_memory_format(MemoryFormat::ChannelsLast)
        .unwrap();
    x.requires_grad_(true);
    x.narrow(1, 1, 2)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let g = x.grad().unwrap();
    assert!(
        g.layout().is_channels_last(),
        "slice gradient {:?}",
        g.layout()
    );
}

#[test]
fn grad_cat() {
    check(&[randn(&[2, 3], 54), randn(&[2, 5], 55)], |t| {
        Tensor::cat(&[t[0].clone(), t[1].clone()], 1)?.sqr()
    });
}

#[test]
fn grad_roll_both_ways_and_formats() {
    for format in [MemoryFormat::Contiguous, MemoryFormat::ChannelsLast] {
        check(&[randn(&[2, 3, 4, 5], 56)], |t| {
            t[0].to_memory_format(format)?
                .roll(&[-3, 2, 7], &[2, 3, 1])?
                .sqr()
        });
    }
}

#[test]
fn grad_pad2d_asymmetric_both_formats() {
    check(&[randn(&[2, 3, 4, 5], 47)], |t| {
        t[0].pad2d([0, 2, 1, 0])?.sqr()
    });
    check(&[randn(&[2, 3, 4, 5], 48)], |t| {
        t[0].to_memory_format(MemoryFormat::ChannelsLast)?
            .pad2d([1, 0, 2, 3])?
            .sqr()
    });
}

fn conv_case(
    x_shape: &[usize],
    w_shape: &[usize],
    p: Conv2dParams,
    channels_last: bool,
    seed: u64,
) {
    let x = randn(x_shape, seed);
    let w = randn(w_shape, seed + 1);
    let b = randn(&[w_shape[0]], seed + 2);
    let format = if channels_last {
        MemoryFormat::ChannelsLast
    } else {
        MemoryFormat::Contiguous
    };
    check(&[x, w, b], |t| {
        t[0].to_memory_format(format)?.conv2d(&t[1], Some(&t[2]), p)
    });
}

#[test]
fn grad_conv2d_3x3_pad_nchw_and_nhwc() {
    let p = Conv2dParams {
        padding: [1, 1],
        ..Default::default()
    };
    conv_case(&[2, 3, 5, 6], &[4, 3, 3, 3], p, false, 60);
    conv_case(&[2, 3, 5, 6], &[4, 3, 3, 3], p, true, 63);
    conv_case(&[2, 3, 8, 9], &[4, 3, 3, 3], p, true, 62);
    let uneven = Conv2dParams {
        padding: [2, 0],
        ..Default::default()
    };
    conv_case(&[2, 3, 6, 7], &[2, 3, 3, 2], uneven, true, 64);
}

#[test]
fn grad_conv2d_strided_dilated() {
    let p = Conv2dParams {
        stride: [2, 1],
        padding: [2, 1],
        dilation: [2, 1],
        groups: 1,
    };
    conv_case(&[2, 2, 7, 6], &[3, 2, 3, 2], p, false, 66);
    conv_case(&[2, 2, 7, 6], &[3, 2, 3, 2], p, true, 69);
    let stem_like = Conv2dParams {
        stride: [2, 2],
        padding: [2, 2],
        ..Default::default()
    };
    conv_case(&[1, 3, 9, 9], &[4, 3, 5, 5], stem_like, true, 70);
}

#[test]
fn grad_conv2d_groups_and_depthwise() {
    let grouped = Conv2dParams {
        padding: [1, 1],
        groups: 2,
        ..Default::default()
    };
    conv_case(&[2, 4, 5, 5], &[6, 2, 3, 3], grouped, false, 72);
    conv_case(&[2, 4, 5, 5], &[6, 2, 3, 3], grouped, true, 75);
    let depthwise = Conv2dParams {
        stride: [2, 2],
        padding: [1, 1],
        groups: 3,
        ..Default::default()
    };
    conv_case(&[1, 3, 6, 6], &[3, 1, 3, 3], depthwise, true, 78);
}

/// The direct depthwise kernels (groups = C = OC): kernels 3/5/7, strides 1/2, dilation, odd
/// sizes, asymmetric stride/padding, both layouts.
#[test]
fn grad_depthwise_conv2d_direct_kernels() {
    let dw = |stride: usize, pad: usize, dil: usize| Conv2dParams {
        stride: [stride, stride],
        padding: [pad, pad],
        dilation: [dil, dil],
        groups: 5,
    };
    let cases = [
        ([2, 5, 7, 6], 3, dw(1, 1, 1)),
        ([1, 5, 9, 8], 5, dw(2, 2, 1)),
        ([2, 5, 9, 9], 7, dw(1, 3, 1)),
        ([1, 5, 7, 9], 3, dw(2, 2, 2)),
        ([2, 5, 5, 4], 3, dw(1, 0, 1)),
    ];
    for (i, (xs, k, p)) in cases.into_iter().enumerate() {
        for channels_last in [false, true] {
            conv_case(&xs, &[5, 1, k, k], p, channels_last, 90 + 3 * i as u64);
        }
    }
    let uneven = Conv2dParams {
        stride: [1, 2],
        padding: [2, 0],
        dilation: [1, 2],
        groups: 3,
    };
    conv_case(&[2, 3, 6, 9], &[3, 1, 3, 3], uneven, false, 120);
    conv_case(&[2, 3, 6, 9], &[3, 1, 3, 3], uneven, true, 121);
}

#[test]
fn grad_conv2d_pointwise() {
    conv_case(
        &[3, 4, 3, 5],
        &[5, 4, 1, 1],
        Conv2dParams::default(),
        false,
        81,
    );
    conv_case(
        &[3, 4, 3, 5],
        &[5, 4, 1, 1],
        Conv2dParams::default(),
        true,
        84,
    );
}

fn bn_case(training: bool, relu: bool, residual: bool, channels_last: bool) {
    let shape = [3, 4, 3, 2];
    let format = if channels_last {
        MemoryFormat::ChannelsLast
    } else {
        MemoryFormat::Contiguous
    };
    let rm = randn(&[4], 90).mul_scalar(0.1).unwrap();
    let rv = positive(&[4], 91);
    let inputs = [
        randn(&shape, 92),
        positive(&[4], 93),
        randn(&[4], 94),
        randn(&shape, 95),
    ];
    check(&inputs, |t| {
        let (rm, rv) = (rm.contiguous_copy()?, rv.contiguous_copy()?);
        let args = BatchNormArgs {
            running_mean: Some(&rm),
            running_var: Some(&rv),
            training,
            ..BatchNormArgs::batch_stats(Some(&t[1]), Some(&t[2]))
        };
        let x = t[0].to_memory_format(format)?;
        let r = t[3].to_memory_format(format)?;
        x.batch_norm_act(args, residual.then_some(&r), relu)
    });
}

#[test]
fn grad_batch_norm_train_and_eval() {
    bn_case(true, false, false, false);
    bn_case(false, false, false, false);
}

#[test]
fn grad_bn_relu_and_bn_add_relu_both_formats() {
    bn_case(true, true, false, false);
    bn_case(true, true, true, false);
    bn_case(true, true, true, true);
    bn_case(false, true, true, true);
}

/// BN over the leading and trailing halves of a batch, joined again (timm's SplitBatchNorm2d): a
/// leading slice has offset 0 but a longer storage, which kernels must not take for its own.
#[test]
fn grad_batch_norm_of_batch_slices() {
    let x = randn(&[4, 3, 3, 2], 120);
    check(std::slice::from_ref(&x), |t| {
        let halves = [t[0].narrow(0, 0, 2)?, t[0].narrow(0, 2, 2)?];
        let normed = halves
            .iter()
            .map(|h| {
                let args = BatchNormArgs::batch_stats(None, None);
                h.batch_norm_act(args, None, true)
            })
            .collect::<Result<Vec<_>>>()?;
        Tensor::cat(&normed, 0)
    });
}

#[test]
fn grad_pooling() {
    let x = randn(&[2, 3, 7, 6], 100);
    let mut p = Pool2d::new(3, 2, 1);
    p.ceil_mode = true;
    check(std::slice::from_ref(&x), |t| t[0].max_pool2d(p));
    p.count_include_pad = false;
    check(std::slice::from_ref(&x), |t| t[0].avg_pool2d(p));
    check(std::slice::from_ref(&x), |t| {
        t[0].to_memory_format(MemoryFormat::ChannelsLast)?
            .avg_pool2d(Pool2d::new(2, 2, 0))
    });
    check(std::slice::from_ref(&x), |t| {
        t[0].adaptive_avg_pool2d([3, 2])
    });
    check(std::slice::from_ref(&x), |t| {
        t[0].adaptive_max_pool2d([2, 4])
    });
}

#[test]
fn grad_cross_entropy_hard_smoothed_and_soft() {
    let target = Tensor::from_vec(vec![2i64, 0, 4, 1], &[4]).unwrap();
    check(&[randn(&[4, 5], 110)], |t| t[0].cross_entropy(&target, 0.1));
    let soft = positive(&[4, 5], 111).softmax(-1).unwrap();
    check(&[randn(&[4, 5], 112)], |t| t[0].cross_entropy(&soft, 0.0));
    let unnormalized = positive(&[4, 5], 113);
    check(&[randn(&[4, 5], 114)], |t| {
        t[0].cross_entropy(&unnormalized, 0.0)
    });
}

#[test]
fn grad_dropout_and_drop_path() {
    check(&[randn(&[4, 6], 120)], |t| {
        kiln_engine::manual_seed_thread(7);
        t[0].dropout(0.3, true)
    });
    check(&[randn(&[4, 2, 3], 121)], |t| {
        kiln_engine::manual_seed_thread(8);
        t[0].drop_path(0.5, true)
    });
}

#[test]
fn grad_bce_with_logits_rows_hard_soft_thresholded_weighted() {
    use kiln_engine::BceOpts;
    let target = Tensor::from_vec(vec![2i64, 0, 4, 1], &[4]).unwrap();
    let weighted = BceOpts {
        threshold: None,
        pos_weight: Some(2.5),
    };
    check(&[randn(&[4, 5], 130).mul_scalar(3.0).unwrap()], |t| {
        t[0].bce_with_logits_rows(&target, 0.1, weighted)
    });
    let soft = Tensor::rand(&[4, 5], DType::F64, 131).unwrap();
    let thresholded = BceOpts {
        threshold: Some(0.4),
        pos_weight: Some(0.5),
    };
    check(&[randn(&[4, 5], 132)], |t| {
        t[0].bce_with_logits_rows(&soft, 0.0, thresholded)
    });
    check(&[randn(&[4, 5], 133)], |t| {
        t[0].bce_with_logits_rows(&soft, 0.0, BceOpts::default())
    });
}

#[test]
fn grad_layer_norm_with_and_without_affine() {
    let inputs = [randn(&[5, 7], 120), positive(&[7], 121), randn(&[7], 122)];
    check(&inputs, |t| t[0].layer_norm(Some(&t[1]), Some(&t[2]), 1e-5));
    check(&inputs[..1], |t| t[0].layer_norm(None, None, 1e-5));
    // Rows of a strided (transposed) view are packed first.
    check(&inputs, |t| {
        t[0].transpose(0, 1)?
            .layer_norm(None, None, 1e-5)?
            .mul(&t[0].transpose(0, 1)?)
    });
}

#[test]
fn grad_layer_norm2d_both_formats() {
    let inputs = [
        randn(&[2, 4, 3, 2], 123),
        positive(&[4], 124),
        randn(&[4], 125),
    ];
    for format in [MemoryFormat::Contiguous, MemoryFormat::ChannelsLast] {
        check(&inputs, |t| {
            t[0].to_memory_format(format)?
                .layer_norm2d(Some(&t[1]), Some(&t[2]), 1e-6)
        });
    }
}

/// The fused squeeze-excite's gradients for x and all four FC parameters, NCHW and NHWC, with
/// each act/gate pair timm's families use.
#[test]
fn grad_squeeze_excite_fused() {
    use kiln_engine::{SqueezeExcite, UnaryOp};
    let pairs = [
        (UnaryOp::Relu, UnaryOp::Sigmoid),
        (UnaryOp::Silu, UnaryOp::Sigmoid),
        (UnaryOp::Silu, UnaryOp::HardSigmoid),
    ];
    for (k, (act, gate)) in pairs.into_iter().enumerate() {
        for format in [MemoryFormat::Contiguous, MemoryFormat::ChannelsLast] {
            let seed = 140 + 6 * k as u64;
            let inputs = [
                randn(&[2, 5, 3, 4], seed),
                randn(&[3, 5, 1, 1], seed + 1),
                randn(&[3], seed + 2),
                randn(&[5, 3, 1, 1], seed + 3),
                randn(&[5], seed + 4),
            ];
            check(&inputs, |t| {
                let se = SqueezeExcite {
                    w1: &t[1],
                    b1: &t[2],
                    w2: &t[3],
                    b2: &t[4],
                    act,
                    gate,
                };
                t[0].to_memory_format(format)?.squeeze_excite(se)
            });
        }
    }
}

#[test]
fn grad_scaled_dot_product_attention_plain_causal_and_scaled() {
    // [B, H, L, E] queries against S = 7 keys; causal with L ≠ S; an explicit scale.
    let inputs = [
        randn(&[2, 2, 5, 6], 40),
        randn(&[2, 2, 7, 6], 41),
        randn(&[2, 2, 7, 6], 42),
    ];
    for (scale, causal) in [(None, false), (None, true), (Some(0.8), false)] {
        check(&inputs, |t| {
            Tensor::scaled_dot_product_attention(&t[0], &t[1], &t[2], scale, causal)
        });
    }
}

#[test]
fn grad_scaled_dot_product_attention_bias() {
    // Biases broadcast over [B, H] = [2, 2] queries (L = 5) against S = 7 keys: per head, per
    // batch, one for all under the causal mask; every input's gradient, the bias's summed over
    // the broadcast dims.
    for (bshape, causal) in [
        (&[2, 5, 7][..], false),
        (&[2, 1, 5, 7], false),
        (&[5, 7], true),
    ] {
        let inputs = [
            randn(&[2, 2, 5, 6], 43),
            randn(&[2, 2, 7, 6], 44),
            randn(&[2, 2, 7, 6], 45),
            randn(bshape, 46),
        ];
        check(&inputs, |t| {
            let opts = AttnOptions {
                causal,
                bias: Some(&t[3]),
                ..Default::default()
            };
            Tensor::scaled_dot_product_attention_with(&t[0], &t[1], &t[2], opts)
        });
    }
}
