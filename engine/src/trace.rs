//! Op tracing for export: [`trace`] runs a closure and returns, besides its result, every op the
//! closure ran as a [`Step`] (the op with its attributes, its input handles and its output), as
//! `torch.jit.trace` does. Only outermost ops are recorded: an op built from others (a biased
//! convolution's add, a reshape's copy) is one step. Outside [`trace`] the cost is one
//! thread-local read per op.

use crate::{Conv2dParams, DType, Result, Tensor};
use std::cell::RefCell;

pub use crate::cpu::pool::PoolKind;
pub use kiln_kernels::cpu::elementwise::{BinaryOp, CmpOp, UnaryOp};
pub use kiln_kernels::cpu::pool::Window;
pub use kiln_kernels::cpu::reduce::ReduceOp;

/// One traced op and its attributes; inputs are listed in [`Step::inputs`] in the order given.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// An elementwise function of `[x]`.
    Unary(UnaryOp),
    /// A broadcasting binary op of `[a, b]`.
    Binary(BinaryOp),
    /// A broadcasting comparison of `[a, b]` (1 or 0 in a's dtype).
    Compare(CmpOp),
    /// `[cond, a, b]`: a where cond is non-zero, else b.
    Where,
    /// `[x]` converted to a dtype.
    Cast(DType),
    /// `[x, w, bias?]`: a 2-d convolution.
    Conv {
        /// Stride, padding, dilation and groups.
        params: Conv2dParams,
        /// Whether a bias follows the weight.
        bias: bool,
    },
    /// `[x, weight?, bias?, mean, var, residual?]`: BatchNorm with running statistics (or batch
    /// statistics when `training`), plus the residual, then ReLU when `relu`.
    BatchNorm {
        /// Variance epsilon.
        eps: f64,
        /// Whether γ is given.
        weight: bool,
        /// Whether β is given.
        bias: bool,
        /// Whether a residual is added before the activation.
        residual: bool,
        /// Whether ReLU follows.
        relu: bool,
        /// Batch statistics (training) instead of the running ones.
        training: bool,
    },
    /// `[x, weight?, bias?]`: LayerNorm over the last dim.
    LayerNorm {
        /// Variance epsilon.
        eps: f64,
        /// Whether γ is given.
        weight: bool,
        /// Whether β is given.
        bias: bool,
    },
    /// `[a, b]`: batched matrix product.
    MatMul,
    /// `[x, w, bias?]`: x·wᵀ + bias.
    Linear {
        /// Whether a bias follows the weight.
        bias: bool,
    },
    /// `[x]` NCHW pooled to `out` spatially.
    Pool {
        /// The pooling kind and window.
        kind: PoolKind,
        /// Output (h, w).
        out: [usize; 2],
    },
    /// `[x]` reduced over `dims`.
    Reduce {
        /// Sum, max or min.
        op: ReduceOp,
        /// The reduced dims (sorted).
        dims: Vec<usize>,
        /// Whether reduced dims stay as size 1.
        keepdim: bool,
    },
    /// `[x]`: softmax (or log-softmax) over `dim`.
    Softmax {
        /// The normalized dim.
        dim: usize,
        /// Log-softmax.
        log: bool,
    },
    /// `[x, w1, b1, w2, b2]`: x · gate(w2·act(w1·mean(x) + b1) + b2), as 1×1 convs.
    SqueezeExcite {
        /// Activation between the two convs.
        act: UnaryOp,
        /// The gate.
        gate: UnaryOp,
    },
    /// `[q, k, v, bias?]`: softmax(scale·q·kᵀ + bias)·v.
    Attention {
        /// The factor on q·kᵀ.
        scale: f64,
        /// Query i sees keys j ≤ i only.
        causal: bool,
        /// Whether an additive score bias is given.
        bias: bool,
    },
    /// `[x]` with the same elements in the output's shape (reshape, squeeze, unsqueeze).
    Reshape,
    /// `[x]` with its dims permuted.
    Permute(Vec<usize>),
    /// `[x]` narrowed to `start..start + len` along `dim`.
    Narrow {
        /// The narrowed dim.
        dim: usize,
        /// First index kept.
        start: usize,
        /// Number kept.
        len: usize,
    },
    /// `[x]` broadcast to the output's shape.
    Expand,
    /// `[x]` copied into another memory layout (same values).
    Copy,
    /// The inputs concatenated along `dim`.
    Concat {
        /// The joined dim.
        dim: usize,
    },
    /// `[x]` zero-padded on its last two dims by `[left, right, top, bottom]`.
    Pad2d([usize; 4]),
    /// `[]`: a dropout or drop-path keep mask, {0, 1/(1-p)}, drawn from the generator.
    RandomMask {
        /// The drop probability.
        p: f64,
    },
}

/// One traced op: the op, its input handles and its output handle.
#[derive(Debug, Clone)]
pub struct Step {
    /// The op and its attributes.
    pub op: Op,
    /// The inputs, in the order [`Op`] documents.
    pub inputs: Vec<Tensor>,
    /// The output.
    pub output: Tensor,
}

struct Recording {
    depth: usize,
    steps: Vec<Step>,
}

thread_local! {
    static RECORDING: RefCell<Option<Recording>> = const { RefCell::new(None) };
}

/// Runs `f`, returning its result and the ops it ran on this thread, outermost ones only.
pub fn trace<R>(f: impl FnOnce() -> R) -> (R, Vec<Step>) {
    let outer = RECORDING.with(|r| {
        r.borrow_mut().replace(Recording {
            depth: 0,
            steps: Vec::new(),
        })
    });
    let out = f();
    let rec = RECORDING.with(|r| std::mem::replace(&mut *r.borrow_mut(), outer));
    (out, rec.map(|r| r.steps).unwrap_or_default())
}

/// What a traced op returns: its output tensor, possibly with more (a convolution's statistics).
pub(crate) trait Traced {
    fn output(&self) -> &Tensor;
}

impl Traced for Tensor {
    fn output(&self) -> &Tensor {
        self
    }
}

/// Leaves the nesting level of an op on drop (also when it fails or panics).
struct Level;

impl Drop for Level {
    fn drop(&mut self) {
        RECORDING.with(|r| {
            if let Some(rec) = r.borrow_mut().as_mut() {
                rec.depth -= 1;
            }
        });
    }
}

/// Runs the op `f` over `inputs`, recording it as `op()` when a trace is on and no traced op
/// encloses it.
pub(crate) fn traced<'a, T: Traced>(
    op: impl FnOnce() -> Op,
    inputs: impl IntoIterator<Item = &'a Tensor>,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let outermost = RECORDING.with(|r| {
        r.borrow_mut().as_mut().map(|rec| {
            rec.depth += 1;
            rec.depth == 1
        })
    });
    let Some(outermost) = outermost else {
        return f();
    };
    let level = Level;
    let out = f()?;
    drop(level);
    if outermost {
        let step = Step {
            op: op(),
            inputs: inputs.into_iter().cloned().collect(),
            output: out.output().clone(),
        };
        RECORDING.with(|r| {
            if let Some(rec) = r.borrow_mut().as_mut() {
                rec.steps.push(step);
            }
        });
    }
    Ok(out)
}
