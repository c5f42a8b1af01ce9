//! The pickle globals kiln accepts: the tensor and storage reconstructors `torch.save` writes and
//! the containers a timm checkpoint holds. Each is mapped to a data constructor here; nothing is
//! looked up by name at run time and no code from the file runs. Any other global is refused by
//! name.

use super::fault::{bad, Fault, Res};
use super::global_kinds::{Global, StorageType};
use super::graph::{Arena, Id, Obj, StorageRef, TensorRef};
use kiln_engine::DType;

/// torch's storage classes by name: the element type kiln reads them as, or their element size.
const STORAGES: &[(&str, Result<DType, usize>)] = &[
    ("FloatStorage", Ok(DType::F32)),
    ("DoubleStorage", Ok(DType::F64)),
    ("HalfStorage", Ok(DType::F16)),
    ("BFloat16Storage", Ok(DType::BF16)),
    ("LongStorage", Ok(DType::I64)),
    ("IntStorage", Ok(DType::I32)),
    ("ByteStorage", Ok(DType::U8)),
    ("BoolStorage", Ok(DType::Bool)),
    ("ShortStorage", Err(2)),
    ("CharStorage", Err(1)),
    ("ComplexFloatStorage", Err(8)),
    ("ComplexDoubleStorage", Err(16)),
    ("QUInt8Storage", Err(1)),
    ("QInt8Storage", Err(1)),
    ("QInt32Storage", Err(4)),
    ("QUInt4x2Storage", Err(1)),
    ("QUInt2x4Storage", Err(1)),
];

/// The accepted global `module.name`, or None. Python 2's module names (pickle protocol 2
/// writes `__builtin__`) are read as Python 3's.
pub(super) fn lookup(module: &str, name: &str) -> Option<Global> {
    let module = match module {
        "__builtin__" => "builtins",
        m => m,
    };
    Some(match (module, name) {
        ("collections", "OrderedDict") => Global::OrderedDict,
        ("builtins", "set" | "frozenset") => Global::Set,
        ("builtins", "bytearray") => Global::ByteArray,
        ("argparse", "Namespace") => Global::Namespace,
        ("torch", "device") => Global::Device,
        ("torch", "Size") => Global::Size,
        ("_codecs", "encode") => Global::Encode,
        ("torch._utils", "_rebuild_tensor" | "_rebuild_tensor_v2") => Global::RebuildTensor,
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => {
            Global::RebuildParameter
        }
        ("torch" | "torch.cuda", _) => {
            let &(class, dtype) = STORAGES.iter().find(|(n, _)| *n == name)?;
            Global::Storage(match dtype {
                Ok(d) => StorageType::Known(d),
                Err(size) => StorageType::Unsupported(class, size),
            })
        }
        _ => return None,
    })
}

/// The object `REDUCE` builds from `global` called with the tuple `args`.
pub(super) fn call(global: Global, args: Id, arena: &Arena) -> Res<Obj> {
    let args = arena.tuple(args, "a call's arguments")?;
    let arg = |i: usize| -> Res<Id> {
        args.get(i).copied().ok_or_else(|| {
            bad(format!(
                "{global:?} takes at least {} arguments, got {}",
                i + 1,
                args.len()
            ))
        })
    };
    Ok(match global {
        Global::OrderedDict | Global::Set => {
            let items = match args.first() {
                None => Vec::new(),
                Some(&a) => arena.seq(a, "the items")?.to_vec(),
            };
            if global == Global::Set {
                return Ok(Obj::Set(items));
            }
            let pairs = items
                .iter()
                .map(|&p| match arena.seq(p, "a (key, value) pair")? {
                    &[k, v] => Ok((k, v)),
                    other => Err(bad(format!(
                        "a (key, value) pair has {} items",
                        other.len()
                    ))),
                })
                .collect::<Res<_>>()?;
            Obj::Dict(pairs)
        }
        Global::Namespace => Obj::Object {
            class: "argparse.Namespace",
            attrs: None,
        },
        Global::Device => {
            let kind = arena.str(arg(0)?, "a device type")?;
            match args
                .get(1)
                .map(|&i| arena.int(i, "a device index"))
                .transpose()?
            {
                Some(i) => Obj::Str(format!("{kind}:{i}")),
                None => Obj::Str(kind.to_string()),
            }
        }
        Global::Size => Obj::Tuple(arena.seq(arg(0)?, "a size")?.to_vec()),
        Global::Encode => {
            let text = arena.str(arg(0)?, "the text of a bytes object")?;
            let encoding = arena.str(arg(1)?, "an encoding")?;
            if encoding != "latin1" && encoding != "latin-1" {
                return Err(bad(format!("bytes encoded as '{encoding}', not latin1")));
            }
            let bytes = text
                .chars()
                .map(|c| {
                    u8::try_from(u32::from(c))
                        .map_err(|_| bad("a latin1 bytes object holds a character past U+00FF"))
                })
                .collect::<Res<_>>()?;
            Obj::Bytes(bytes)
        }
        Global::ByteArray => match args.first() {
            None => Obj::Bytes(Vec::new()),
            Some(&a) => match arena.get(a) {
                Obj::Bytes(b) => Obj::Bytes(b.clone()),
                other => return Err(bad(format!("bytearray of a {}", other.kind()))),
            },
        },
        Global::RebuildTensor => rebuild_tensor(args, arena)?,
        Global::RebuildParameter => match arena.get(arg(0)?) {
            t @ Obj::Tensor(_) => t.clone(),
            other => return Err(bad(format!("a parameter whose data is a {}", other.kind()))),
        },
        Global::Storage(_) => return Err(bad("a storage class called directly")),
    })
}

/// `_rebuild_tensor(storage, offset, size, stride)` and `_rebuild_tensor_v2(storage, offset,
/// size, stride, requires_grad, backward_hooks[, metadata])`: the view, checked against its
/// storage when the storage's bytes are read.
fn rebuild_tensor(args: &[Id], arena: &Arena) -> Res<Obj> {
    let &[storage, offset, size, stride, ..] = args else {
        return Err(bad(format!(
            "_rebuild_tensor takes 4 or more arguments, got {}",
            args.len()
        )));
    };
    if !matches!(arena.get(storage), Obj::Storage(_)) {
        return Err(bad(format!(
            "a tensor whose storage is a {}",
            arena.get(storage).kind()
        )));
    }
    let dims = |id: Id, what: &str| -> Res<Vec<usize>> {
        arena
            .seq(id, what)?
            .iter()
            .map(|&d| {
                let v = arena.int(d, what)?;
                usize::try_from(v).map_err(|_| bad(format!("a tensor's {what} holds {v}")))
            })
            .collect()
    };
    let size = dims(size, "size")?;
    let stride = dims(stride, "stride")?;
    if size.len() != stride.len() {
        return Err(bad(format!(
            "a tensor with {} sizes and {} strides",
            size.len(),
            stride.len()
        )));
    }
    let offset = arena.int(offset, "storage offset")?;
    let offset = usize::try_from(offset)
        .map_err(|_| bad(format!("a tensor's storage offset is {offset}")))?;
    Ok(Obj::Tensor(TensorRef {
        storage,
        offset,
        size,
        stride,
    }))
}

/// The object `NEWOBJ` builds: `cls.__new__(cls)` for the classes that are plain data.
pub(super) fn instantiate(global: Global) -> Res<Obj> {
    match global {
        Global::Namespace => Ok(Obj::Object {
            class: "argparse.Namespace",
            attrs: None,
        }),
        Global::OrderedDict => Ok(Obj::Dict(Vec::new())),
        Global::Set => Ok(Obj::Set(Vec::new())),
        other => Err(bad(format!("NEWOBJ of {other:?}"))),
    }
}

/// The storage a persistent id `('storage', storage_type, key, location, numel[, view])`
/// names (`view` = `(view_key, offset, numel)` in the legacy format).
pub(super) fn storage_ref(pid: Id, arena: &Arena) -> Res<StorageRef> {
    let items = arena.tuple(pid, "a persistent id")?;
    let &[tag, class, key, _location, numel, ref rest @ ..] = items else {
        return Err(bad(format!("a persistent id of {} items", items.len())));
    };
    if arena.str(tag, "a persistent id's tag")? != "storage" {
        return Err(bad("a persistent id that is not a storage"));
    }
    let Obj::Global(Global::Storage(dtype)) = arena.get(class) else {
        return Err(bad(format!(
            "a storage whose class is a {}",
            arena.get(class).kind()
        )));
    };
    let count = |id: Id, what: &str| -> Res<usize> {
        let v = arena.int(id, what)?;
        usize::try_from(v).map_err(|_| bad(format!("a storage's {what} is {v}")))
    };
    let mut storage = StorageRef {
        dtype: *dtype,
        key: arena.str(key, "a storage key")?.to_string(),
        numel: count(numel, "size")?,
        view_offset: 0,
    };
    if let Some(&view) = rest.first() {
        if !matches!(arena.get(view), Obj::None) {
            match arena.tuple(view, "a storage view")? {
                &[_, offset, numel] => {
                    storage.view_offset = count(offset, "view offset")?;
                    storage.numel = count(numel, "view size")?;
                }
                other => return Err(bad(format!("a storage view of {} items", other.len()))),
            }
        }
    }
    Ok(storage)
}

/// The refusal for a global kiln does not accept.
pub(super) fn refuse(module: &str, name: &str) -> Fault {
    Fault::Refused(format!("{module}.{name}"))
}
