//! timm's `RealLabelsImagenet`: top-1 and top-5 accuracy against the ImageNet ReaL labels ("Are
//! we done with ImageNet?"), where an image counts as right when one of its top-k predictions is
//! any of its reassessed labels, and images without labels are left out.

use crate::{Error, Result};
use kiln_engine::Tensor;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The ReaL labels of ImageNet's validation files and the hits scored so far.
#[derive(Debug, Clone)]
pub struct RealLabels {
    file: PathBuf,
    /// Labels by file name (`ILSVRC2012_val_00000001.JPEG`, ...).
    labels: HashMap<String, Vec<usize>>,
    /// Per labelled image scored: whether its top-1 and its top-5 hold one of its labels.
    hits: Vec<[bool; 2]>,
}

impl RealLabels {
    /// Reads `file`, a JSON list whose i-th entry lists the labels of
    /// `ILSVRC2012_val_<i + 1, 8 digits>.JPEG`, for a dataset of `images` files: as in timm, the
    /// two counts must agree.
    pub fn load(file: &Path, images: usize) -> Result<Self> {
        let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
        let lists: Vec<Vec<usize>> = serde_json::from_str(&text).map_err(|e| bad(file, e))?;
        if lists.len() != images {
            return Err(bad(
                file,
                format!(
                    "labels for {} images, but the dataset has {images}",
                    lists.len()
                ),
            ));
        }
        let labels = (lists.into_iter().enumerate())
            .map(|(i, l)| (format!("ILSVRC2012_val_{:08}.JPEG", i + 1), l))
            .collect();
        Ok(RealLabels {
            file: file.to_path_buf(),
            labels,
            hits: Vec::new(),
        })
    }

    /// Scores one batch: `logits` [N, classes] of the images read from `files`, in order (their
    /// file names are looked up; top-5 is top-`classes` with fewer classes).
    pub fn add_result(&mut self, logits: &Tensor, files: &[String]) -> Result<()> {
        let classes = logits.shape()[1];
        let k = 5.min(classes);
        let v = logits.to_vec_f32()?;
        for (row, path) in v.chunks(classes.max(1)).zip(files) {
            let name = Path::new(path)
                .file_name()
                .map_or(path.clone(), |n| n.to_string_lossy().into_owned());
            let labels = self.labels.get(&name).ok_or_else(|| {
                bad(
                    &self.file,
                    format!("no labels for {name} (ImageNet's validation file names)"),
                )
            })?;
            if labels.is_empty() {
                continue;
            }
            let top = top_k(row, k);
            let hit = |n: usize| top[..n].iter().any(|p| labels.contains(p));
            self.hits.push([hit(1), hit(k)]);
        }
        Ok(())
    }

    /// Top-1 and top-5 accuracy in percent over the labelled images scored (NaN for none, as
    /// numpy's mean of nothing).
    pub fn accuracy(&self) -> [f64; 2] {
        let n = self.hits.len() as f64;
        [0, 1].map(|k| 100.0 * self.hits.iter().filter(|h| h[k]).count() as f64 / n)
    }
}

/// The indices of the `k` largest values, largest first (ties: the lower index first).
fn top_k(row: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..row.len()).collect();
    order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
    order.truncate(k);
    order
}

fn bad(file: &Path, msg: impl ToString) -> Error {
    Error::Config {
        what: "real labels",
        value: file.display().to_string(),
        hint: msg.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_top_k_against_each_files_label_set() {
        let dir = std::env::temp_dir().join(format!("kiln-real-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("real.json");
        // File 1: label 2 (its top-1); file 2: label 0 (its 3rd); file 3: none (left out).
        std::fs::write(&file, "[[2], [0, 7], []]").unwrap();
        let mut real = RealLabels::load(&file, 3).unwrap();
        let logits = Tensor::from_vec(
            vec![0.1, 0.2, 0.9, 0.0, 0.5, 0.9, 0.7, 0.0, 0.3, 0.2, 0.1, 0.0],
            &[3, 4],
        )
        .unwrap();
        let files = [
            "a/ILSVRC2012_val_00000001.JPEG",
            "ILSVRC2012_val_00000002.JPEG",
        ]
        .map(String::from);
        real.add_result(&logits.narrow(0, 0, 2).unwrap(), &files)
            .unwrap();
        real.add_result(
            &logits.narrow(0, 2, 1).unwrap(),
            &["ILSVRC2012_val_00000003.JPEG".into()],
        )
        .unwrap();
        // 4 classes: top-5 is top-4, so both labelled images hit there.
        assert_eq!(real.accuracy(), [50.0, 100.0]);
        let e = real
            .add_result(&logits.narrow(0, 0, 1).unwrap(), &["x.png".into()])
            .unwrap_err();
        assert!(e.to_string().contains("x.png"), "{e}");
        let e = RealLabels::load(&file, 4).unwrap_err().to_string();
        assert!(e.contains("3 images") && e.contains("has 4"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
