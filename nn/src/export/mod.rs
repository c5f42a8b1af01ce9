//! ONNX export (timm's `onnx_export.py`): the model's forward is traced in eval mode at two batch
//! sizes ([`kiln_engine::trace`]), the ops are written as standard ONNX operators of opset 17 or
//! 18 (`ops.rs`) with a dynamic batch dim, BatchNorm is folded into the convolution before it
//! (`fold.rs`), and the graph is encoded with prost from ONNX's own `onnx.proto3` (`onnx.rs`).

mod fold;
mod graph;
mod lower;
#[allow(missing_docs, clippy::all, clippy::pedantic)]
mod onnx;
mod ops;
mod proto;

use crate::{Error, Module, Result};
use kiln_engine::{DType, Tensor};
use prost::Message;

/// The opsets kiln writes.
pub const OPSETS: [i64; 2] = [17, 18];

/// The graph's input and output names (timm's).
const INPUT: &str = "input0";
const OUTPUT: &str = "output0";

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
}

/// The ONNX model of `model`'s forward (already in eval mode, re-parameterized where wanted) as
/// protobuf bytes, or an error naming what cannot be written.
pub fn export_onnx(model: &dyn Module, opts: &ExportOptions) -> Result<Vec<u8>> {
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
    let params = model
        .named_tensors()
        .into_iter()
        .map(|t| (t.tensor.id(), t.name))
        .collect();
    let b = opts.batch_size.max(1);
    // An untraced forward first: constants a model builds on its first call and keeps (Swin's
    // relative-position one-hots) are then leaves in both traces alike.
    let warm = Tensor::randn(
        &[
            b,
            opts.input_size[0],
            opts.input_size[1],
            opts.input_size[2],
        ],
        DType::F32,
        0,
    )?;
    {
        let _no_grad = kiln_engine::no_grad();
        model.forward(&warm)?;
    }
    let [a, second] = [b, b + 1].map(|n| run(model, n, opts.input_size));
    let (a, second) = (a?, second?);
    let mut g = graph::Graph::new(opts.opset, INPUT, [b, b + 1]);
    let out = lower::lower(&mut g, INPUT, &a, &second, &params)?;
    fold::fold_batch_norms(&mut g, &out);
    g.nodes.push(onnx::NodeProto {
        input: vec![out],
        output: vec![OUTPUT.into()],
        name: "output_node".into(),
        op_type: "Identity".into(),
        ..Default::default()
    });
    let graph = g.finish(a.input.shape(), OUTPUT, a.output.shape(), opts.keep_init);
    Ok(proto::model(graph, opts.opset, &opts.metadata).encode_to_vec())
}

/// One traced forward of a seeded random batch of `n`.
fn run(model: &dyn Module, n: usize, [c, h, w]: [usize; 3]) -> Result<lower::Run> {
    let _no_grad = kiln_engine::no_grad();
    let input = Tensor::randn(&[n, c, h, w], DType::F32, n as u64)?;
    let (output, steps) = kiln_engine::trace::trace(|| model.forward(&input));
    Ok(lower::Run {
        input,
        output: output?,
        steps,
    })
}
