//! Which channels go: per-layer (every group loses the same fraction) or global (one threshold
//! on importance normalized by each group's mean), the fraction found by bisection so that the
//! model keeps `1 − ratio` of its MACs or parameters; a cap per group, groups left alone by name
//! and kept counts rounded to a multiple.

use super::channels::Group;
use super::graph::DependencyGraph;
use crate::names::wildcard;
use std::collections::{HashMap, HashSet};

/// What the ratio is a fraction of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Multiply-accumulates of a forward.
    Macs,
    /// Trainable parameters.
    Params,
}

/// How much to remove, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct PruneOptions {
    /// Fraction of the target to remove (0.5 halves the MACs).
    pub ratio: f64,
    /// MACs or parameters.
    pub target: Target,
    /// One importance threshold for all groups instead of one fraction per group.
    pub global: bool,
    /// The most of any group's channels removed.
    pub max_ratio: f64,
    /// Groups any of whose layers' names matches one of these globs are left alone.
    pub ignore: Vec<String>,
    /// Kept channel counts rounded up to a multiple of this (1: no rounding).
    pub round_to: usize,
    /// The MACs or parameters `ratio` is a fraction of; None: the model's own. An iterative
    /// prune gives the unpruned model's, so each step prunes to `1 − ratio` of the original, and
    /// a model already that small loses nothing.
    pub reference: Option<f64>,
}

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            ratio: 0.5,
            target: Target::Macs,
            global: false,
            max_ratio: 1.0,
            ignore: Vec::new(),
            round_to: 1,
            reference: None,
        }
    }
}

/// The channels (classes) to remove for `opts`, given each channel's importance (groups without
/// scores are left alone).
pub fn select(
    graph: &DependencyGraph,
    scores: &HashMap<usize, f64>,
    opts: &PruneOptions,
) -> HashSet<usize> {
    let groups: Vec<Ranked> = graph
        .groups()
        .into_iter()
        .filter(|g| !ignored(g, &opts.ignore))
        .filter_map(|g| Ranked::new(g, scores))
        .collect();
    let metric = |removed: &HashSet<usize>| match opts.target {
        Target::Macs => graph.macs(removed),
        Target::Params => graph.params(removed),
    };
    let now = metric(&HashSet::new());
    let goal = opts.reference.unwrap_or(now) * (1.0 - opts.ratio.clamp(0.0, 1.0));
    let top = match opts.global {
        true => groups
            .iter()
            .flat_map(|g| g.normalized.iter().copied())
            .fold(0.0, f64::max),
        false => opts.max_ratio.clamp(0.0, 1.0),
    };
    let remove_at = |x: f64| -> HashSet<usize> {
        groups
            .iter()
            .flat_map(|g| g.removed(opts, x, opts.global))
            .collect()
    };
    if opts.ratio <= 0.0 || now <= goal {
        return HashSet::new();
    }
    let (mut lo, mut hi) = (0.0, top * (1.0 + 1e-9) + 1e-12);
    if metric(&remove_at(hi)) > goal {
        return remove_at(hi);
    }
    for _ in 0..40 {
        let mid = 0.5 * (lo + hi);
        match metric(&remove_at(mid)) > goal {
            true => lo = mid,
            false => hi = mid,
        }
    }
    remove_at(hi)
}

/// Whether one of `g`'s layers matches an ignore glob (`layer4.*`).
fn ignored(g: &Group, globs: &[String]) -> bool {
    g.members
        .iter()
        .any(|m| globs.iter().any(|p| wildcard(p, m)))
}

/// A group's removable channels from least to most important.
struct Ranked {
    order: Vec<usize>,
    /// Scores divided by the group's mean, in `order`.
    normalized: Vec<f64>,
    total: usize,
}

impl Ranked {
    fn new(g: Group, scores: &HashMap<usize, f64>) -> Option<Ranked> {
        let mut scored: Vec<(usize, f64)> = g
            .channels
            .iter()
            .map(|c| scores.get(c).map(|&s| (*c, s)))
            .collect::<Option<_>>()?;
        scored.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        let mean = scored.iter().map(|s| s.1).sum::<f64>() / scored.len() as f64;
        let norm = if mean > 0.0 { mean } else { 1.0 };
        Some(Ranked {
            order: scored.iter().map(|s| s.0).collect(),
            normalized: scored.iter().map(|s| s.1 / norm).collect(),
            total: g.total,
        })
    }

    /// The channels removed at `x`: a fraction of the group, or (global) those scoring below it;
    /// capped by `max_ratio` and rounded so the kept count is a multiple of `round_to`.
    fn removed(&self, opts: &PruneOptions, x: f64, global: bool) -> Vec<usize> {
        let want = match global {
            true => self.normalized.iter().take_while(|&&s| s < x).count(),
            false => (x * self.total as f64).floor() as usize,
        };
        let cap = (opts.max_ratio.clamp(0.0, 1.0) * self.total as f64).floor() as usize;
        let mut n = want.min(cap).min(self.order.len()).min(self.total - 1);
        let r = opts.round_to.max(1);
        if r > 1 && self.total > r {
            let kept = (self.total - n).div_ceil(r) * r;
            n = self.total - kept.min(self.total);
        }
        self.order[..n.min(self.order.len())].to_vec()
    }
}
