//! Building ONNX's protobuf messages (the prost types of [`super::onnx`]): attributes, tensors,
//! typed graph inputs and outputs, and the model around a graph.

use super::onnx::attribute_proto::AttributeType;
use super::onnx::tensor_proto::DataType;
use super::onnx::tensor_shape_proto::{dimension, Dimension};
use super::onnx::{
    type_proto, AttributeProto, GraphProto, ModelProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};

/// The IR version ONNX pairs with opsets 17 and 18.
const IR_VERSION: i64 = 8;

/// An integer attribute.
pub(crate) fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

/// A float attribute.
pub(crate) fn attr_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f,
        ..Default::default()
    }
}

/// An integer-list attribute.
pub(crate) fn attr_ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: ints.to_vec(),
        ..Default::default()
    }
}

/// The values of an initializer, in one of the element types the exporter writes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Data {
    /// float32.
    F32(Vec<f32>),
    /// int64 (shapes, axes, indices).
    I64(Vec<i64>),
    /// bool (masks).
    Bool(Vec<bool>),
}

/// An initializer named `name` of `dims` holding `data`.
pub(crate) fn tensor(name: &str, dims: &[usize], data: &Data) -> TensorProto {
    let mut t = TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        ..Default::default()
    };
    match data {
        Data::F32(v) => {
            t.data_type = DataType::Float as i32;
            t.raw_data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        }
        Data::I64(v) => {
            t.data_type = DataType::Int64 as i32;
            t.raw_data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        }
        Data::Bool(v) => {
            t.data_type = DataType::Bool as i32;
            t.raw_data = v.iter().map(|&b| u8::from(b)).collect();
        }
    }
    t
}

/// One dim of a graph input or output: a fixed size, or a symbolic one (`batch`, `height`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum IoDim {
    /// The same at every run.
    Fixed(usize),
    /// Given by the input at run time, under this name.
    Named(String),
}

/// A float32 graph input or output named `name` of `dims`.
pub(crate) fn float_value(name: &str, dims: &[IoDim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                IoDim::Fixed(n) => dimension::Value::DimValue(*n as i64),
                IoDim::Named(s) => dimension::Value::DimParam(s.clone()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An initializer listed as a graph input too (torch.onnx's `keep_initializers_as_inputs`).
pub(crate) fn initializer_input(t: &TensorProto) -> ValueInfoProto {
    let dim = t
        .dims
        .iter()
        .map(|&d| Dimension {
            value: Some(dimension::Value::DimValue(d)),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: t.name.clone(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: t.data_type,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The model: `graph` under the default domain at `opset`, produced by kiln, with `metadata`.
pub(crate) fn model(graph: GraphProto, opset: i64, metadata: &[(String, String)]) -> ModelProto {
    let metadata_props = (metadata.iter())
        .map(|(key, value)| StringStringEntryProto {
            key: key.clone(),
            value: value.clone(),
        })
        .collect();
    ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        producer_name: "kiln".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph),
        metadata_props,
        ..Default::default()
    }
}
