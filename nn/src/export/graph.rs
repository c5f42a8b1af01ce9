//! The ONNX graph under construction: nodes in order, initializers by name, fresh value names,
//! and the shape tensors a dynamic batch needs (a dim that grows with the batch is computed from
//! the input's dim 0 at run time).

use super::onnx::{AttributeProto, GraphProto, NodeProto};
use super::proto::{self, Data, IoDim};
use crate::{Error, Result};
use std::collections::HashMap;

/// An initializer's dims and values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Initializer {
    /// Dims.
    pub dims: Vec<usize>,
    /// Values, row-major.
    pub data: Data,
}

/// Nodes and initializers of the graph being written.
pub(crate) struct Graph {
    /// The opset the nodes are written for.
    pub opset: i64,
    /// Nodes in topological order.
    pub nodes: Vec<NodeProto>,
    /// Initializers by name.
    pub inits: HashMap<String, Initializer>,
    /// Initializer names in the order they were added.
    order: Vec<String>,
    next: usize,
    input: String,
    batch: Option<String>,
    /// The batch sizes of the two traces the graph is built from.
    batches: [usize; 2],
}

/// The error of an export that cannot go on.
pub(crate) fn refuse(msg: impl Into<String>) -> Error {
    Error::Export(msg.into())
}

impl Graph {
    /// An empty graph at `opset` whose input `input` has the batch in dim 0, traced at `batches`.
    pub fn new(opset: i64, input: &str, batches: [usize; 2]) -> Graph {
        Graph {
            opset,
            nodes: Vec::new(),
            inits: HashMap::new(),
            order: Vec::new(),
            next: 0,
            input: input.into(),
            batch: None,
            batches,
        }
    }

    /// A value name not used before, from `hint`.
    pub fn fresh(&mut self, hint: &str) -> String {
        self.next += 1;
        format!("{hint}_{}", self.next)
    }

    /// Appends a node of `op_type` over `inputs` ("" for an omitted optional input) and returns
    /// its one output.
    pub fn node(&mut self, op_type: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        let out = self.fresh(op_type);
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: format!("{out}_node"),
            op_type: op_type.into(),
            attribute: attrs,
            ..Default::default()
        });
        out
    }

    /// Adds the initializer `name` (kept as it is when it exists) and returns its name.
    pub fn init(&mut self, name: &str, dims: &[usize], data: Data) -> String {
        if !self.inits.contains_key(name) {
            let init = Initializer {
                dims: dims.to_vec(),
                data,
            };
            self.inits.insert(name.into(), init);
            self.order.push(name.into());
        }
        name.into()
    }

    /// A new constant initializer.
    pub fn constant(&mut self, dims: &[usize], data: Data) -> String {
        let name = self.fresh("const");
        self.init(&name, dims, data)
    }

    /// A 1-d int64 constant (axes, pads, shapes).
    pub fn ints(&mut self, v: &[i64]) -> String {
        self.constant(&[v.len()], Data::I64(v.to_vec()))
    }

    /// A float32 scalar constant.
    pub fn scalar(&mut self, v: f64) -> String {
        self.constant(&[], Data::F32(vec![v as f32]))
    }

    /// The input's batch size as a 1-d int64 tensor of one element, computed once.
    fn batch(&mut self) -> String {
        if let Some(b) = &self.batch {
            return b.clone();
        }
        let input = self.input.clone();
        let b = self.node(
            "Shape",
            &[&input],
            vec![proto::attr_int("start", 0), proto::attr_int("end", 1)],
        );
        self.batch = Some(b.clone());
        b
    }

    /// A 1-d int64 shape tensor that is `a` at the first trace's batch size and `b` at the
    /// second's: fixed dims as constants, a dim that grows with the batch as k·batch. `wild`:
    /// one dim may be written -1 (Reshape infers it), sparing the shape computation.
    pub fn shape(&mut self, op: &str, a: &[usize], b: &[usize], wild: bool) -> Result<String> {
        let [ba, bb] = self.batches;
        let mut dims = Vec::with_capacity(a.len());
        for (&da, &db) in a.iter().zip(b) {
            if da == db {
                dims.push(Dim::Fixed(da as i64));
                continue;
            }
            let k = (db as i64 - da as i64) / (bb as i64 - ba as i64);
            if k <= 0 || k * ba as i64 != da as i64 || k * bb as i64 != db as i64 {
                return Err(refuse(format!(
                    "{op}: a dim that is {da} at batch size {ba} and {db} at {bb} is not a multiple of the batch"
                )));
            }
            dims.push(Dim::Batch(k));
        }
        let growing = dims.iter().filter(|d| matches!(d, Dim::Batch(_))).count();
        let fixed = |dims: &[Dim]| -> Vec<i64> {
            dims.iter()
                .map(|d| match d {
                    Dim::Fixed(n) => *n,
                    Dim::Batch(_) => -1,
                })
                .collect()
        };
        if growing == 0 || (wild && growing == 1) {
            return Ok(self.ints(&fixed(&dims)));
        }
        let batch = self.batch();
        let mut parts = Vec::new();
        let mut run = Vec::new();
        for d in dims {
            match d {
                Dim::Fixed(n) => run.push(n),
                Dim::Batch(k) => {
                    if !run.is_empty() {
                        parts.push(self.ints(&std::mem::take(&mut run)));
                    }
                    let part = match k {
                        1 => batch.clone(),
                        k => {
                            let factor = self.ints(&[k]);
                            self.node("Mul", &[&batch, &factor], vec![])
                        }
                    };
                    parts.push(part);
                }
            }
        }
        if !run.is_empty() {
            parts.push(self.ints(&run));
        }
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        Ok(self.node("Concat", &refs, vec![proto::attr_int("axis", 0)]))
    }

    /// Names read by a node or as one of the graph's outputs.
    pub fn uses(&self, outputs: &[String]) -> HashMap<String, usize> {
        let mut uses = HashMap::new();
        for n in &self.nodes {
            for i in &n.input {
                *uses.entry(i.clone()).or_insert(0) += 1;
            }
        }
        for output in outputs {
            *uses.entry(output.clone()).or_insert(0) += 1;
        }
        uses
    }

    /// Where `other`, the same model's graph traced at another input size, differs from this
    /// one: the first node or initializer that does, described; `None` when they are the same.
    pub fn difference(&self, other: &Graph) -> Option<String> {
        let pairs = self.nodes.iter().zip(&other.nodes).enumerate();
        if let Some((i, (a, _))) = pairs.into_iter().find(|(_, (a, b))| a != b) {
            return Some(format!(
                "its {} node ({} of {}) has other inputs or attributes",
                a.op_type,
                i + 1,
                self.nodes.len()
            ));
        }
        if self.nodes.len() != other.nodes.len() {
            return Some(format!(
                "it has {} nodes at one size and {} at the other",
                self.nodes.len(),
                other.nodes.len()
            ));
        }
        let changed = self
            .order
            .iter()
            .zip(&other.order)
            .find(|(a, b)| a != b || self.inits.get(*a) != other.inits.get(*b));
        let reader = |name: &String| {
            let node = self.nodes.iter().find(|n| n.input.contains(name));
            node.map_or("no node".to_string(), |n| format!("its {} node", n.op_type))
        };
        match changed {
            Some((name, _)) if name.starts_with("const_") => Some(format!(
                "a constant of shape {:?} read by {} has other values",
                self.inits[name].dims,
                reader(name)
            )),
            Some((name, _)) => Some(format!("the initializer {name} changes")),
            None => None,
        }
    }

    /// The graph proto: `input` of `in_dims` to `outputs` (names and dims), initializers
    /// nothing reads dropped; `keep_init` also lists them as graph inputs.
    pub fn finish(
        self,
        in_dims: &[IoDim],
        outputs: &[(String, Vec<IoDim>)],
        keep_init: bool,
    ) -> GraphProto {
        let names: Vec<String> = outputs.iter().map(|(n, _)| n.clone()).collect();
        let uses = self.uses(&names);
        let initializer: Vec<_> = self
            .order
            .iter()
            .filter(|n| uses.contains_key(*n))
            .map(|n| {
                let init = &self.inits[n];
                proto::tensor(n, &init.dims, &init.data)
            })
            .collect();
        let mut input = vec![proto::float_value(&self.input, in_dims)];
        if keep_init {
            input.extend(initializer.iter().map(proto::initializer_input));
        }
        GraphProto {
            name: "kiln".into(),
            node: self.nodes,
            initializer,
            input,
            output: (outputs.iter())
                .map(|(name, dims)| proto::float_value(name, dims))
                .collect(),
            ..Default::default()
        }
    }
}

/// One dim of a shape tensor.
enum Dim {
    Fixed(i64),
    Batch(i64),
}
