//! The removable channels of a [`DependencyGraph`], by group, and what a choice of removed
//! channels costs: MACs and parameters counted from the traced graph.

use super::graph::DependencyGraph;
use super::tracer::Role;
use crate::Kind;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// One dependency group: channels that are removed by the same layers.
#[derive(Debug, Clone)]
pub struct Group {
    /// The channels (class ids) that may be removed, in id order.
    pub channels: Vec<usize>,
    /// All channels of the group, removable or not.
    pub total: usize,
    /// Names of the parameters that produce the group's channels (its layers).
    pub members: Vec<String>,
    /// Whether a LayerNorm normalizes over the group (removing channels changes its statistics).
    pub normalized: bool,
}

/// A group's channels, its removable channels and its producing layers, while listing groups.
type Members = (BTreeSet<usize>, BTreeSet<usize>, BTreeSet<String>);

impl DependencyGraph {
    /// The groups with at least one removable channel, in a stable order.
    pub fn groups(&self) -> Vec<Group> {
        let mut ids = self.ids.clone();
        let mut by_group: BTreeMap<usize, Members> = BTreeMap::new();
        for c in self.couplings.values() {
            for &id in &c.ids {
                let (g, class) = (ids.group(id), ids.class(id));
                let e = by_group.entry(g).or_default();
                e.0.insert(class);
                if !ids.is_frozen(id) {
                    e.1.insert(class);
                }
                if c.role == Role::Out {
                    e.2.insert(c.name.clone());
                }
            }
        }
        by_group
            .into_values()
            .filter(|(_, free, _)| !free.is_empty())
            .map(|(all, free, members)| {
                let normalized = free.iter().any(|&c| ids.is_normalized(c));
                Group {
                    channels: free.into_iter().collect(),
                    total: all.len(),
                    members: members.into_iter().collect(),
                    normalized,
                }
            })
            .collect()
    }

    /// The channel (as [`Group::channels`] lists it) that index id `id` of a coupling is.
    pub fn channel_of(&self, id: usize) -> usize {
        self.ids.root(id)
    }

    /// The class of every id (a table, for counting).
    pub(crate) fn classes(&self) -> Vec<usize> {
        let mut ids = self.ids.clone();
        (0..ids.len()).map(|i| ids.class(i)).collect()
    }

    /// Multiply-accumulates of one image's forward with the channels `removed` gone.
    pub fn macs(&self, removed: &HashSet<usize>) -> f64 {
        let classes = self.classes();
        let kept = |ids: &[usize]| {
            ids.iter()
                .filter(|&&i| !removed.contains(&classes[i]))
                .count()
        };
        self.macs
            .iter()
            .map(|m| m.factor * m.ids.iter().map(|ids| kept(ids) as f64).product::<f64>())
            .sum()
    }

    /// Trainable parameters with the channels `removed` gone.
    pub fn params(&self, removed: &HashSet<usize>) -> f64 {
        let classes = self.classes();
        self.tensors
            .iter()
            .filter(|(_, (_, kind))| *kind == Kind::Parameter)
            .map(|(name, (shape, _))| {
                shape
                    .iter()
                    .enumerate()
                    .map(
                        |(axis, &n)| match self.couplings.get(&(name.clone(), axis)) {
                            Some(c) => c
                                .ids
                                .iter()
                                .filter(|&&i| !removed.contains(&classes[i]))
                                .count(),
                            None => n,
                        } as f64,
                    )
                    .product::<f64>()
            })
            .sum()
    }
}
