//! Channel importance as Torch-Pruning and the network-slimming paper define it, summed over a
//! channel's coupled parameters: L1 and L2 norms, FPGM (distance to the other filters, near the
//! geometric median means redundant), BN scale |γ| and first-order Taylor |w·∂L/∂w|.

use super::graph::DependencyGraph;
use super::tracer::{Coupling, Role};
use crate::{Error, Module, Result};
use std::collections::{BTreeMap, HashMap};

/// How channels are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Criterion {
    /// Σ|w| over the channel's weights.
    L1,
    /// ‖w‖₂ of the channel's weights in each layer, summed over layers.
    L2,
    /// Σ‖fᵢ − fⱼ‖₂ over the layer's other filters (Filter Pruning via Geometric Median).
    Fpgm,
    /// |γ| of the norms over the channel (network slimming); groups without one are left alone.
    BnScale,
    /// Σ|w·∂L/∂w| over the channel's weights, from the gradients the parameters hold.
    Taylor,
}

impl Criterion {
    /// Parses `l1`, `l2`, `fpgm`, `bn-scale` or `taylor`.
    pub fn parse(s: &str) -> Option<Criterion> {
        Some(match s {
            "l1" => Criterion::L1,
            "l2" => Criterion::L2,
            "fpgm" => Criterion::Fpgm,
            "bn-scale" => Criterion::BnScale,
            "taylor" => Criterion::Taylor,
            _ => return None,
        })
    }
}

/// The importance of every class a criterion scores (classes of groups it leaves alone are
/// absent).
pub fn importance(
    graph: &DependencyGraph,
    model: &dyn Module,
    criterion: Criterion,
) -> Result<HashMap<usize, f64>> {
    let tensors: HashMap<String, kiln_engine::Tensor> = model
        .named_tensors()
        .into_iter()
        .map(|t| (t.name, t.tensor))
        .collect();
    let mut score: HashMap<usize, f64> = HashMap::new();
    for c in graph.couplings() {
        if !scored(graph, c, criterion) {
            continue;
        }
        let Some(t) = tensors.get(&c.name) else {
            continue;
        };
        let values = t.to_vec_f32()?;
        let values = match criterion {
            Criterion::Taylor => {
                let g = t.grad().ok_or_else(|| Error::BadArgument {
                    model: c.name.clone(),
                    msg: "taylor importance needs gradients: run backward on a few batches first"
                        .into(),
                })?;
                let g = g.to_vec_f32()?;
                values.iter().zip(&g).map(|(w, g)| w * g).collect()
            }
            _ => values,
        };
        let slices = slices(graph, c, t.shape(), &values);
        let per_class = match criterion {
            Criterion::L1 | Criterion::BnScale | Criterion::Taylor => {
                map_values(&slices, |v| v.iter().map(|x| f64::from(x.abs())).sum())
            }
            Criterion::L2 => map_values(&slices, |v| {
                v.iter()
                    .map(|&x| f64::from(x) * f64::from(x))
                    .sum::<f64>()
                    .sqrt()
            }),
            Criterion::Fpgm => fpgm(&slices)?,
        };
        for (class, s) in per_class {
            *score.entry(class).or_default() += s;
        }
    }
    Ok(score)
}

/// Whether `criterion` reads coupling `c`.
fn scored(graph: &DependencyGraph, c: &Coupling, criterion: Criterion) -> bool {
    let is_param = graph
        .tensors
        .get(&c.name)
        .is_some_and(|(_, k)| *k == crate::Kind::Parameter);
    let weight = is_param && !c.name.ends_with(".bias");
    match criterion {
        Criterion::L1 | Criterion::L2 | Criterion::Taylor => weight,
        Criterion::Fpgm => {
            let rank = graph
                .tensors
                .get(&c.name)
                .map_or(0, |(shape, _)| shape.len());
            weight && c.role == Role::Out && rank >= 2
        }
        Criterion::BnScale => graph.norm_weights.contains(&c.name),
    }
}

/// The values of each class's indices along the coupled axis, in index order.
fn slices(
    graph: &DependencyGraph,
    c: &Coupling,
    shape: &[usize],
    values: &[f32],
) -> BTreeMap<usize, Vec<f32>> {
    let n = shape[c.axis];
    let inner: usize = shape[c.axis + 1..].iter().product();
    let outer: usize = shape[..c.axis].iter().product();
    let mut out: BTreeMap<usize, Vec<f32>> = BTreeMap::new();
    for (index, &id) in c.ids.iter().enumerate().take(n) {
        let v = out.entry(graph.channel_of(id)).or_default();
        for o in 0..outer {
            let at = (o * n + index) * inner;
            v.extend_from_slice(&values[at..at + inner]);
        }
    }
    out
}

fn map_values(slices: &BTreeMap<usize, Vec<f32>>, f: impl Fn(&[f32]) -> f64) -> Vec<(usize, f64)> {
    slices.iter().map(|(&c, v)| (c, f(v))).collect()
}

/// FPGM: each filter's summed Euclidean distance to the layer's other filters (conv and linear
/// weights), from the Gram
/// matrix (‖a − b‖² = ‖a‖² + ‖b‖² − 2a·b, in f64 from an f32 product).
fn fpgm(slices: &BTreeMap<usize, Vec<f32>>) -> Result<Vec<(usize, f64)>> {
    let classes: Vec<usize> = slices.keys().copied().collect();
    let n = classes.len();
    let d = slices.values().next().map_or(0, Vec::len);
    if slices.values().any(|v| v.len() != d) || d == 0 {
        return Ok(classes.iter().map(|&c| (c, 0.0)).collect());
    }
    let flat: Vec<f32> = slices.values().flatten().copied().collect();
    let w = kiln_engine::Tensor::from_vec(flat, &[n, d])?;
    let gram = w.matmul(&w.transpose(0, 1)?)?.to_vec_f32()?;
    let norm = |i: usize| f64::from(gram[i * n + i]);
    Ok((0..n)
        .map(|i| {
            let s = (0..n)
                .map(|j| {
                    (norm(i) + norm(j) - 2.0 * f64::from(gram[i * n + j]))
                        .max(0.0)
                        .sqrt()
                })
                .sum();
            (classes[i], s)
        })
        .collect())
}
