//! The format `torch.save` has written since PyTorch 1.6: a zip archive (entries stored, not
//! compressed) of `<name>/data.pkl`, the pickled object, `<name>/byteorder`, and one entry
//! `<name>/data/<key>` of raw little-endian bytes per storage.

use super::fault::{bad, Res};
use super::storage::materialize;
use super::unpickler::unpickle;
use super::value::Value;
use std::collections::HashMap;
use std::io::{Cursor, Read};
use zip::ZipArchive;

/// The object a torch zip archive holds.
pub(super) fn read(bytes: &[u8], budget: &mut usize) -> Res<Value> {
    let mut archive = ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| bad(format!("a zip archive that cannot be read: {e}")))?;
    let pkl = archive
        .file_names()
        .filter_map(|n| n.ok())
        .filter(|n| *n == "data.pkl" || n.ends_with("/data.pkl"))
        .min_by_key(|n| n.len())
        .map(|n| n.to_string())
        .ok_or_else(|| bad("a zip archive without data.pkl: not a file torch.save wrote"))?;
    let prefix = pkl.strip_suffix("data.pkl").unwrap_or_default().to_string();
    let byteorder = format!("{prefix}byteorder");
    if archive.index_for_name(&byteorder).is_some() {
        let order = entry(&mut archive, &byteorder, bytes.len())?;
        if order.trim_ascii() != b"little" {
            return Err(bad(format!(
                "storages stored {}-endian: kiln reads little-endian files",
                String::from_utf8_lossy(order.trim_ascii())
            )));
        }
    }
    let data = entry(&mut archive, &pkl, bytes.len())?;
    let pickle = unpickle(&data)?;
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    pickle.arena.to_value(pickle.root, pickle.len, &mut |t, s| {
        if !storages.contains_key(&s.key) {
            let stored = entry(
                &mut archive,
                &format!("{prefix}data/{}", s.key),
                bytes.len(),
            )?;
            storages.insert(s.key.clone(), stored);
        }
        materialize(t, s, &storages[&s.key], budget)
    })
}

/// The bytes of entry `name`, CRC-checked; a stored entry is never longer than the archive.
fn entry(archive: &mut ZipArchive<Cursor<&[u8]>>, name: &str, archive_len: usize) -> Res<Vec<u8>> {
    let mut file = archive
        .by_name(name)
        .map_err(|e| bad(format!("entry {name}: {e}")))?;
    let size = usize::try_from(file.size())
        .ok()
        .filter(|&s| s <= archive_len)
        .ok_or_else(|| {
            bad(format!(
                "entry {name} claims {} bytes, more than the archive",
                file.size()
            ))
        })?;
    let mut out = Vec::with_capacity(size);
    file.read_to_end(&mut out)
        .map_err(|e| bad(format!("entry {name}: {e}")))?;
    Ok(out)
}
