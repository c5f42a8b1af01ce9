//! The object graph a pickle builds: objects in an arena, referring to each other by index, so
//! that the memo and in-place mutation (APPEND, SETITEMS, BUILD on a memoized object) behave as
//! in Python. Turning it into a [`Value`] tree copies shared objects and is bounded in depth and
//! size, so cycles and exponential sharing are errors, not hangs.

use super::fault::{bad, Res};
use super::global_kinds::{Global, StorageType};
use super::value::Value;
use kiln_engine::Tensor;

/// An object's index in the arena.
pub(super) type Id = usize;

/// A storage named by a persistent id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StorageRef {
    /// The element type of its class.
    pub dtype: StorageType,
    /// The key its bytes are stored under.
    pub key: String,
    /// Its length in elements.
    pub numel: usize,
    /// Where it starts in the stored bytes, in elements (legacy views; 0 otherwise).
    pub view_offset: usize,
}

/// A tensor: a strided view of a storage (offset, size and stride in elements).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TensorRef {
    /// The `Obj::Storage` it views.
    pub storage: Id,
    /// The offset of its first element.
    pub offset: usize,
    /// Its shape.
    pub size: Vec<usize>,
    /// Its strides.
    pub stride: Vec<usize>,
}

/// One object of the graph.
#[derive(Debug, Clone)]
pub(super) enum Obj {
    None,
    Bool(bool),
    Int(i64),
    BigInt(Vec<u8>),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Id>),
    Tuple(Vec<Id>),
    Set(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    /// An accepted global, not yet called.
    Global(Global),
    Storage(StorageRef),
    Tensor(TensorRef),
    /// An instance of an accepted class; `attrs` is set by BUILD.
    Object {
        class: &'static str,
        attrs: Option<Id>,
    },
}

impl Obj {
    /// The Python type's name, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Obj::None => "None",
            Obj::Bool(_) => "bool",
            Obj::Int(_) | Obj::BigInt(_) => "int",
            Obj::Float(_) => "float",
            Obj::Str(_) => "str",
            Obj::Bytes(_) => "bytes",
            Obj::List(_) => "list",
            Obj::Tuple(_) => "tuple",
            Obj::Set(_) => "set",
            Obj::Dict(_) => "dict",
            Obj::Global(_) => "global",
            Obj::Storage(_) => "storage",
            Obj::Tensor(_) => "tensor",
            Obj::Object { .. } => "object",
        }
    }
}

/// Every object one pickle built.
#[derive(Debug, Default)]
pub(super) struct Arena {
    objs: Vec<Obj>,
}

/// How deep containers may nest in a file.
const MAX_DEPTH: usize = 200;

impl Arena {
    /// Adds `obj`; its id.
    pub fn push(&mut self, obj: Obj) -> Id {
        self.objs.push(obj);
        self.objs.len() - 1
    }

    /// The object `id` (ids come from `push`).
    pub fn get(&self, id: Id) -> &Obj {
        &self.objs[id]
    }

    /// The object `id`, to change in place.
    pub fn get_mut(&mut self, id: Id) -> &mut Obj {
        &mut self.objs[id]
    }

    /// How many objects there are.
    pub fn len(&self) -> usize {
        self.objs.len()
    }

    /// A tuple's items.
    pub fn tuple(&self, id: Id, what: &str) -> Res<&[Id]> {
        match self.get(id) {
            Obj::Tuple(items) => Ok(items),
            other => Err(bad(format!("{what} is a {}, not a tuple", other.kind()))),
        }
    }

    /// A tuple's or list's items.
    pub fn seq(&self, id: Id, what: &str) -> Res<&[Id]> {
        match self.get(id) {
            Obj::Tuple(items) | Obj::List(items) => Ok(items),
            other => Err(bad(format!(
                "{what} is a {}, not a tuple or list",
                other.kind()
            ))),
        }
    }

    /// A str.
    pub fn str(&self, id: Id, what: &str) -> Res<&str> {
        match self.get(id) {
            Obj::Str(s) => Ok(s),
            other => Err(bad(format!("{what} is a {}, not a str", other.kind()))),
        }
    }

    /// An int that fits 64 bits.
    pub fn int(&self, id: Id, what: &str) -> Res<i64> {
        match self.get(id) {
            Obj::Int(i) => Ok(*i),
            Obj::Bool(b) => Ok(*b as i64),
            other => Err(bad(format!("{what} is a {}, not an int", other.kind()))),
        }
    }

    /// The object `root` as a [`Value`] tree, each tensor made by `tensor`. Shared objects are
    /// copied (tensors are handles, so that is cheap). A tree takes at most one node per byte of
    /// the pickle (`pickle_len`) unless containers are shared; at most `MAX_DEPTH` levels and
    /// twice that many nodes are read, so a cycle or a pickle that shares a list exponentially
    /// often is an error, not a hang.
    pub fn to_value(
        &self,
        root: Id,
        pickle_len: usize,
        tensor: &mut dyn FnMut(&TensorRef, &StorageRef) -> Res<Tensor>,
    ) -> Res<Value> {
        let mut budget = 2 * pickle_len + 1024;
        self.convert(root, 0, &mut budget, tensor)
    }

    fn convert(
        &self,
        id: Id,
        depth: usize,
        budget: &mut usize,
        tensor: &mut dyn FnMut(&TensorRef, &StorageRef) -> Res<Tensor>,
    ) -> Res<Value> {
        if depth > MAX_DEPTH {
            return Err(bad(format!(
                "objects nest deeper than {MAX_DEPTH} levels (or refer to themselves)"
            )));
        }
        *budget = budget.checked_sub(1).ok_or_else(|| {
            bad("its objects are shared so often that reading them would not end")
        })?;
        let mut all = |items: &[Id], budget: &mut usize| -> Res<Vec<Value>> {
            items
                .iter()
                .map(|&i| self.convert(i, depth + 1, budget, tensor))
                .collect()
        };
        Ok(match self.get(id) {
            Obj::None => Value::None,
            Obj::Bool(b) => Value::Bool(*b),
            Obj::Int(i) => Value::Int(*i),
            Obj::BigInt(b) => Value::BigInt(b.clone()),
            Obj::Float(f) => Value::Float(*f),
            Obj::Str(s) => Value::Str(s.clone()),
            Obj::Bytes(b) => Value::Bytes(b.clone()),
            Obj::List(items) => Value::List(all(items, budget)?),
            Obj::Tuple(items) => Value::Tuple(all(items, budget)?),
            Obj::Set(items) => Value::Set(all(items, budget)?),
            Obj::Dict(pairs) => {
                let flat: Vec<Id> = pairs.iter().flat_map(|&(k, v)| [k, v]).collect();
                let mut values = all(&flat, budget)?.into_iter();
                let mut out = Vec::with_capacity(pairs.len());
                while let (Some(k), Some(v)) = (values.next(), values.next()) {
                    out.push((k, v));
                }
                Value::Dict(out)
            }
            Obj::Object { class, attrs } => Value::Object {
                class: class.to_string(),
                attrs: Box::new(match attrs {
                    Some(a) => self.convert(*a, depth + 1, budget, tensor)?,
                    None => Value::Dict(Vec::new()),
                }),
            },
            Obj::Tensor(t) => {
                let Obj::Storage(s) = self.get(t.storage) else {
                    return Err(bad("a tensor without a storage"));
                };
                Value::Tensor(tensor(t, s)?)
            }
            Obj::Global(g) => {
                return Err(bad(format!("a bare {g:?} (a class or function, not data)")))
            }
            Obj::Storage(_) => return Err(bad("a storage outside a tensor")),
        })
    }
}
