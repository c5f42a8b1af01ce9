//! timm's parameter groups (`_param_groups.py`): weight decay per parameter and layer-wise lr
//! decay from a model's `group_matcher`.

use super::Param;
use crate::{Error, Result};
use kiln_nn::{GroupRule, NamedTensor};
use regex::Regex;
use std::collections::BTreeMap;

/// timm's `_matches_pattern`: `name` matches any of the shell-style `patterns` (`*`, `?`).
fn matches_any(name: &str, patterns: &[String]) -> bool {
    patterns
        .iter()
        .any(|p| glob_match(p.as_bytes(), name.as_bytes()))
}

/// fnmatch with `*` and `?`.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob_match(&pattern[1..], name) || (!name.is_empty() && glob_match(pattern, &name[1..]))
        }
        (Some(b'?'), Some(_)) => glob_match(&pattern[1..], &name[1..]),
        (Some(a), Some(b)) if a == b => glob_match(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// Whether timm leaves `p` undecayed: 1-d tensors, biases and the model's names.
fn no_decay(p: &NamedTensor, no_weight_decay: &[String]) -> bool {
    p.tensor.rank() <= 1 || p.name.ends_with(".bias") || matches_any(&p.name, no_weight_decay)
}

/// timm's `param_groups_weight_decay`: `weight_decay` on parameters with 2+ dims except biases
/// and the `no_weight_decay` names (shell patterns); lr scale 1.
pub fn param_groups(
    params: Vec<NamedTensor>,
    weight_decay: f64,
    no_weight_decay: &[String],
) -> Vec<Param> {
    params
        .into_iter()
        .map(|p| {
            // timm's groups are [no_decay, decay], or one group when weight_decay is 0.
            let (wd, group) = match weight_decay != 0.0 && !no_decay(&p, no_weight_decay) {
                true => (weight_decay as f32, 1),
                false => (0.0, 0),
            };
            Param {
                name: p.name,
                tensor: p.tensor,
                weight_decay: wd,
                lr_scale: 1.0,
                group,
            }
        })
        .collect()
}

/// A parameter's layer and lr scale under layer-wise lr decay.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerGroup {
    /// The parameter's name.
    pub name: String,
    /// Its layer id (0 = closest to the input).
    pub layer_id: usize,
    /// `max(min_scale, layer_decay^(layers − 1 − layer_id))`.
    pub lr_scale: f64,
}

/// timm's `MATCH_PREV_GROUP` suffix: a rule ending in it extends the previous layer.
const MATCH_PREV_GROUP: f64 = 99999.0;

/// A compiled [`GroupRule`]: its regex, its group's position and its suffix.
struct Matcher {
    regex: Regex,
    group: f64,
    suffix: Option<f64>,
}

/// The ordinal of `name` under timm's dict `group_matcher` (`group_with_matcher`): the matching
/// rule's group position, its captured numbers, then its suffix; unmatched names sort last.
fn ordinal(name: &str, matchers: &[Matcher]) -> Vec<f64> {
    for m in matchers {
        let Some(c) = m.regex.captures(name) else {
            continue;
        };
        if c.get(0).map(|m| m.start()) != Some(0) {
            continue; // Python's re.match anchors at the start
        }
        let mut out = vec![m.group];
        out.extend(
            c.iter()
                .skip(1)
                .flatten()
                .filter_map(|m| m.as_str().parse::<f64>().ok()),
        );
        out.extend(m.suffix);
        return out;
    }
    vec![f64::INFINITY]
}

/// The rules compiled, each group numbered by its first appearance (timm's dict order).
fn compile(rules: &[GroupRule]) -> Result<Vec<Matcher>> {
    let mut groups: Vec<&str> = Vec::new();
    rules
        .iter()
        .map(|r| {
            let group = match groups.iter().position(|g| *g == r.group) {
                Some(i) => i,
                None => {
                    groups.push(&r.group);
                    groups.len() - 1
                }
            };
            let regex = Regex::new(&r.regex).map_err(|e| Error::Flag {
                flag: "--layer-decay".into(),
                msg: format!("group_matcher '{}': {e}", r.group),
            })?;
            Ok(Matcher {
                regex,
                group: group as f64,
                suffix: r.suffix,
            })
        })
        .collect()
}

/// timm's layer ids (`group_parameters(..., reverse=True)`) and scales for `names`, given the
/// model's fine `group_matcher` rules.
pub fn layer_decay_groups(
    names: &[String],
    matcher: &[GroupRule],
    layer_decay: f64,
    min_scale: f64,
) -> Result<Vec<LayerGroup>> {
    if matcher.is_empty() {
        return Err(Error::Flag {
            flag: "--layer-decay".into(),
            msg: "this model has no group_matcher to assign layers by".into(),
        });
    }
    let matchers = compile(matcher)?;
    let ordinals: Vec<Vec<f64>> = names.iter().map(|n| ordinal(n, &matchers)).collect();
    let mut distinct: Vec<&Vec<f64>> = ordinals.iter().collect();
    distinct.sort_by(|a, b| a.partial_cmp(b).expect("ordinals are not NaN"));
    distinct.dedup();
    // timm's MATCH_PREV_GROUP: an ordinal ending in 99999 joins the layer before it.
    let mut layer_of = Vec::with_capacity(distinct.len());
    for (i, d) in distinct.iter().enumerate() {
        let joins_previous = i > 0 && d.last() == Some(&MATCH_PREV_GROUP);
        let prev = layer_of.last().copied().unwrap_or(0);
        layer_of.push(if i == 0 || joins_previous {
            prev
        } else {
            prev + 1
        });
    }
    let ids: BTreeMap<String, usize> = names
        .iter()
        .zip(&ordinals)
        .map(|(n, o)| {
            let i = distinct.iter().position(|d| *d == o).unwrap_or(0);
            (n.clone(), layer_of[i])
        })
        .collect();
    let layer_max = layer_of.last().copied().unwrap_or(0);
    Ok(names
        .iter()
        .map(|n| {
            let layer_id = ids[n];
            let lr_scale = layer_decay
                .powi((layer_max - layer_id) as i32)
                .max(min_scale);
            LayerGroup {
                name: n.clone(),
                layer_id,
                lr_scale,
            }
        })
        .collect())
}

/// timm's `param_groups_layer_decay`: weight decay as [`param_groups`], lr scale per layer;
/// parameters whose scale falls below `no_opt_scale` are left out of the optimizer.
pub fn layer_decayed_params(
    params: Vec<NamedTensor>,
    weight_decay: f64,
    no_weight_decay: &[String],
    layers: &[LayerGroup],
    no_opt_scale: Option<f64>,
) -> Vec<Param> {
    let scales: BTreeMap<&str, f64> = layers
        .iter()
        .map(|l| (l.name.as_str(), l.lr_scale))
        .collect();
    let layer_ids: BTreeMap<&str, usize> = layers
        .iter()
        .map(|l| (l.name.as_str(), l.layer_id))
        .collect();
    // timm's group `layer_{id}_{decay}`, numbered in order of first appearance.
    let mut groups: Vec<(Option<usize>, bool)> = Vec::new();
    params
        .into_iter()
        .filter_map(|p| {
            let scale = scales.get(p.name.as_str()).copied().unwrap_or(1.0);
            if no_opt_scale.is_some_and(|min| min > 0.0 && scale < min) {
                return None;
            }
            let decays = p.tensor.rank() > 1 && !matches_any(&p.name, no_weight_decay);
            let wd = if decays { weight_decay as f32 } else { 0.0 };
            let key = (layer_ids.get(p.name.as_str()).copied(), decays);
            let group = groups.iter().position(|k| *k == key).unwrap_or_else(|| {
                groups.push(key);
                groups.len() - 1
            });
            Some(Param {
                name: p.name,
                tensor: p.tensor,
                weight_decay: wd,
                lr_scale: scale as f32,
                group,
            })
        })
        .collect()
}
