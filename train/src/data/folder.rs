//! `ImageFolder`: `root/<class>/**/<image>.{jpg,jpeg,png}`, classes in natural order or from a class map;
//! images directly in `root` form the class `""`, as in timm's `find_images_and_targets` (so a
//! plain folder of images reads as one class).
use super::classes::{class_map_sorted, load_class_map, natural_key, ClassMap};
use super::{decode, Dataset, Sample};
use crate::{Error, Result};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// File extensions read as images (case-insensitive).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// A folder of class subfolders; images are decoded on `load`.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    root: PathBuf,
    samples: Vec<(PathBuf, usize)>,
    classes: ClassMap,
    chans: usize,
}

impl ImageFolder {
    /// Scans `root`; classes are its subfolders in natural order (and `""` for images directly in
    /// it), or the lines of `class_map`. Images are decoded to `chans` (1 or 3) channels.
    pub fn open(root: &Path, class_map: Option<&Path>, chans: usize) -> Result<Self> {
        super::image::check_channels(chans)?;
        if !root.is_dir() {
            return Err(Error::MissingDataDir(root.to_path_buf()));
        }
        let dirs = class_dirs(root)?;
        let loose = loose_images(root)?;
        let mut names: Vec<String> = dirs.iter().map(|(n, _)| n.clone()).collect();
        if !loose.is_empty() {
            names.push(String::new());
        }
        let classes = match class_map {
            Some(p) => load_class_map(p)?,
            None => class_map_sorted(names),
        };
        let mut samples = Vec::new();
        if let Some(&label) = classes.get("").filter(|_| !loose.is_empty()) {
            samples.extend(loose.into_iter().map(|f| (f, label)));
        }
        for (name, dir) in &dirs {
            let Some(&label) = classes.get(name) else {
                continue; // a class map selects a subset of the folders, as in timm
            };
            let mut files = Vec::new();
            collect_images(dir, &mut HashSet::new(), &mut files)?;
            if files.is_empty() {
                return Err(Error::EmptyClass(dir.clone()));
            }
            samples.extend(files.into_iter().map(|f| (f, label)));
        }
        if samples.is_empty() {
            return Err(Error::EmptyDataset(root.to_path_buf()));
        }
        samples.sort_by_cached_key(|s| natural_key(&s.0.to_string_lossy()));
        Ok(ImageFolder {
            root: root.to_path_buf(),
            samples,
            classes,
            chans,
        })
    }

    /// The class name -> index map.
    pub fn classes(&self) -> &ClassMap {
        &self.classes
    }

    /// The folder scanned.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// Immediate subfolders of `root` as (name, path).
fn class_dirs(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(root).map_err(|e| Error::io(root, e))? {
        let path = entry.map_err(|e| Error::io(root, e))?.path();
        if path.is_dir() {
            dirs.push((
                path.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                path,
            ));
        }
    }
    Ok(dirs)
}

/// Image files directly in `root` (not in its subfolders).
fn loose_images(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root).map_err(|e| Error::io(root, e))? {
        let path = entry.map_err(|e| Error::io(root, e))?.path();
        if path.is_file() && is_image(&path) {
            files.push(path);
        }
    }
    Ok(files)
}

/// The image file `path` decoded to `chans` channels, as the sample of class `label`.
pub(super) fn load_file(path: &Path, chans: usize, label: usize) -> Result<Sample> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let name = path.display().to_string();
    Ok(Sample {
        image: decode(&bytes, chans, &name)?,
        label,
        filename: name,
    })
}

/// Whether `path` ends in one of `IMAGE_EXTENSIONS`.
pub fn is_image(path: &Path) -> bool {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    IMAGE_EXTENSIONS.contains(&ext.as_str())
}

/// Image files under `dir`, recursively, following symbolic links; a folder reached again
/// (`seen` holds the real paths read so far, so a link looping back to an ancestor) is read once.
fn collect_images(dir: &Path, seen: &mut HashSet<PathBuf>, out: &mut Vec<PathBuf>) -> Result<()> {
    let real = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
    if !seen.insert(real) {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        // The entry's type comes with the listing (no stat a file); a link is followed.
        let kind = entry.file_type().map_err(|e| Error::io(&path, e))?;
        let is_dir = match kind.is_symlink() {
            true => path.is_dir(),
            false => kind.is_dir(),
        };
        if is_dir {
            collect_images(&path, seen, out)?;
        } else if is_image(&path) {
            out.push(path);
        }
    }
    Ok(())
}

impl Dataset for ImageFolder {
    fn len(&self) -> usize {
        self.samples.len()
    }

    fn label(&self, i: usize) -> usize {
        self.samples[i].1
    }

    fn filename(&self, i: usize) -> String {
        self.samples[i].0.display().to_string()
    }

    fn load(&self, i: usize) -> Result<Sample> {
        let (path, label) = &self.samples[i];
        load_file(path, self.chans, *label)
    }

    fn num_classes(&self) -> usize {
        self.classes.len()
    }
}
