//! The format `torch.save` wrote before PyTorch 1.6 (and with
//! `_use_new_zipfile_serialization=False`): five pickles in a row (a magic number, the protocol
//! version 1001, the system info, the object, the list of storage keys), then each storage in that
//! order as a little-endian u64 element count and its raw bytes.

use super::fault::{bad, Res};
use super::global_kinds::StorageType;
use super::graph::Obj;
use super::storage::materialize;
use super::unpickler::{unpickle, Pickle};
use super::value::Value;
use std::collections::HashMap;

/// `0x1950a86a20f9469cfc6c`, torch's legacy magic number, as pickle's LONG1 bytes.
const MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const PROTOCOL_VERSION: i64 = 1001;

/// The object a legacy torch file holds.
pub(super) fn read(bytes: &[u8], budget: &mut usize) -> Res<Value> {
    let mut at = 0;
    let mut next = |what: &str| -> Res<Pickle> {
        let p = unpickle(&bytes[at..]).map_err(|e| e.context(what))?;
        at += p.len;
        Ok(p)
    };
    let magic = next("the magic number")?;
    if !matches!(magic.arena.get(magic.root), Obj::BigInt(b) if b[..] == MAGIC) {
        return Err(bad("not a file torch.save wrote (no magic number)"));
    }
    let version = next("the protocol version")?;
    if !matches!(version.arena.get(version.root), Obj::Int(PROTOCOL_VERSION)) {
        return Err(bad("a legacy torch file of an unknown protocol version"));
    }
    let info = next("the system info")?;
    let Obj::Dict(items) = info.arena.get(info.root) else {
        return Err(bad("the system info is not a dict"));
    };
    let little = items.iter().find_map(|&(k, v)| {
        matches!(info.arena.get(k), Obj::Str(s) if s == "little_endian").then(|| info.arena.get(v))
    });
    if matches!(little, Some(Obj::Bool(false))) {
        return Err(bad(
            "storages stored big-endian: kiln reads little-endian files",
        ));
    }
    let object = next("the object")?;
    let keys = next("the storage keys")?;
    let keys = keys
        .arena
        .seq(keys.root, "the storage keys")?
        .iter()
        .map(|&k| keys.arena.str(k, "a storage key").map(str::to_string))
        .collect::<Res<Vec<_>>>()?;
    // Element sizes come from the storages' classes in the object.
    let mut types: HashMap<&str, StorageType> = HashMap::new();
    for id in 0..object.arena.len() {
        if let Obj::Storage(s) = object.arena.get(id) {
            types.insert(&s.key, s.dtype);
        }
    }
    let mut stored: HashMap<String, &[u8]> = HashMap::new();
    let mut rest = &bytes[at..];
    for key in keys {
        let e = types
            .get(key.as_str())
            .ok_or_else(|| bad(format!("storage '{key}' is listed but no tensor uses it")))?
            .elem_size();
        let (count, tail) = rest
            .split_first_chunk::<8>()
            .ok_or_else(|| bad(format!("the file ends before storage '{key}'")))?;
        let n = usize::try_from(u64::from_le_bytes(*count))
            .ok()
            .and_then(|n| n.checked_mul(e))
            .filter(|&n| n <= tail.len())
            .ok_or_else(|| bad(format!("storage '{key}' runs past the end of the file")))?;
        stored.insert(key, &tail[..n]);
        rest = &tail[n..];
    }
    object.arena.to_value(object.root, object.len, &mut |t, s| {
        let data = stored
            .get(&s.key)
            .ok_or_else(|| bad(format!("storage '{}' is not in the file", s.key)))?;
        materialize(t, s, data, budget)
    })
}
