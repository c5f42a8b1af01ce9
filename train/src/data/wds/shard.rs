//! One shard read as webdataset's `tarfile_to_samples` reads it: members in archive order,
//! grouped into samples by key (the name up to the first dot of its last path part), metadata
//! (`__*__`) skipped, extensions lower-cased. Each sample is resolved to its image member and
//! label (`SampleKeys`); what cannot be read is skipped with a warning naming the shard and the
//! member, as timm's `handler=log_and_continue` does, and a target key that cannot be resolved is
//! an error. The shard is memory-mapped while it is read and dropped after: only its own
//! samples' byte ranges are held.
use super::keys::{Label, SampleKeys};
use super::WdsSample;
use crate::data::tar::members;
use crate::{Error, Result};
use memmap2::Mmap;
use std::path::PathBuf;
use std::sync::Arc;

/// The readable samples of `shard`, in archive order. A fault in the archive (cut short, a bad
/// header) ends it with a warning, keeping the samples before it.
pub fn read_shard(shard: &Arc<PathBuf>, keys: &SampleKeys) -> Result<Vec<WdsSample>> {
    let path = shard.as_path();
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            log::warn!("skipping shard {}: {e}", path.display());
            return Ok(vec![]);
        }
    };
    // SAFETY: the shard is opened read-only and only read while this function runs; like any
    // reader of a file, we assume no other process truncates it meanwhile.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    let (found, fault) = members(path, &map);
    let mut out = Vec::new();
    let mut current: Option<Group> = None;
    for (offset, size, name) in found {
        let Some((key, ext)) = base_plus_ext(&name) else {
            continue;
        };
        if is_meta(&name) {
            continue;
        }
        if current.as_ref().is_none_or(|g| g.key != key) {
            if let Some(g) = current.take() {
                g.resolve(shard, &map, keys, &mut out)?;
            }
            current = Some(Group {
                key: key.to_string(),
                members: vec![],
            });
        }
        let group = current.as_mut().expect("a group was just started");
        let ext = ext.to_lowercase();
        if group.members.iter().any(|m| m.0 == ext) {
            log::warn!(
                "{}: duplicate file name {name} in the shard, member skipped",
                path.display()
            );
            continue;
        }
        group.members.push((ext, offset, size));
    }
    if let Some(g) = current.take() {
        g.resolve(shard, &map, keys, &mut out)?;
    }
    if let Some(e) = fault {
        log::warn!("{e}; the shard's later members are skipped");
    }
    Ok(out)
}

/// The members of one sample: (extension, data offset, size).
struct Group {
    key: String,
    members: Vec<(String, usize, usize)>,
}

impl Group {
    /// Pushes the sample onto `out` if its image and label are found; warns and skips it if not.
    fn resolve(
        self,
        shard: &Arc<PathBuf>,
        map: &[u8],
        keys: &SampleKeys,
        out: &mut Vec<WdsSample>,
    ) -> Result<()> {
        let member = |ext: &str| {
            let m = self.members.iter().find(|m| m.0 == ext)?;
            Some(&map[m.1..m.1 + m.2])
        };
        let name = format!("{}:{}", shard.display(), self.key);
        let label = match keys.label(member("cls"), member("json")) {
            Label::Class(c) => c,
            Label::Unlabelled => return Ok(()),
            Label::Skip(why) => {
                log::warn!("skipping sample {name}: {why}");
                return Ok(());
            }
            Label::Refuse(why) => {
                return Err(Error::Wds {
                    path: shard.to_path_buf(),
                    msg: format!("sample {}: {why}", self.key),
                })
            }
        };
        let image = keys
            .image
            .iter()
            .find_map(|k| self.members.iter().find(|m| &m.0 == k));
        let Some((ext, offset, size)) = image else {
            let have: Vec<&str> = self.members.iter().map(|m| m.0.as_str()).collect();
            log::warn!(
                "skipping sample {name}: no image member {:?} (it has {have:?})",
                keys.image
            );
            return Ok(());
        };
        out.push(WdsSample {
            shard: shard.clone(),
            key: self.key,
            ext: ext.clone(),
            offset: *offset as u64,
            size: *size,
            label,
        });
        Ok(())
    }
}

/// webdataset's `base_plus_ext`: `^((?:.*/|)[^.]+)[.]([^/]*)$`, the key and the extensions.
fn base_plus_ext(name: &str) -> Option<(&str, &str)> {
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    let dot = slash + name[slash..].find('.')?;
    if dot == slash {
        return None;
    }
    Some((&name[..dot], &name[dot + 1..]))
}

/// webdataset's metadata members: `__[^/]*__($|/)` at the start of the name.
fn is_meta(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("__") else {
        return false;
    };
    let first = rest.split('/').next().unwrap_or("");
    first.len() >= 2 && first.ends_with("__")
}

#[cfg(test)]
mod tests {
    use super::{base_plus_ext, is_meta};

    #[test]
    fn keys_and_extensions() {
        assert_eq!(
            base_plus_ext("a/b/000012.seg.png"),
            Some(("a/b/000012", "seg.png"))
        );
        assert_eq!(base_plus_ext("x.jpg"), Some(("x", "jpg")));
        assert_eq!(base_plus_ext("noext"), None);
        assert_eq!(base_plus_ext("d.x/.hidden"), None);
        assert!(is_meta("__meta__") && is_meta("__k__/x") && is_meta("____"));
        assert!(!is_meta("__meta__.json") && !is_meta("a/__meta__") && !is_meta("___"));
    }
}
