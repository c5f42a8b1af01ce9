//! Tar archives read in place: one or many `.tar` files memory-mapped, indexed once, never extracted.
//! The class of a member is its folder's name, or for a member at the top of one of a folder's
//! tars, the tar's name (timm's `ReaderImageInTar`).
use super::classes::{class_map_sorted, load_class_map, natural_key, ClassMap};
use super::{decode, is_image, Dataset, Sample};
use crate::{Error, Result};
use memmap2::Mmap;
use std::path::{Path, PathBuf};

/// One image member: its archive, byte range and name.
#[derive(Debug, Clone)]
struct Member {
    archive: usize,
    offset: usize,
    size: usize,
    name: String,
    label: usize,
}

/// Image members of tar archives, decoded on `load` straight from the mapped archive.
#[derive(Debug)]
pub struct TarDataset {
    archives: Vec<(PathBuf, Mmap)>,
    members: Vec<Member>,
    classes: ClassMap,
    chans: usize,
}

impl TarDataset {
    /// Indexes `path`: a `.tar` file, or a folder whose `.tar` files are all read (in name order).
    /// Classes are the members' folder names (or per-class tars' names) in natural order, or the
    /// lines of `class_map`.
    pub fn open(path: &Path, class_map: Option<&Path>, chans: usize) -> Result<Self> {
        super::image::check_channels(chans)?;
        let tars = tar_files(path)?;
        let mut archives = Vec::new();
        let mut found: Vec<(usize, usize, usize, String)> = Vec::new();
        for (k, tar) in tars.into_iter().enumerate() {
            let file = std::fs::File::open(&tar).map_err(|e| Error::io(&tar, e))?;
            // SAFETY: the archive is opened read-only and only read; like any reader of a file, we
            // assume no other process truncates it while the dataset lives.
            let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(&tar, e))?;
            for (offset, size, name) in index(&tar, &map)? {
                found.push((k, offset, size, name));
            }
            archives.push((tar, map));
        }
        // timm's label: the last part of `<tar stem>/<member's folder>`, the stem left out when
        // `path` is the one tar (so a top-level member of a per-class tar is of the tar's class).
        let stems: Vec<String> = match path.is_file() {
            true => vec![String::new()],
            false => (archives.iter())
                .map(|(p, _)| {
                    p.file_stem()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect(),
        };
        let folder = |k: usize, name: &str| {
            let parent = Path::new(name).parent().and_then(|p| p.file_name());
            parent
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_else(|| stems[k].clone())
        };
        let classes = match class_map {
            Some(p) => load_class_map(p)?,
            None => class_map_sorted(found.iter().map(|f| folder(f.0, &f.3)).collect()),
        };
        let mut members: Vec<Member> = found
            .into_iter()
            .filter_map(|(archive, offset, size, name)| {
                let label = *classes.get(&folder(archive, &name))?;
                Some(Member {
                    archive,
                    offset,
                    size,
                    name,
                    label,
                })
            })
            .collect();
        if members.is_empty() {
            return Err(Error::EmptyDataset(path.to_path_buf()));
        }
        members.sort_by_cached_key(|m| natural_key(&m.name));
        Ok(TarDataset {
            archives,
            members,
            classes,
            chans,
        })
    }

    /// The class name -> index map.
    pub fn classes(&self) -> &ClassMap {
        &self.classes
    }

    /// The member's name inside its archive (e.g. `n01440764/img_1.jpg`).
    pub fn member_name(&self, i: usize) -> &str {
        &self.members[i].name
    }
}

/// `path` itself if a file, else the `.tar` files in it, sorted.
fn tar_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        return Err(Error::MissingDataDir(path.to_path_buf()));
    }
    let mut tars = Vec::new();
    for entry in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
        let p = entry.map_err(|e| Error::io(path, e))?.path();
        if p.extension().is_some_and(|e| e == "tar") {
            tars.push(p);
        }
    }
    if tars.is_empty() {
        return Err(Error::Tar {
            path: path.to_path_buf(),
            msg: "no .tar file in this folder".into(),
        });
    }
    tars.sort();
    Ok(tars)
}

/// (data offset, size, name) of each regular image file in the archive.
fn index(path: &Path, tar: &[u8]) -> Result<Vec<(usize, usize, String)>> {
    let (found, fault) = members(path, tar);
    match fault {
        Some(e) => Err(e),
        None => Ok(found
            .into_iter()
            .filter(|(_, _, name)| is_image(Path::new(name)))
            .collect()),
    }
}

/// (data offset, size, name) of each regular file in the archive, in archive order, and the
/// fault that stopped the walk early (a truncated archive or a bad header), if any: the members
/// before it are whole and returned.
pub(crate) fn members(path: &Path, tar: &[u8]) -> (Vec<(usize, usize, String)>, Option<Error>) {
    let bad = |msg: String| Error::Tar {
        path: path.to_path_buf(),
        msg,
    };
    let mut out = Vec::new();
    let (mut pos, mut long_name) = (0usize, None::<String>);
    while pos + 512 <= tar.len() {
        let hdr = &tar[pos..pos + 512];
        if hdr.iter().all(|&b| b == 0) {
            return (out, None); // end-of-archive block
        }
        let Some(size) = header_size(&hdr[124..136]) else {
            return (out, Some(bad(format!("bad size field at byte {pos}"))));
        };
        let data = pos + 512;
        if size > tar.len() - data {
            let name = long_name.take().unwrap_or_else(|| ustar_name(hdr));
            let msg = format!("member {name} at byte {pos} runs past the end (truncated archive)");
            return (out, Some(bad(msg)));
        }
        match hdr[156] {
            b'L' => long_name = Some(cstr(&tar[data..data + size])),
            b'x' => long_name = pax_path(&tar[data..data + size]).or(long_name),
            b'0' | 0 => {
                let name = long_name.take().unwrap_or_else(|| ustar_name(hdr));
                out.push((data, size, name));
            }
            _ => long_name = None,
        }
        pos = data + size.div_ceil(512) * 512;
    }
    if pos < tar.len() {
        let msg = format!("header at byte {pos} cut short (truncated archive)");
        return (out, Some(bad(msg)));
    }
    (out, None)
}

/// A NUL-terminated field as text.
fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// ustar name: `prefix/name` when the prefix field is set.
fn ustar_name(hdr: &[u8]) -> String {
    let (name, prefix) = (cstr(&hdr[0..100]), cstr(&hdr[345..500]));
    if &hdr[257..262] == b"ustar" && !prefix.is_empty() {
        format!("{prefix}/{name}")
    } else {
        name
    }
}

/// The size field: octal text, or GNU base-256 when the high bit is set.
fn header_size(f: &[u8]) -> Option<usize> {
    if f[0] & 0x80 != 0 {
        // Base-256: a size past usize (or past any archive) is refused as a bad field.
        return f[1..].iter().try_fold(0usize, |acc, &b| {
            acc.checked_mul(256).map(|a| a | b as usize)
        });
    }
    let text = cstr(f);
    let text = text.trim_matches(|c: char| c == ' ' || c == '\0');
    if text.is_empty() {
        Some(0)
    } else {
        usize::from_str_radix(text, 8).ok()
    }
}

/// The `path=` record of a PAX extended header.
fn pax_path(b: &[u8]) -> Option<String> {
    String::from_utf8_lossy(b).lines().find_map(|rec| {
        let (_, kv) = rec.split_once(' ')?;
        kv.strip_prefix("path=").map(str::to_string)
    })
}

impl Dataset for TarDataset {
    fn len(&self) -> usize {
        self.members.len()
    }

    fn label(&self, i: usize) -> usize {
        self.members[i].label
    }

    fn filename(&self, i: usize) -> String {
        let m = &self.members[i];
        format!("{}:{}", self.archives[m.archive].0.display(), m.name)
    }

    fn load(&self, i: usize) -> Result<Sample> {
        let m = &self.members[i];
        let bytes = &self.archives[m.archive].1[m.offset..m.offset + m.size];
        let name = self.filename(i);
        Ok(Sample {
            image: decode(bytes, self.chans, &name)?,
            label: m.label,
            filename: name,
        })
    }

    fn num_classes(&self) -> usize {
        self.classes.len()
    }
}
