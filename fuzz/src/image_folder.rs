//! ImageFolder scanning, structure-aware: the input is a generated tree of folders, files and
//! symbolic links (odd names, links that loop back to an ancestor, empty classes, corrupt and
//! valid images) and an optional class map; `ImageFolder::open` scans it and every sample is loaded.
use arbitrary::Arbitrary;
use kiln_train::data::ImageFolder;
use std::path::{Path, PathBuf};

/// A valid PNG and JPEG (the decode seeds) for files that should decode.
const PNG: &[u8] = include_bytes!("../seeds/decode/rgb.png");
const JPEG: &[u8] = include_bytes!("../seeds/decode/rgb.jpg");

/// Entries made one after another under the root; `parent`/`target` pick a folder made so far.
#[derive(Debug, Arbitrary)]
pub struct Tree {
    /// Folders, files and links, at most 48 used.
    pub entries: Vec<Entry>,
    /// Lines of a `--class-map` file, if one is given.
    pub class_map: Option<Vec<Name>>,
}

/// One thing in the tree.
#[derive(Debug, Arbitrary)]
pub enum Entry {
    /// A folder.
    Dir { parent: u8, name: Name },
    /// A file.
    File {
        parent: u8,
        name: Name,
        content: Content,
    },
    /// A symbolic link to a folder made so far (possibly an ancestor: a loop).
    Link { parent: u8, name: Name, target: u8 },
    /// A symbolic link to nothing.
    Dangling { parent: u8, name: Name },
}

/// A file name: raw bytes (not UTF-8 at times) and an extension.
#[derive(Debug, Arbitrary)]
pub struct Name {
    /// The stem's bytes ('/' and NUL dropped, 40 at most).
    pub stem: Vec<u8>,
    /// The extension.
    pub ext: Ext,
}

/// Extensions, the image ones in several cases.
#[derive(Debug, Arbitrary)]
pub enum Ext {
    /// None.
    None,
    /// `.jpg`.
    Jpg,
    /// `.JPEG`.
    Jpeg,
    /// `.Png`.
    Png,
    /// `.txt`.
    Txt,
}

/// What a file holds.
#[derive(Debug, Arbitrary)]
pub enum Content {
    /// A valid PNG.
    Png,
    /// A valid JPEG.
    Jpeg,
    /// The first bytes of a valid PNG.
    CutPng(u8),
    /// Anything.
    Bytes(Vec<u8>),
}

impl Name {
    fn os(&self) -> std::ffi::OsString {
        use std::os::unix::ffi::OsStringExt;
        let mut b: Vec<u8> = self
            .stem
            .iter()
            .copied()
            .filter(|&c| c != b'/' && c != 0)
            .collect();
        b.truncate(40);
        if b.is_empty() || b == b"." || b == b".." {
            b.insert(0, b'n');
        }
        let ext: &[u8] = match self.ext {
            Ext::None => b"",
            Ext::Jpg => b".jpg",
            Ext::Jpeg => b".JPEG",
            Ext::Png => b".Png",
            Ext::Txt => b".txt",
        };
        b.extend_from_slice(ext);
        std::ffi::OsString::from_vec(b)
    }

    fn line(&self) -> Vec<u8> {
        use std::os::unix::ffi::OsStrExt;
        self.os().as_bytes().to_vec()
    }
}

impl Content {
    fn bytes(&self) -> &[u8] {
        match self {
            Content::Png => PNG,
            Content::Jpeg => JPEG,
            Content::CutPng(n) => &PNG[..(*n as usize).min(PNG.len())],
            Content::Bytes(b) => b,
        }
    }
}

/// Makes `tree` in a fresh scratch folder, then scans and loads it as an ImageFolder.
pub fn run(tree: &Tree) {
    crate::tolerate_decoder_panics();
    let root = crate::scratch::fresh_dir("folder");
    build(&root, tree);
    let class_map = tree.class_map.as_ref().map(|lines| {
        let text: Vec<u8> = lines
            .iter()
            .flat_map(|n| [n.line(), b"\n".to_vec()].concat())
            .collect();
        crate::scratch::write("folder-classes.txt", &text)
    });
    if let Ok(ds) = ImageFolder::open(&root, class_map.as_deref(), 3) {
        crate::idx::use_dataset(&ds);
    }
}

fn build(root: &Path, tree: &Tree) {
    let mut dirs: Vec<PathBuf> = vec![root.to_path_buf()];
    for e in tree.entries.iter().take(48) {
        let pick = |i: &u8, dirs: &[PathBuf]| dirs[*i as usize % dirs.len()].clone();
        // Failures (a name made twice, a file under a link) leave the tree as it is.
        match e {
            Entry::Dir { parent, name } => {
                let p = pick(parent, &dirs).join(name.os());
                if std::fs::create_dir(&p).is_ok() {
                    dirs.push(p);
                }
            }
            Entry::File {
                parent,
                name,
                content,
            } => {
                let p = pick(parent, &dirs).join(name.os());
                if !p.exists() {
                    let _ = std::fs::write(&p, content.bytes());
                }
            }
            Entry::Link {
                parent,
                name,
                target,
            } => {
                let p = pick(parent, &dirs).join(name.os());
                if std::os::unix::fs::symlink(pick(target, &dirs), &p).is_ok() {
                    dirs.push(p);
                }
            }
            Entry::Dangling { parent, name } => {
                let p = pick(parent, &dirs).join(name.os());
                let _ = std::os::unix::fs::symlink(root.join("nowhere"), &p);
            }
        }
    }
}
