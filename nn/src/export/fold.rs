//! BatchNorm folded into the convolution before it: W·s and (b − μ)·s + β with s = γ/√(σ² + ε),
//! for an inference BatchNormalization whose input is read by it alone and comes from a Conv
//! whose weight and bias are initializers no other node reads.

use super::graph::Graph;
use super::proto::Data;
use std::collections::{HashMap, HashSet};

/// Folds every foldable BatchNormalization of `g` (whose outputs are `outputs`) into its Conv.
pub(crate) fn fold_batch_norms(g: &mut Graph, outputs: &[String]) {
    let uses = g.uses(outputs);
    let producer: HashMap<String, usize> = g
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.output[0].clone(), i))
        .collect();
    let mut removed = HashSet::new();
    for i in 0..g.nodes.len() {
        if g.nodes[i].op_type != "BatchNormalization" {
            continue;
        }
        let Some(&j) = producer.get(&g.nodes[i].input[0]) else {
            continue;
        };
        let only = |name: &String| uses.get(name) == Some(&1);
        let conv = &g.nodes[j];
        if conv.op_type != "Conv" || !only(&conv.output[0]) || !conv.input[1..].iter().all(only) {
            continue;
        }
        let eps = g.nodes[i].attribute.iter().find(|a| a.name == "epsilon");
        let eps = f64::from(eps.map_or(1e-5, |a| a.f));
        let bn: Vec<Vec<f32>> = g.nodes[i].input[1..5]
            .iter()
            .filter_map(|n| match g.inits.get(n).map(|t| &t.data) {
                Some(Data::F32(v)) => Some(v.clone()),
                _ => None,
            })
            .collect();
        let (w_name, b_name) = (conv.input[1].clone(), conv.input.get(2).cloned());
        let Some(Data::F32(w)) = g.inits.get(&w_name).map(|t| t.data.clone()) else {
            continue;
        };
        let [gamma, beta, mean, var] = &bn[..] else {
            continue;
        };
        let c = gamma.len();
        let bias = match &b_name {
            Some(n) => match g.inits.get(n).map(|t| &t.data) {
                Some(Data::F32(v)) => v.clone(),
                _ => continue,
            },
            None => vec![0.0; c],
        };
        let s: Vec<f64> = (0..c)
            .map(|k| f64::from(gamma[k]) / (f64::from(var[k]) + eps).sqrt())
            .collect();
        let per = w.len() / c;
        let w: Vec<f32> = w
            .iter()
            .enumerate()
            .map(|(e, &v)| (f64::from(v) * s[e / per]) as f32)
            .collect();
        let b: Vec<f32> = (0..c)
            .map(|k| ((f64::from(bias[k]) - f64::from(mean[k])) * s[k] + f64::from(beta[k])) as f32)
            .collect();
        if let Some(t) = g.inits.get_mut(&w_name) {
            t.data = Data::F32(w);
        }
        let b_name = match b_name {
            Some(n) => n,
            None => {
                let stem = w_name.strip_suffix(".weight").unwrap_or(&w_name);
                let n = g.fresh(&format!("{stem}.bias"));
                g.init(&n, &[c], Data::F32(vec![0.0; c]))
            }
        };
        if let Some(t) = g.inits.get_mut(&b_name) {
            t.data = Data::F32(b);
        }
        let out = g.nodes[i].output[0].clone();
        let conv = &mut g.nodes[j];
        conv.input.truncate(2);
        conv.input.push(b_name);
        conv.output[0] = out;
        removed.insert(i);
    }
    let mut k = 0;
    g.nodes.retain(|_| {
        k += 1;
        !removed.contains(&(k - 1))
    });
}
