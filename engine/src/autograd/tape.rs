//! The tape: the [`Node`]s ops record, and backward's walk over them from a root in reverse
//! topological order, accumulating into leaves' `.grad()` or into a map ([`leaf_grads`]).

use super::grad_mode::{is_grad_enabled, no_grad};
use crate::{Error, Result, Tensor, TensorId};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Computes the gradients of an op's inputs from the gradient of its output.
pub type BackwardFn = Box<dyn Fn(&Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync>;

/// One recorded op: its inputs and how to push a gradient back to them.
pub struct Node {
    pub(crate) op: &'static str,
    pub(crate) inputs: Vec<Tensor>,
    backward: BackwardFn,
}

/// A node for an op over `inputs` if recording is on and any input requires grad.
pub(crate) fn record(
    op: &'static str,
    inputs: &[&Tensor],
    backward: impl Fn(&Tensor) -> Result<Vec<Option<Tensor>>> + Send + Sync + 'static,
) -> Option<Arc<Node>> {
    if !is_grad_enabled() || !inputs.iter().any(|t| t.requires_grad()) {
        return None;
    }
    Some(Arc::new(Node {
        op,
        inputs: inputs.iter().map(|&t| t.clone()).collect(),
        backward: Box::new(backward),
    }))
}

/// Tensors reachable from `root` through recorded nodes, ordered so each comes before its inputs.
fn topological_order(root: &Tensor) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut visited = HashSet::new();
    let mut stack = vec![(root.clone(), false)];
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if !visited.insert(t.id()) {
            continue;
        }
        stack.push((t.clone(), true));
        if let Some(node) = t.node() {
            for input in node
                .inputs
                .iter()
                .filter(|i| i.requires_grad() && !visited.contains(&i.id()))
            {
                stack.push((input.clone(), false));
            }
        }
    }
    order.reverse();
    order
}

fn accumulate(slot: Option<Tensor>, g: Tensor) -> Result<Tensor> {
    match slot {
        Some(prev) => prev.add(&g),
        None => Ok(g),
    }
}

/// Called with each leaf once its gradient for this backward is complete (accumulated into
/// `.grad()`): a leaf is reached after every op that reads it, so nothing adds to it later in
/// the same backward. Data-parallel training starts a bucket's all-reduce from it (PyTorch's
/// `register_post_accumulate_grad_hook`).
pub type LeafHook<'a> = &'a mut dyn FnMut(&Tensor);

/// Runs backward from `root`; `grad` defaults to 1 for a scalar root; `hook` hears each leaf
/// whose gradient is complete.
pub(crate) fn backward(
    root: &Tensor,
    grad: Option<Tensor>,
    mut hook: Option<LeafHook>,
) -> Result<()> {
    if !root.requires_grad() {
        return Err(Error::NoGraph);
    }
    let grad = match grad {
        Some(g) => g,
        None if root.numel() == 1 => Tensor::ones_like(root)?,
        None => return Err(Error::NonScalarBackward(root.shape().to_vec())),
    };
    propagate(root, grad, &mut |leaf, g| {
        leaf.accumulate_grad(g)?;
        if let Some(hook) = hook.as_mut() {
            hook(leaf);
        }
        Ok(())
    })
}

/// The complete gradient of every leaf that `grad` (the gradient of `root`) reaches, by leaf
/// id, leaving every `.grad()` untouched (what `torch.autograd.grad` computes).
pub(crate) fn leaf_grads(root: &Tensor, grad: Tensor) -> Result<HashMap<TensorId, Tensor>> {
    let mut out = HashMap::new();
    propagate(root, grad, &mut |leaf, g| {
        out.insert(leaf.id(), g);
        Ok(())
    })?;
    Ok(out)
}

/// Walks the graph from `root` (whose gradient is `grad`) in reverse topological order, handing
/// each leaf its complete gradient once.
fn propagate(
    root: &Tensor,
    grad: Tensor,
    leaf_sink: &mut dyn FnMut(&Tensor, Tensor) -> Result<()>,
) -> Result<()> {
    let _guard = no_grad();
    let mut grads: HashMap<TensorId, Tensor> = HashMap::from([(root.id(), grad)]);
    for t in topological_order(root) {
        let Some(g) = grads.remove(&t.id()) else {
            continue;
        };
        let Some(node) = t.node() else {
            leaf_sink(&t, g)?;
            continue;
        };
        let input_grads = (node.backward)(&g)?;
        for (input, ig) in node.inputs.iter().zip(input_grads) {
            let Some(ig) = ig else { continue };
            if !input.requires_grad() {
                continue;
            }
            if ig.shape() != input.shape() {
                return Err(Error::ShapeMismatch {
                    op: node.op,
                    lhs: ig.shape().to_vec(),
                    rhs: input.shape().to_vec(),
                });
            }
            let prev = grads.remove(&input.id());
            grads.insert(input.id(), accumulate(prev, ig)?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{DType, Tensor};

    #[test]
    fn leaf_hook_hears_each_leaf_once_with_its_complete_gradient() {
        let leaf = |v: Vec<f32>| {
            Tensor::from_vec(v, &[2])
                .unwrap()
                .requires_grad_(true)
                .clone()
        };
        let (a, b) = (leaf(vec![1.0, 2.0]), leaf(vec![3.0, -4.0]));
        let frozen = Tensor::ones(&[2], DType::F32).unwrap();
        // a is read twice: its gradient b + 1 is complete only after both uses.
        let loss = a
            .mul(&b)
            .unwrap()
            .add(&a)
            .unwrap()
            .add(&frozen)
            .unwrap()
            .sum_all()
            .unwrap();
        let mut heard = Vec::new();
        loss.backward_hooked(&mut |t| {
            heard.push((t.id(), t.grad().unwrap().to_vec::<f32>().unwrap()))
        })
        .unwrap();
        heard.sort_by_key(|h| h.0 != a.id());
        assert_eq!(
            heard,
            vec![(a.id(), vec![4.0, -3.0]), (b.id(), vec![1.0, 2.0])]
        );
    }
}
