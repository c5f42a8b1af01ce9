//! The tracing state the rules write as the traced ops are replayed: the channel ids of values and
//! parameter views, and the couplings and MAC terms found.

use super::ids::Ids;
use super::label::Label;
use kiln_engine::{Tensor, TensorId};
use std::collections::{BTreeMap, HashMap};

/// Whether a parameter axis produces the channel (a conv's filters, a norm's γ) or reads it (the
/// next conv's input columns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The channel's own weights: zero them all and the channel is dead.
    Out,
    /// Weights that read the channel.
    In,
}

/// One parameter or buffer axis whose indices are channels.
#[derive(Debug, Clone)]
pub struct Coupling {
    /// The state-dict name.
    pub name: String,
    /// The axis.
    pub axis: usize,
    /// The channel id of each index along the axis.
    pub ids: Vec<usize>,
    /// Producer or reader.
    pub role: Role,
}

/// MACs of one op: `factor` times the kept count of each id list.
#[derive(Debug, Clone)]
pub(crate) struct MacTerm {
    pub factor: f64,
    pub ids: Vec<Vec<usize>>,
}

/// Tracing state: labels of values, views of parameters, and what was found.
pub(crate) struct Tracer<'a> {
    pub ids: Ids,
    pub labels: HashMap<TensorId, Label>,
    /// Values that are a parameter seen through a view: its name and, per value axis, the
    /// parameter axis (None for an added size-1 axis).
    pub views: HashMap<TensorId, (String, Vec<Option<usize>>)>,
    pub couplings: BTreeMap<(String, usize), Coupling>,
    pub macs: Vec<MacTerm>,
    pub norm_weights: Vec<String>,
    pub names: &'a HashMap<TensorId, String>,
}

impl Tracer<'_> {
    /// The label of `t`, or fresh frozen ids along `axis` when it has none there.
    pub fn label_on(&mut self, t: &Tensor, axis: usize) -> Vec<usize> {
        if let Some(ids) = self.labels.get(&t.id()).and_then(|l| l.only(axis)) {
            return ids.to_vec();
        }
        self.freeze_value(t);
        self.ids.fresh_frozen(t.shape()[axis])
    }

    /// Freezes every channel `t` carries.
    pub fn freeze_value(&mut self, t: &Tensor) {
        if let Some(l) = self.labels.get(&t.id()) {
            for id in l.ids.clone() {
                self.ids.freeze(id);
            }
        }
    }

    /// Couples axis `axis` of the parameter `t` is (directly or through a view) with `ids`.
    pub fn couple(&mut self, t: &Tensor, axis: usize, ids: &[usize], role: Role) {
        let Some((name, axes)) = self.views.get(&t.id()).cloned() else {
            return;
        };
        if t.shape().get(axis) != Some(&ids.len()) {
            ids.iter().for_each(|&i| self.ids.freeze(i));
            return;
        }
        let Some(Some(param_axis)) = axes.get(axis).copied() else {
            return;
        };
        let key = (name.clone(), param_axis);
        match self.couplings.get(&key).map(|c| c.ids.clone()) {
            Some(prev) => self.ids.union_all(&prev, ids),
            None => {
                let c = Coupling {
                    name,
                    axis: param_axis,
                    ids: ids.to_vec(),
                    role,
                };
                self.couplings.insert(key, c);
            }
        }
    }

    /// The parameter name of `t`, if it is one (not a view).
    pub fn param_name(&self, t: &Tensor) -> Option<String> {
        self.names.get(&t.id()).cloned()
    }
}
