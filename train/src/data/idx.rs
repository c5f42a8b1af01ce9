//! IDX files (MNIST, Fashion-MNIST): `{prefix}-images-idx3-ubyte[.gz]` + `{prefix}-labels-idx1-ubyte[.gz]`.
use super::{Dataset, Image, Sample};
use crate::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// An MNIST-style dataset held in memory: `n` gray images of `h`×`w` and their labels.
#[derive(Debug, Clone)]
pub struct IdxDataset {
    images: Vec<u8>,
    labels: Vec<u8>,
    h: usize,
    w: usize,
    chans: usize,
    name: String,
}

impl IdxDataset {
    /// Reads split `prefix` (`train` or `t10k`) from `dir`, plain or gzipped, as `chans` (1 or 3) channels.
    pub fn open(dir: &Path, prefix: &str, chans: usize) -> Result<Self> {
        super::image::check_channels(chans)?;
        if !dir.is_dir() {
            return Err(Error::MissingDataDir(dir.to_path_buf()));
        }
        let (img_path, img) = read_maybe_gz(&dir.join(format!("{prefix}-images-idx3-ubyte")))?;
        let (lbl_path, lbl) = read_maybe_gz(&dir.join(format!("{prefix}-labels-idx1-ubyte")))?;
        let img_dims = parse_header(&img_path, &img, 0x0803)?;
        let lbl_dims = parse_header(&lbl_path, &lbl, 0x0801)?;
        if img_dims[0] != lbl_dims[0] {
            let msg = format!(
                "{} images but {} labels in {}",
                img_dims[0],
                lbl_dims[0],
                lbl_path.display()
            );
            return Err(Error::Idx {
                path: img_path,
                msg,
            });
        }
        let name = img_path.display().to_string();
        let (h, w) = (img_dims[1], img_dims[2]);
        Ok(IdxDataset {
            images: img[16..].to_vec(),
            labels: lbl[8..].to_vec(),
            h,
            w,
            chans,
            name,
        })
    }
}

/// Reads `path`, or `path.gz` gunzipped; returns the path actually read.
fn read_maybe_gz(path: &Path) -> Result<(PathBuf, Vec<u8>)> {
    if path.exists() {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        return Ok((path.to_path_buf(), bytes));
    }
    let gz = path.with_extension("gz");
    let gz = if gz.exists() {
        gz
    } else {
        PathBuf::from(format!("{}.gz", path.display()))
    };
    let file = std::fs::File::open(&gz).map_err(|e| Error::io(&gz, e))?;
    let mut bytes = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(&gz, e))?;
    Ok((gz, bytes))
}

/// Checks the magic number and the size; returns the dimensions.
fn parse_header(path: &Path, bytes: &[u8], magic: u32) -> Result<Vec<usize>> {
    let bad = |msg: String| Error::Idx {
        path: path.to_path_buf(),
        msg,
    };
    let word = |i: usize| {
        bytes
            .get(4 * i..4 * i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    let found = word(0).ok_or_else(|| bad("shorter than its header".into()))?;
    if found != magic {
        return Err(bad(format!("magic {found:#010x}, expected {magic:#010x}")));
    }
    let ndim = (magic & 0xff) as usize;
    let dims: Vec<usize> = (1..=ndim)
        .map(|i| word(i).map(|d| d as usize))
        .collect::<Option<_>>()
        .ok_or_else(|| bad("shorter than its header".into()))?;
    let want = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .and_then(|body| body.checked_add(4 * (ndim + 1)));
    if want != Some(bytes.len()) {
        let want = want.map_or("more than fits in memory".to_string(), |w| w.to_string());
        return Err(bad(format!(
            "{} bytes, header {dims:?} needs {want}",
            bytes.len()
        )));
    }
    Ok(dims)
}

impl Dataset for IdxDataset {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn label(&self, i: usize) -> usize {
        self.labels[i] as usize
    }

    fn filename(&self, i: usize) -> String {
        format!("{}#{i}", self.name)
    }

    fn load(&self, i: usize) -> Result<Sample> {
        let px = self.h * self.w;
        let gray = Image::new(
            self.w,
            self.h,
            1,
            self.images[i * px..(i + 1) * px].to_vec(),
        );
        Ok(Sample {
            image: gray.to_channels(self.chans),
            label: self.label(i),
            filename: self.filename(i),
        })
    }

    fn num_classes(&self) -> usize {
        self.labels.iter().max().map_or(0, |&m| m as usize + 1)
    }
}
