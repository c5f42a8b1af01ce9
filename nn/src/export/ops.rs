//! Each traced kiln op written as standard ONNX operators of opset 17 or 18: fused ops (BN with
//! residual and ReLU, squeeze-excite, attention, linear) as their parts, GELU as its Erf formula.

use super::graph::{refuse, Graph};
use super::proto::{attr_float, attr_int, attr_ints, Data};
use crate::Result;
use kiln_engine::trace::{BinaryOp, CmpOp, Op, PoolKind, ReduceOp, UnaryOp, Window};
use kiln_engine::{DType, Tensor};

/// Writes `op` over the values `ins` (whose traced tensors are `inputs`); `out` is its output at
/// the two traced batch sizes. Returns the name of the value it computes.
pub(crate) fn emit(
    g: &mut Graph,
    op: &Op,
    ins: &[String],
    inputs: &[Tensor],
    out: [&Tensor; 2],
) -> Result<String> {
    // Every op reads an input but the random mask, which is refused.
    let x = ins.first().map_or("", String::as_str);
    let rank = inputs.first().map_or(0, |t| t.rank() as i64);
    Ok(match op {
        Op::Unary(u) => unary(g, *u, x),
        Op::Binary(b) => g.node(binary_name(*b), &[x, &ins[1]], vec![]),
        Op::Compare(c) => compare(g, *c, x, &ins[1]),
        Op::Where => {
            let cond = match inputs[0].dtype() {
                DType::Bool => x.to_string(),
                _ => g.node("Cast", &[x], vec![attr_int("to", elem_type(DType::Bool)?)]),
            };
            g.node("Where", &[&cond, &ins[1], &ins[2]], vec![])
        }
        Op::Cast(d) => g.node("Cast", &[x], vec![attr_int("to", elem_type(*d)?)]),
        Op::Conv { params: p, .. } => {
            let refs: Vec<&str> = ins.iter().map(String::as_str).collect();
            let k = &inputs[1].shape()[2..];
            let attrs = vec![
                attr_ints("kernel_shape", &[k[0] as i64, k[1] as i64]),
                attr_ints("strides", &ints(&p.stride)),
                attr_ints("dilations", &ints(&p.dilation)),
                attr_ints("pads", &ints(&[p.padding, p.padding].concat())),
                attr_int("group", p.groups as i64),
            ];
            g.node("Conv", &refs, attrs)
        }
        Op::BatchNorm {
            eps,
            weight,
            bias,
            residual,
            relu,
            training,
        } => {
            let c = inputs[0].shape()[1];
            let mut rest = ins[1..].iter();
            let scale = match weight {
                true => rest.next().cloned().unwrap_or_default(),
                false => g.constant(&[c], Data::F32(vec![1.0; c])),
            };
            let shift = match bias {
                true => rest.next().cloned().unwrap_or_default(),
                false => g.constant(&[c], Data::F32(vec![0.0; c])),
            };
            // Running statistics are inputs whenever the layer keeps them (in training too).
            let given = [*weight, *bias, *residual].iter().filter(|&&b| b).count();
            let stats = match ins.len() - 1 - given {
                2 => (rest.next().cloned(), rest.next().cloned()),
                _ => (None, None),
            };
            let mut y = match (training, stats.0, stats.1) {
                (true, _, _) => batch_statistics_norm(g, x, rank, c, &scale, &shift, *eps),
                (false, Some(mean), Some(var)) => g.node(
                    "BatchNormalization",
                    &[x, &scale, &shift, &mean, &var],
                    vec![attr_float("epsilon", *eps as f32)],
                ),
                (false, _, _) => return Err(refuse("BatchNorm without running statistics")),
            };
            if *residual {
                let r = rest.next().cloned().unwrap_or_default();
                y = g.node("Add", &[&y, &r], vec![]);
            }
            match relu {
                true => g.node("Relu", &[&y], vec![]),
                false => y,
            }
        }
        Op::LayerNorm {
            eps, weight, bias, ..
        } => {
            let d = *inputs[0].shape().last().unwrap_or(&1);
            let scale = match weight {
                true => ins[1].clone(),
                false => g.constant(&[d], Data::F32(vec![1.0; d])),
            };
            // A zero β where there is none: tract reads LayerNormalization with all three inputs.
            let shift = match bias {
                true => ins[ins.len() - 1].clone(),
                false => g.constant(&[d], Data::F32(vec![0.0; d])),
            };
            g.node(
                "LayerNormalization",
                &[x, &scale, &shift],
                vec![attr_int("axis", -1), attr_float("epsilon", *eps as f32)],
            )
        }
        Op::MatMul => g.node("MatMul", &[x, &ins[1]], vec![]),
        Op::Linear { bias } => {
            let wt = g.node("Transpose", &[&ins[1]], vec![attr_ints("perm", &[1, 0])]);
            let y = g.node("MatMul", &[x, &wt], vec![]);
            match bias {
                true => g.node("Add", &[&y, &ins[2]], vec![]),
                false => y,
            }
        }
        Op::Pool { kind, out: size } => pool(g, *kind, *size, x, &inputs[0])?,
        Op::Reduce { op, dims, keepdim } => {
            let name = match op {
                ReduceOp::Sum => "ReduceSum",
                ReduceOp::Max => "ReduceMax",
                ReduceOp::Min => "ReduceMin",
            };
            let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
            reduce(g, name, x, &dims, *keepdim)
        }
        Op::Softmax { dim, log } => g.node(
            if *log { "LogSoftmax" } else { "Softmax" },
            &[x],
            vec![attr_int("axis", *dim as i64)],
        ),
        Op::SqueezeExcite { act, gate } => {
            let s = g.node("GlobalAveragePool", &[x], vec![]);
            let s = g.node("Conv", &[&s, &ins[1], &ins[2]], vec![]);
            let s = unary(g, *act, &s);
            let s = g.node("Conv", &[&s, &ins[3], &ins[4]], vec![]);
            let s = unary(g, *gate, &s);
            g.node("Mul", &[x, &s], vec![])
        }
        Op::Attention {
            scale,
            causal,
            bias,
        } => attention(g, ins, inputs, *scale, *causal, *bias),
        Op::Reshape => {
            let shape = g.shape("Reshape", out[0].shape(), out[1].shape(), true)?;
            g.node("Reshape", &[x, &shape], vec![])
        }
        Op::Permute(perm) => g.node("Transpose", &[x], vec![attr_ints("perm", &ints(perm))]),
        Op::Narrow { dim, start, len } => {
            let starts = g.ints(&[*start as i64]);
            let ends = g.ints(&[(*start + *len) as i64]);
            let axes = g.ints(&[*dim as i64]);
            g.node("Slice", &[x, &starts, &ends, &axes], vec![])
        }
        Op::Expand => {
            // Expand broadcasts both ways: a dim the input already has at full size can be 1.
            let ones = |o: &Tensor| -> Vec<usize> {
                let pad = o.rank() - inputs[0].rank();
                (0..o.rank())
                    .map(
                        |d| match d >= pad && inputs[0].shape()[d - pad] == o.shape()[d] {
                            true => 1,
                            false => o.shape()[d],
                        },
                    )
                    .collect()
            };
            let shape = g.shape("Expand", &ones(out[0]), &ones(out[1]), false)?;
            g.node("Expand", &[x, &shape], vec![])
        }
        Op::RandomMask { p } => {
            return Err(crate::Error::ExportOption {
                option: "training",
                msg: format!(
                    "the forward draws a random mask (dropout or drop path at rate {p}, active \
                     in training mode), which a deterministic graph cannot hold; export with \
                     dropout and drop path at 0 (--model-kwargs drop_rate=0 drop_path_rate=0)"
                ),
            })
        }
        Op::Copy => x.to_string(),
        Op::Concat { dim } => {
            let refs: Vec<&str> = ins.iter().map(String::as_str).collect();
            g.node("Concat", &refs, vec![attr_int("axis", *dim as i64)])
        }
        Op::Pad2d([left, right, top, bottom]) => {
            let mut pads = vec![0i64; 2 * rank as usize];
            let r = rank as usize;
            pads[r - 2] = *top as i64;
            pads[r - 1] = *left as i64;
            pads[2 * r - 2] = *bottom as i64;
            pads[2 * r - 1] = *right as i64;
            let pads = g.ints(&pads);
            g.node("Pad", &[x, &pads], vec![])
        }
    })
}

/// BatchNorm in training mode, as torch.onnx's TRAINING export computes it: the batch's mean and
/// biased variance over every dim but the channels (dim 1), then γ·(x − μ)/√(σ² + ε) + β. The
/// running statistics are not updated: an inference runtime keeps no state between runs.
fn batch_statistics_norm(
    g: &mut Graph,
    x: &str,
    rank: i64,
    c: usize,
    scale: &str,
    shift: &str,
    eps: f64,
) -> String {
    let axes: Vec<i64> = (0..rank).filter(|&d| d != 1).collect();
    let mean = reduce(g, "ReduceMean", x, &axes, true);
    let centered = g.node("Sub", &[x, &mean], vec![]);
    let squares = g.node("Mul", &[&centered, &centered], vec![]);
    let var = reduce(g, "ReduceMean", &squares, &axes, true);
    let eps = g.scalar(eps);
    let var = g.node("Add", &[&var, &eps], vec![]);
    let std = g.node("Sqrt", &[&var], vec![]);
    let normed = g.node("Div", &[&centered, &std], vec![]);
    // γ and β broadcast along the channel dim: [C] as [1, C, 1, ...].
    let per_channel: Vec<i64> = (0..rank)
        .map(|d| if d == 1 { c as i64 } else { 1 })
        .collect();
    let shape = g.ints(&per_channel);
    let scale = g.node("Reshape", &[scale, &shape], vec![]);
    let shift = g.node("Reshape", &[shift, &shape], vec![]);
    let y = g.node("Mul", &[&normed, &scale], vec![]);
    g.node("Add", &[&y, &shift], vec![])
}

fn ints(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&d| d as i64).collect()
}

/// ONNX's element type for a kiln dtype.
fn elem_type(d: DType) -> Result<i64> {
    use super::onnx::tensor_proto::DataType as T;
    Ok(match d {
        DType::F32 => T::Float,
        DType::F64 => T::Double,
        DType::F16 => T::Float16,
        DType::BF16 => T::Bfloat16,
        DType::I64 => T::Int64,
        DType::I32 => T::Int32,
        DType::U8 => T::Uint8,
        DType::Bool => T::Bool,
    } as i64)
}

fn binary_name(b: BinaryOp) -> &'static str {
    match b {
        BinaryOp::Add => "Add",
        BinaryOp::Sub => "Sub",
        BinaryOp::Mul => "Mul",
        BinaryOp::Div => "Div",
        BinaryOp::Maximum => "Max",
        BinaryOp::Minimum => "Min",
    }
}

fn compare(g: &mut Graph, c: CmpOp, a: &str, b: &str) -> String {
    match c {
        CmpOp::Eq => g.node("Equal", &[a, b], vec![]),
        CmpOp::Ne => {
            let eq = g.node("Equal", &[a, b], vec![]);
            g.node("Not", &[&eq], vec![])
        }
        CmpOp::Lt => g.node("Less", &[a, b], vec![]),
        CmpOp::Le => g.node("LessOrEqual", &[a, b], vec![]),
        CmpOp::Gt => g.node("Greater", &[a, b], vec![]),
        CmpOp::Ge => g.node("GreaterOrEqual", &[a, b], vec![]),
    }
}

/// An elementwise function; below opset 20 GELU is its Erf (or tanh) formula.
fn unary(g: &mut Graph, u: UnaryOp, x: &str) -> String {
    let simple = |name| move |g: &mut Graph| g.node(name, &[x], vec![]);
    match u {
        UnaryOp::Neg => simple("Neg")(g),
        UnaryOp::Exp => simple("Exp")(g),
        UnaryOp::Log => simple("Log")(g),
        UnaryOp::Sqrt => simple("Sqrt")(g),
        UnaryOp::Abs => simple("Abs")(g),
        UnaryOp::Relu => simple("Relu")(g),
        UnaryOp::Sigmoid => simple("Sigmoid")(g),
        UnaryOp::Tanh => simple("Tanh")(g),
        UnaryOp::HardSwish => simple("HardSwish")(g),
        UnaryOp::Recip => simple("Reciprocal")(g),
        UnaryOp::Rsqrt => {
            let s = g.node("Sqrt", &[x], vec![]);
            g.node("Reciprocal", &[&s], vec![])
        }
        UnaryOp::Silu => {
            let s = g.node("Sigmoid", &[x], vec![]);
            g.node("Mul", &[x, &s], vec![])
        }
        UnaryOp::HardSigmoid => g.node(
            "HardSigmoid",
            &[x],
            vec![attr_float("alpha", 1.0 / 6.0), attr_float("beta", 0.5)],
        ),
        UnaryOp::Square => g.node("Mul", &[x, x], vec![]),
        UnaryOp::Powf(e) => {
            let e = g.scalar(e);
            g.node("Pow", &[x, &e], vec![])
        }
        UnaryOp::Clamp(lo, hi) => {
            let (lo, hi) = (g.scalar(lo), g.scalar(hi));
            g.node("Clip", &[x, &lo, &hi], vec![])
        }
        UnaryOp::Affine(a, b) => {
            let mut y = x.to_string();
            if a != 1.0 {
                let a = g.scalar(a);
                y = g.node("Mul", &[&y, &a], vec![]);
            }
            if b != 0.0 {
                let b = g.scalar(b);
                y = g.node("Add", &[&y, &b], vec![]);
            }
            y
        }
        UnaryOp::Gelu => {
            // x·(1 + erf(x/√2))/2
            let r2 = g.scalar(std::f64::consts::SQRT_2);
            let t = g.node("Div", &[x, &r2], vec![]);
            let t = g.node("Erf", &[&t], vec![]);
            half_x_one_plus(g, x, &t)
        }
        UnaryOp::GeluTanh => {
            // x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))/2
            let c = g.scalar(0.044715);
            let x3 = g.node("Mul", &[x, x], vec![]);
            let x3 = g.node("Mul", &[&x3, x], vec![]);
            let t = g.node("Mul", &[&x3, &c], vec![]);
            let t = g.node("Add", &[x, &t], vec![]);
            let k = g.scalar((2.0 / std::f64::consts::PI).sqrt());
            let t = g.node("Mul", &[&t, &k], vec![]);
            let t = g.node("Tanh", &[&t], vec![]);
            half_x_one_plus(g, x, &t)
        }
    }
}

/// x·(1 + t)/2, GELU's shared tail.
fn half_x_one_plus(g: &mut Graph, x: &str, t: &str) -> String {
    let one = g.scalar(1.0);
    let half = g.scalar(0.5);
    let t = g.node("Add", &[t, &one], vec![]);
    let y = g.node("Mul", &[x, &t], vec![]);
    g.node("Mul", &[&y, &half], vec![])
}

/// A reduction over `axes`: an attribute up to opset 17 for ReduceMax/Min/Mean, an input from 18
/// (ReduceSum takes an input since 13).
fn reduce(g: &mut Graph, name: &str, x: &str, axes: &[i64], keepdim: bool) -> String {
    let keep = attr_int("keepdims", i64::from(keepdim));
    if name != "ReduceSum" && g.opset < 18 {
        return g.node(name, &[x], vec![attr_ints("axes", axes), keep]);
    }
    let axes = g.ints(axes);
    g.node(name, &[x, &axes], vec![keep])
}

fn window_attrs(w: &Window) -> Vec<super::onnx::AttributeProto> {
    vec![
        attr_ints("kernel_shape", &ints(&w.kernel)),
        attr_ints("strides", &ints(&w.stride)),
        attr_ints("pads", &ints(&[w.padding, w.padding].concat())),
        attr_int("ceil_mode", i64::from(w.ceil_mode)),
    ]
}

/// Pooling: windows as MaxPool/AveragePool, adaptive pooling as the global ops or an even
/// window where the input divides evenly.
fn pool(g: &mut Graph, kind: PoolKind, out: [usize; 2], x: &str, input: &Tensor) -> Result<String> {
    Ok(match kind {
        PoolKind::Max(w) => {
            let mut attrs = window_attrs(&w);
            attrs.push(attr_ints("dilations", &ints(&w.dilation)));
            g.node("MaxPool", &[x], attrs)
        }
        PoolKind::Avg(w, count_include_pad) => {
            if w.dilation != [1, 1] {
                return Err(refuse(format!(
                    "AveragePool with dilation {:?} needs opset 19",
                    w.dilation
                )));
            }
            let mut attrs = window_attrs(&w);
            attrs.push(attr_int("count_include_pad", i64::from(count_include_pad)));
            g.node("AveragePool", &[x], attrs)
        }
        PoolKind::AdaptiveAvg | PoolKind::AdaptiveMax => {
            let max = matches!(kind, PoolKind::AdaptiveMax);
            if out == [1, 1] {
                return Ok(g.node(
                    if max {
                        "GlobalMaxPool"
                    } else {
                        "GlobalAveragePool"
                    },
                    &[x],
                    vec![],
                ));
            }
            let (h, w) = (input.shape()[2], input.shape()[3]);
            if h % out[0] != 0 || w % out[1] != 0 {
                if max {
                    return Err(refuse(format!(
                        "adaptive max pooling of {h}x{w} to {}x{} (uneven windows) has no ONNX operator",
                        out[0], out[1]
                    )));
                }
                // Averages over a rectangle separate: Ph·x·Pwᵀ with constant window matrices.
                let pw = window_means(w, out[1], true);
                let ph = window_means(h, out[0], false);
                let pw = g.constant(&[w, out[1]], Data::F32(pw));
                let ph = g.constant(&[out[0], h], Data::F32(ph));
                let y = g.node("MatMul", &[x, &pw], vec![]);
                return Ok(g.node("MatMul", &[&ph, &y], vec![]));
            }
            let k = [h / out[0], w / out[1]];
            let attrs = vec![
                attr_ints("kernel_shape", &ints(&k)),
                attr_ints("strides", &ints(&k)),
            ];
            g.node(if max { "MaxPool" } else { "AveragePool" }, &[x], attrs)
        }
    })
}

/// The matrix averaging each adaptive-pooling window of `len` inputs into `out` outputs (window
/// i is ⌊i·len/out⌋..⌈(i+1)·len/out⌉, as PyTorch's): `[out, len]`, or `[len, out]` transposed.
fn window_means(len: usize, out: usize, transposed: bool) -> Vec<f32> {
    let mut m = vec![0f32; len * out];
    for i in 0..out {
        let (start, end) = (i * len / out, ((i + 1) * len).div_ceil(out));
        for j in start..end {
            let at = if transposed { j * out + i } else { i * len + j };
            m[at] = 1.0 / (end - start) as f32;
        }
    }
    m
}

/// softmax(scale·q·kᵀ + bias)·v as MatMul, Softmax, MatMul; causal masking as a constant
/// additive −∞ bias above the diagonal.
fn attention(
    g: &mut Graph,
    ins: &[String],
    inputs: &[Tensor],
    scale: f64,
    causal: bool,
    bias: bool,
) -> String {
    let rank = inputs[1].rank() as i64;
    let mut perm: Vec<i64> = (0..rank).collect();
    perm.swap(rank as usize - 2, rank as usize - 1);
    let kt = g.node("Transpose", &[&ins[1]], vec![attr_ints("perm", &perm)]);
    let s = g.node("MatMul", &[&ins[0], &kt], vec![]);
    let f = g.scalar(scale);
    let mut s = g.node("Mul", &[&s, &f], vec![]);
    if bias {
        s = g.node("Add", &[&s, &ins[3]], vec![]);
    }
    if causal {
        let l = inputs[0].shape()[inputs[0].rank() - 2];
        let n = inputs[1].shape()[inputs[1].rank() - 2];
        let mask: Vec<f32> = (0..l * n)
            .map(|i| match i % n > i / n {
                true => f32::NEG_INFINITY,
                false => 0.0,
            })
            .collect();
        let m = g.constant(&[l, n], Data::F32(mask));
        s = g.node("Add", &[&s, &m], vec![]);
    }
    let p = g.node("Softmax", &[&s], vec![attr_int("axis", -1)]);
    g.node("MatMul", &[&p, &ins[2]], vec![])
}
