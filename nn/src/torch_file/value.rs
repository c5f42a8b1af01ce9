//! What a file `torch.save` wrote holds, once read: Python's plain data with tensors in place.

use kiln_engine::Tensor;
use std::collections::BTreeMap;

/// One Python object of a torch file: the containers and scalars pickle carries, tensors, and
/// instances of the few classes kiln accepts (`argparse.Namespace`).
#[derive(Debug, Clone)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An `int` that fits 64 bits.
    Int(i64),
    /// An `int` beyond 64 bits: pickle's little-endian two's-complement bytes.
    BigInt(Vec<u8>),
    /// A `float`.
    Float(f64),
    /// A `str`.
    Str(String),
    /// A `bytes` or `bytearray`.
    Bytes(Vec<u8>),
    /// A `list`.
    List(Vec<Value>),
    /// A `tuple` (and `torch.Size`).
    Tuple(Vec<Value>),
    /// A `set` or `frozenset`, in the file's order.
    Set(Vec<Value>),
    /// A `dict` or `collections.OrderedDict`, in insertion order.
    Dict(Vec<(Value, Value)>),
    /// A tensor (or `nn.Parameter`), copied out of its storage, contiguous.
    Tensor(Tensor),
    /// An instance of an accepted class: its qualified name and its attributes (a `Dict`).
    Object {
        /// `module.Class`, e.g. `argparse.Namespace`.
        class: String,
        /// The instance's `__dict__`.
        attrs: Box<Value>,
    },
}

impl Value {
    /// The Python type's name, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::BigInt(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Tuple(_) => "tuple",
            Value::Set(_) => "set",
            Value::Dict(_) => "dict",
            Value::Tensor(_) => "tensor",
            Value::Object { .. } => "object",
        }
    }

    /// The value under string key `key` of a dict (or of an object's attributes).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items
                .iter()
                .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
                .map(|(_, v)| v),
            Value::Object { attrs, .. } => attrs.get(key),
            _ => None,
        }
    }

    /// An int (a bool counts, as in Python).
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Int(i) => Some(i),
            Value::Bool(b) => Some(b as i64),
            _ => None,
        }
    }

    /// A number: a float, an int, or a one-element tensor (`torch.optim`'s step counts).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            Value::Tensor(t) if t.numel() == 1 => t.item().ok(),
            _ => None,
        }
    }

    /// A str.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A tensor.
    pub fn as_tensor(&self) -> Option<&Tensor> {
        match self {
            Value::Tensor(t) => Some(t),
            _ => None,
        }
    }

    /// A dict's items.
    pub fn as_dict(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Dict(items) => Some(items),
            _ => None,
        }
    }

    /// A list's or tuple's items.
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::List(items) | Value::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// A dict of tensors by name (a state dict); Err names the first entry that is not a
    /// str → tensor pair.
    pub fn to_state_dict(&self) -> std::result::Result<BTreeMap<String, Tensor>, String> {
        let items = self.as_dict().ok_or_else(|| {
            format!(
                "a {} where a state dict (a dict of tensors) was expected",
                self.kind()
            )
        })?;
        let mut out = BTreeMap::new();
        for (k, v) in items {
            let Value::Str(name) = k else {
                return Err(format!("a state dict key is a {}, not a str", k.kind()));
            };
            let Value::Tensor(t) = v else {
                return Err(format!(
                    "state dict entry '{name}' is a {}, not a tensor",
                    v.kind()
                ));
            };
            out.insert(name.clone(), t.clone());
        }
        Ok(out)
    }
}
