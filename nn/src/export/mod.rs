//! ONNX export (timm's `onnx_export.py`): the model's forward is traced, in the mode the model is
//! in, at two batch sizes ([`kiln_engine::trace`]), the ops are written as standard ONNX
//! operators of opset 17 or 18 (`ops.rs`) with a dynamic batch dim, BatchNorm is folded into the
//! convolution before it (`fold.rs`), and the graph is encoded with prost from ONNX's own
//! `onnx.proto3` (`onnx.rs`). A dynamic height and width are written where the graph traced at a
//! second input size is the same graph.

mod fold;
mod graph;
mod lower;
#[allow(missing_docs, clippy::all, clippy::pedantic)]
mod onnx;
mod ops;
mod proto;

use crate::{Error, FeatureExtractor, Module, NamedTensor, Result};
use kiln_engine::{DType, Tensor};
use prost::Message;

/// The opsets kiln writes.
pub const OPSETS: [i64; 2] = [17, 18];

/// The graph's input name (timm's); outputs are `output0`, `output1`, ... in forward order.
const INPUT: &str = "input0";
/// The symbolic names of a dynamic-size input's height and width (timm's), and of an output's.
const INPUT_SPATIAL: [&str; 2] = ["height", "width"];
const OUTPUT_SPATIAL: [&str; 2] = ["output_height", "output_width"];

/// What [`export_onnx`] writes.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportOptions {
    /// ONNX opset: 17 or 18.
    pub opset: i64,
    /// The batch size traced (a second trace runs at one more); the file's batch is dynamic.
    pub batch_size: usize,
    /// Input channels and (height, width).
    pub input_size: [usize; 3],
    /// Also list the initializers as graph inputs (torch.onnx's `keep_initializers_as_inputs`).
    pub keep_init: bool,
    /// Key/value pairs written into the model's `metadata_props` (`kiln export` writes the
    /// model's record under `model_config`, as in its safetensors files).
    pub metadata: Vec<(String, String)>,
    /// Symbolic height and width too (timm's `--dynamic-size`): refused, with the reason, unless
    /// the graph traced at `input_size` and at [`probe_size`] of it is the same graph.
    pub dynamic_size: bool,
}

/// The second input size a dynamic-size export traces: one row and two columns more, so that a
/// graph depending on the size (position embeddings, windows, "same" padding computed from the
/// size, uneven pooling) differs, and a height/width mix-up shows.
pub fn probe_size([c, h, w]: [usize; 3]) -> [usize; 3] {
    [c, h + 1, w + 2]
}

/// What [`export_onnx`] writes: a forward from one image batch to one or more outputs, over
/// named parameters and buffers (the graph's initializers). Every module is one (its logits);
/// a [`FeatureExtractor`] too (its feature maps, one graph output each).
pub trait Exportable {
    /// The parameters and buffers, under the names the file gives them.
    fn named_tensors(&self) -> Vec<NamedTensor>;
    /// The dtype the forward computes in.
    fn param_dtype(&self) -> DType;
    /// One forward's outputs.
    fn outputs(&self, x: &Tensor) -> Result<Vec<Tensor>>;
}

impl<M: Module + ?Sized> Exportable for M {
    fn named_tensors(&self) -> Vec<NamedTensor> {
        Module::named_tensors(self)
    }

    fn param_dtype(&self) -> DType {
        Module::param_dtype(self)
    }

    fn outputs(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        Ok(vec![self.forward(x)?])
    }
}

impl Exportable for FeatureExtractor {
    fn named_tensors(&self) -> Vec<NamedTensor> {
        self.model().named_tensors()
    }

    fn param_dtype(&self) -> DType {
        self.model().param_dtype()
    }

    fn outputs(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        self.forward(x)
    }
}

/// The ONNX model of `model`'s forward (in the mode it is in: eval, or training with BatchNorm
/// on batch statistics; re-parameterized where wanted) as protobuf bytes, or an error naming what
/// cannot be written.
pub fn export_onnx<M: Exportable + ?Sized>(model: &M, opts: &ExportOptions) -> Result<Vec<u8>> {
    if !OPSETS.contains(&opts.opset) {
        return Err(Error::Export(format!(
            "opset {} is not written (kiln writes opsets 17 and 18)",
            opts.opset
        )));
    }
    if model.param_dtype() != DType::F32 {
        return Err(Error::Export(format!(
            "the model is in {:?}; kiln exports float32 models",
            model.param_dtype()
        )));
    }
    let mut at = lowered(model, opts, opts.input_size)?;
    let mut in_dims = io_dims(&at.input_shape, &at.input_shape, INPUT_SPATIAL);
    let mut out_dims: Vec<_> = (at.output_shapes.iter())
        .map(|s| io_dims(s, s, OUTPUT_SPATIAL))
        .collect();
    if opts.dynamic_size {
        let [_, h, w] = opts.input_size;
        let probe = probe_size(opts.input_size);
        let sizes = format!("{h}x{w} and {}x{}", probe[1], probe[2]);
        let refuse = |msg| Error::ExportOption {
            option: "dynamic_size",
            msg,
        };
        let other = lowered(model, opts, probe).map_err(|e| {
            refuse(format!(
                "the forward at {}x{} cannot be written ({e}), so the file cannot take other \
                 sizes",
                probe[1], probe[2]
            ))
        })?;
        if let Some(d) = at.graph.difference(&other.graph) {
            return Err(refuse(format!(
                "the graph depends on the input size: traced at {sizes}, {d}"
            )));
        }
        in_dims = io_dims(&at.input_shape, &other.input_shape, INPUT_SPATIAL);
        out_dims = (at.output_shapes.iter().zip(&other.output_shapes))
            .map(|(a, b)| io_dims(a, b, OUTPUT_SPATIAL))
            .collect();
    }
    let mut outputs = Vec::new();
    for (i, (value, dims)) in at.outputs.into_iter().zip(out_dims).enumerate() {
        let name = format!("output{i}");
        at.graph.nodes.push(onnx::NodeProto {
            input: vec![value],
            output: vec![name.clone()],
            name: format!("{name}_node"),
            op_type: "Identity".into(),
            ..Default::default()
        });
        outputs.push((name, dims));
    }
    let graph = at.graph.finish(&in_dims, &outputs, opts.keep_init);
    Ok(proto::model(graph, opts.opset, &opts.metadata).encode_to_vec())
}

/// A forward lowered to a graph at one input size: the graph, the names of its outputs, and the
/// input's and outputs' shapes at the traced batch size.
struct Lowered {
    graph: graph::Graph,
    outputs: Vec<String>,
    input_shape: Vec<usize>,
    output_shapes: Vec<Vec<usize>>,
}

/// The graph of `model`'s forward on inputs of `size`, traced at the batch size of `opts` and at
/// one more, with BatchNorms folded. (In training mode each traced forward also updates the
/// running statistics, as any training forward does.)
fn lowered<M: Exportable + ?Sized>(
    model: &M,
    opts: &ExportOptions,
    size: [usize; 3],
) -> Result<Lowered> {
    let params = model
        .named_tensors()
        .into_iter()
        .map(|t| (t.tensor.id(), t.name))
        .collect();
    let b = opts.batch_size.max(1);
    // An untraced forward first: constants a model builds on its first call and keeps (Swin's
    // relative-position one-hots) are then leaves in both traces alike.
    let warm = Tensor::randn(&[b, size[0], size[1], size[2]], DType::F32, 0)?;
    {
        let _no_grad = kiln_engine::no_grad();
        model.outputs(&warm)?;
    }
    let [a, second] = [b, b + 1].map(|n| run(model, n, size));
    let (a, second) = (a?, second?);
    let mut graph = graph::Graph::new(opts.opset, INPUT, [b, b + 1]);
    let outputs = lower::lower(&mut graph, INPUT, &a, &second, &params)?;
    fold::fold_batch_norms(&mut graph, &outputs);
    Ok(Lowered {
        graph,
        outputs,
        input_shape: a.input.shape().to_vec(),
        output_shapes: a.outputs.iter().map(|o| o.shape().to_vec()).collect(),
    })
}

/// A graph input's or output's dims: dim 0 the symbolic `batch`; a dim that differs between
/// `shape` and `other` (the same value traced at another input size) symbolic too, named by
/// `spatial` for an NCHW value's dims 2 and 3, else by its index.
fn io_dims(shape: &[usize], other: &[usize], spatial: [&str; 2]) -> Vec<proto::IoDim> {
    let rank = shape.len();
    (0..rank)
        .map(|d| match d {
            0 => proto::IoDim::Named("batch".into()),
            _ if shape[d] == other[d] => proto::IoDim::Fixed(shape[d]),
            _ if rank == 4 && d >= 2 => proto::IoDim::Named(spatial[d - 2].into()),
            _ => proto::IoDim::Named(format!("dim{d}")),
        })
        .collect()
}

/// One traced forward of a seeded random batch of `n`.
fn run<M: Exportable + ?Sized>(model: &M, n: usize, [c, h, w]: [usize; 3]) -> Result<lower::Run> {
    let _no_grad = kiln_engine::no_grad();
    let input = Tensor::randn(&[n, c, h, w], DType::F32, n as u64)?;
    let (outputs, steps) = kiln_engine::trace::trace(|| model.outputs(&input));
    Ok(lower::Run {
        input,
        outputs: outputs?,
        steps,
    })
}
