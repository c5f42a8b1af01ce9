//! How each traced op carries channel ids from its inputs to its output and couples the
//! parameters it reads (Torch-Pruning's per-layer pruners and index mappings).

use super::label::Label;
use super::tracer::{MacTerm, Role, Tracer};
use crate::Result;
use kiln_engine::trace::{Op, Step};
use kiln_engine::Tensor;

/// Carries the ids of `step`'s inputs to its output.
pub(crate) fn apply(t: &mut Tracer<'_>, step: &Step) -> Result<()> {
    let (ins, out) = (&step.inputs, &step.output);
    if ins.iter().any(|i| i.id() == out.id()) {
        return Ok(());
    }
    match &step.op {
        Op::Unary(_) | Op::Cast(_) | Op::Copy | Op::Pad2d(_) => pass(t, &ins[0], out),
        // A mask drawn from nothing carries no channel.
        Op::RandomMask { .. } => {}
        Op::Pool { .. } => pool(t, &ins[0], out),
        Op::Binary(_) | Op::Compare(_) | Op::Where => broadcast(t, ins, out),
        Op::Conv { params, bias } => conv(t, ins, out, params.groups, *bias),
        Op::Linear { bias } => linear(t, ins, out, *bias),
        Op::BatchNorm {
            weight,
            bias,
            residual,
            ..
        } => batch_norm(t, ins, out, *weight, *bias, *residual),
        Op::LayerNorm { weight, bias, .. } => layer_norm(t, ins, out, *weight, *bias),
        Op::SqueezeExcite { .. } => squeeze_excite(t, ins, out),
        Op::Attention { .. } => attention(t, ins, out),
        Op::Reshape => reshape(t, &ins[0], out),
        Op::Permute(perm) => {
            view_param(t, &ins[0], out, |axes| {
                perm.iter().map(|&p| axes[p]).collect()
            });
            relabel(t, &ins[0], out, |l| Some(l.permuted(perm)));
        }
        Op::Narrow { dim, start, len } => {
            relabel(t, &ins[0], out, |l| Some(l.narrowed(*dim, *start, *len)))
        }
        Op::Expand => expand(t, &ins[0], out),
        Op::Concat { dim } => concat(t, ins, out, *dim),
        Op::Reduce { dims, keepdim, .. } => reduce(t, &ins[0], out, dims, *keepdim),
        Op::Softmax { dim, .. } => {
            let over_channels = t
                .labels
                .get(&ins[0].id())
                .is_some_and(|l| l.axes.contains(dim));
            match over_channels {
                true => t.freeze_value(&ins[0]),
                false => pass(t, &ins[0], out),
            }
        }
        Op::MatMul => {
            ins.iter().for_each(|i| t.freeze_value(i));
            let k = ins[0].shape().last().copied().unwrap_or(1);
            t.macs.push(MacTerm {
                factor: (out.numel() * k) as f64,
                ids: Vec::new(),
            });
        }
    }
    Ok(())
}

/// The output carries the input's ids unchanged.
fn pass(t: &mut Tracer<'_>, x: &Tensor, out: &Tensor) {
    view_param(t, x, out, |axes| axes.to_vec());
    relabel(t, x, out, |l| Some(l.clone()));
}

/// The output's label from the input's, or the input's channels frozen when it has none.
fn relabel(t: &mut Tracer<'_>, x: &Tensor, out: &Tensor, f: impl FnOnce(&Label) -> Option<Label>) {
    let Some(l) = t.labels.get(&x.id()).cloned() else {
        return;
    };
    match f(&l) {
        Some(l) => {
            t.labels.insert(out.id(), l);
        }
        None => t.freeze_value(x),
    }
}

/// A view of a parameter view is one too, with the axes `f` maps.
fn view_param(
    t: &mut Tracer<'_>,
    x: &Tensor,
    out: &Tensor,
    f: impl FnOnce(&[Option<usize>]) -> Vec<Option<usize>>,
) {
    if let Some((name, axes)) = t.views.get(&x.id()).cloned() {
        t.views.insert(out.id(), (name, f(&axes)));
    }
}

/// Pooling over H and W keeps the channels (axis 1).
fn pool(t: &mut Tracer<'_>, x: &Tensor, out: &Tensor) {
    let spatial = t
        .labels
        .get(&x.id())
        .is_some_and(|l| l.axes.iter().any(|&a| a >= 2));
    match spatial {
        true => t.freeze_value(x),
        false => pass(t, x, out),
    }
}

/// A broadcasting op: labeled inputs that fill the output's labeled axes are one channel index
/// by index; parameters broadcast against them (layer scale, position embedding) are coupled.
fn broadcast(t: &mut Tracer<'_>, ins: &[Tensor], out: &Tensor) {
    let rank = out.rank();
    let mut label: Option<Label> = None;
    for i in ins {
        let Some(l) = t.labels.get(&i.id()).cloned() else {
            continue;
        };
        let l = l.shifted(rank - i.rank()).canonical();
        let full = l
            .axes
            .iter()
            .zip(&l.dims)
            .all(|(&a, &d)| out.shape()[a] == d);
        match (&label, full) {
            (_, false) => t.freeze_value(i),
            (None, true) => label = Some(l),
            (Some(first), true) if first.axes == l.axes => t.ids.union_all(&first.ids, &l.ids),
            (Some(_), true) => t.freeze_value(i),
        }
    }
    let Some(label) = label else {
        return;
    };
    for i in ins {
        if t.labels.contains_key(&i.id()) {
            continue;
        }
        couple_broadcast(t, i, rank, &label);
    }
    t.labels.insert(out.id(), label);
}

/// Couples a parameter view broadcast against a one-axis `label`.
fn couple_broadcast(t: &mut Tracer<'_>, p: &Tensor, rank: usize, label: &Label) {
    let [axis] = label.axes[..] else {
        return;
    };
    let Some(local) = (axis + p.rank()).checked_sub(rank) else {
        return;
    };
    if p.shape().get(local) == Some(&label.ids.len()) {
        t.couple(p, local, &label.ids.clone(), Role::Out);
    }
}

/// A convolution: its filters are new channels (the input's, for a depthwise conv). A grouped
/// conv keeps its groups equal, as Torch-Pruning does: position j of every group is one channel,
/// on its input and on its output, so each group loses the same positions of its weight.
fn conv(t: &mut Tracer<'_>, ins: &[Tensor], out: &Tensor, groups: usize, bias: bool) {
    let (x, w) = (&ins[0], &ins[1]);
    let (oc, icg) = (w.shape()[0], w.shape()[1]);
    let k: usize = w.shape()[2..].iter().product();
    let positions = (out.numel() / oc.max(1)) as f64;
    let in_ids = t.label_on(x, 1);
    let depthwise = groups > 1 && icg == 1 && oc == in_ids.len();
    let grouped = groups > 1 && icg > 1 && in_ids.len() == groups * icg && oc % groups == 0;
    // Whether the filters' input axis is coupled to x's channels (not depthwise, not left whole).
    let reads_input = groups == 1 || grouped;
    let out_ids = if depthwise {
        in_ids.clone()
    } else if reads_input {
        let out_ids = t.ids.fresh(oc);
        let read = match grouped {
            true => {
                unite_across_groups(t, &in_ids, groups);
                unite_across_groups(t, &out_ids, groups);
                &in_ids[..icg]
            }
            false => &in_ids[..],
        };
        t.couple(w, 1, read, Role::In);
        out_ids
    } else {
        // A channel multiplier (several filters per input channel) or a layout kiln cannot
        // follow: left whole.
        in_ids.iter().for_each(|&i| t.ids.freeze(i));
        t.ids.fresh_frozen(oc)
    };
    t.couple(w, 0, &out_ids, Role::Out);
    if bias {
        t.couple(&ins[2], 0, &out_ids, Role::Out);
    }
    // MACs: positions · k · (input channels a filter reads) · filters.
    let (factor, ids) = match reads_input {
        true => (
            positions * k as f64 / groups as f64,
            vec![out_ids.clone(), in_ids],
        ),
        false => (positions * (k * icg) as f64, vec![out_ids.clone()]),
    };
    t.macs.push(MacTerm { factor, ids });
    t.labels.insert(out.id(), Label::along(1, out_ids));
}

/// Makes position j of each of the `groups` equal runs of `ids` one channel.
fn unite_across_groups(t: &mut Tracer<'_>, ids: &[usize], groups: usize) {
    let per = ids.len() / groups;
    for q in 1..groups {
        t.ids.union_all(&ids[..per], &ids[q * per..(q + 1) * per]);
    }
}

/// `x·wᵀ + b` over the last axis.
fn linear(t: &mut Tracer<'_>, ins: &[Tensor], out: &Tensor, bias: bool) {
    let (x, w) = (&ins[0], &ins[1]);
    let last = x.rank() - 1;
    let in_ids = t.label_on(x, last);
    t.couple(w, 1, &in_ids, Role::In);
    let out_ids = t.ids.fresh(w.shape()[0]);
    t.couple(w, 0, &out_ids, Role::Out);
    if bias {
        t.couple(&ins[2], 0, &out_ids, Role::Out);
    }
    let positions = (out.numel() / w.shape()[0].max(1)) as f64;
    t.macs.push(MacTerm {
        factor: positions,
        ids: vec![out_ids.clone(), in_ids],
    });
    t.labels.insert(out.id(), Label::along(last, out_ids));
}

/// BatchNorm: its γ, β and running statistics are the channel's; a fused residual is the same
/// channel.
fn batch_norm(
    t: &mut Tracer<'_>,
    ins: &[Tensor],
    out: &Tensor,
    weight: bool,
    bias: bool,
    residual: bool,
) {
    let ids = t.label_on(&ins[0], 1);
    let n_params = usize::from(weight) + usize::from(bias) + 2;
    for (k, p) in ins[1..=n_params].iter().enumerate() {
        t.couple(p, 0, &ids, Role::Out);
        if k == 0 && weight {
            if let Some(name) = t.param_name(p) {
                t.norm_weights.push(name);
            }
        }
    }
    if residual {
        let r = t.label_on(&ins[n_params + 1], 1);
        t.ids.union_all(&ids, &r);
    }
    t.labels.insert(out.id(), Label::along(1, ids));
}

/// LayerNorm over the last axis: its γ and β are the channel's, and its statistics read every
/// channel (removing one is not exact).
fn layer_norm(t: &mut Tracer<'_>, ins: &[Tensor], out: &Tensor, weight: bool, bias: bool) {
    let last = ins[0].rank() - 1;
    let ids = t.label_on(&ins[0], last);
    ids.iter().for_each(|&i| t.ids.normalize(i));
    let params = usize::from(weight) + usize::from(bias);
    for (k, p) in ins[1..=params].iter().enumerate() {
        t.couple(p, 0, &ids, Role::Out);
        if k == 0 && weight {
            if let Some(name) = t.param_name(p) {
                t.norm_weights.push(name);
            }
        }
    }
    t.labels.insert(out.id(), Label::along(last, ids));
}

/// Squeeze-excite `[x, w1, b1, w2, b2]`: the reduce conv reads the channels, its outputs are new
/// channels, the expand conv writes the input's.
fn squeeze_excite(t: &mut Tracer<'_>, ins: &[Tensor], out: &Tensor) {
    let ids = t.label_on(&ins[0], 1);
    let (w1, b1, w2, b2) = (&ins[1], &ins[2], &ins[3], &ins[4]);
    let rd = t.ids.fresh(w1.shape()[0]);
    t.couple(w1, 1, &ids, Role::In);
    t.couple(w1, 0, &rd, Role::Out);
    t.couple(b1, 0, &rd, Role::Out);
    t.couple(w2, 1, &rd, Role::In);
    t.couple(w2, 0, &ids, Role::Out);
    t.couple(b2, 0, &ids, Role::Out);
    let batch = ins[0].shape()[0] as f64;
    let terms = [vec![rd.clone(), ids.clone()], vec![ids.clone(), rd]];
    t.macs
        .extend(terms.into_iter().map(|ids| MacTerm { factor: batch, ids }));
    t.labels.insert(out.id(), Label::along(1, ids));
}

/// Attention over `[B, H, N, D]` q, k, v: a head is one channel (its q, k and v rows go
/// together); the output carries v's ids.
fn attention(t: &mut Tracer<'_>, ins: &[Tensor], out: &Tensor) {
    let heads = |t: &mut Tracer<'_>, x: &Tensor| -> Option<Label> {
        let l = t.labels.get(&x.id())?.canonical();
        (l.axes == [1, 3]).then_some(l)
    };
    let (q, k, v) = (heads(t, &ins[0]), heads(t, &ins[1]), heads(t, &ins[2]));
    let [nq, nk] = [ins[0].shape()[2], ins[1].shape()[2]];
    let batch = ins[0].shape()[0];
    let (Some(q), Some(k), Some(v)) = (q, k, v) else {
        ins.iter().for_each(|i| t.freeze_value(i));
        t.macs.push(MacTerm {
            factor: (2 * batch * nq * nk * ins[0].shape()[1] * ins[0].shape()[3]) as f64,
            ids: Vec::new(),
        });
        return;
    };
    let d = q.dims[1];
    for h in 0..q.dims[0] {
        let first = q.ids[h * d];
        for l in [&q, &k, &v] {
            for &id in &l.ids[h * d..(h + 1) * d] {
                t.ids.union(first, id);
            }
        }
    }
    t.macs.push(MacTerm {
        factor: (2 * batch * nq * nk) as f64,
        ids: vec![q.ids.clone()],
    });
    t.labels.insert(out.id(), v);
}

/// A reshape keeps the channels when their axes map onto output axes; a parameter reshaped by
/// adding or dropping size-1 axes stays a view of it.
fn reshape(t: &mut Tracer<'_>, x: &Tensor, out: &Tensor) {
    if let Some((name, axes)) = t.views.get(&x.id()).cloned() {
        let real: Vec<Option<usize>> = x
            .shape()
            .iter()
            .zip(&axes)
            .filter(|(&d, _)| d != 1)
            .map(|(_, &a)| a)
            .collect();
        let mut it = real.into_iter();
        let mapped: Vec<Option<usize>> = out
            .shape()
            .iter()
            .map(|&d| if d == 1 { None } else { it.next().flatten() })
            .collect();
        let squeeze_only = x
            .shape()
            .iter()
            .filter(|&&d| d != 1)
            .eq(out.shape().iter().filter(|&&d| d != 1));
        if squeeze_only {
            t.views.insert(out.id(), (name, mapped));
        }
    }
    relabel(t, x, out, |l| l.reshaped(x.shape(), out.shape()));
}

/// A broadcast to a larger shape: the labeled axes move right by the added dims.
fn expand(t: &mut Tracer<'_>, x: &Tensor, out: &Tensor) {
    let by = out.rank() - x.rank();
    view_param(t, x, out, |axes| {
        std::iter::repeat_n(None, by)
            .chain(axes.iter().copied())
            .collect()
    });
    relabel(t, x, out, |l| Some(l.shifted(by)));
}

/// Concatenation: along a labeled axis the ids are joined in order; along another axis the
/// inputs are one channel index by index.
fn concat(t: &mut Tracer<'_>, ins: &[Tensor], out: &Tensor, dim: usize) {
    let labeled: Vec<Option<Label>> = ins.iter().map(|i| t.labels.get(&i.id()).cloned()).collect();
    let Some(first) = labeled.iter().flatten().next().cloned() else {
        return;
    };
    if first.only(dim).is_some() {
        let mut ids = Vec::new();
        for (i, l) in ins.iter().zip(&labeled) {
            match l.as_ref().and_then(|l| l.only(dim)) {
                Some(part) => ids.extend_from_slice(part),
                None => ids.extend(t.ids.fresh_frozen(i.shape()[dim])),
            }
        }
        t.labels.insert(out.id(), Label::along(dim, ids));
        return;
    }
    let [axis] = first.axes[..] else {
        ins.iter().for_each(|i| t.freeze_value(i));
        return;
    };
    for (i, l) in ins.iter().zip(&labeled) {
        match l {
            Some(l) if l.axes == first.axes => t.ids.union_all(&first.ids, &l.ids),
            Some(_) => t.freeze_value(i),
            None => t.couple(i, axis, &first.ids.clone(), Role::Out),
        }
    }
    t.labels.insert(out.id(), first);
}

/// A reduction over the channels reads them all (they are kept); over other axes the labeled
/// axes move left by the dropped ones.
fn reduce(t: &mut Tracer<'_>, x: &Tensor, out: &Tensor, dims: &[usize], keepdim: bool) {
    let Some(l) = t.labels.get(&x.id()).cloned() else {
        return;
    };
    if l.axes.iter().any(|a| dims.contains(a)) {
        t.freeze_value(x);
        return;
    }
    let moved = match keepdim {
        true => l,
        false => Label {
            axes: l
                .axes
                .iter()
                .map(|&a| a - dims.iter().filter(|&&d| d < a).count())
                .collect(),
            ..l
        },
    };
    t.labels.insert(out.id(), moved);
}
