//! `kiln export --check-forward`, done in process: the written ONNX file is loaded with tract, run
//! on a random batch, and its output compared with kiln's own forward of the same model (timm's
//! onnx_export.py does the same with onnxruntime).
//!
//! The tolerance follows from float32's rounding on this model and input, measured, not picked:
//! kiln runs the batch once in float32 and once in float64, and `e`, the largest difference of the
//! two, is float32's error for kiln's summation order (at least half an ulp of the largest output,
//! `f32::EPSILON / 2 · max|y|`, the rounding of the result itself). tract sums in orders of its own.
//! The rounding error of a K-term float32 sum, in any order, is within `√K·u·Σ|terms|` (the
//! probabilistic bound of Higham and Mary, 2019), and kiln's measured `e` is at least one such
//! rounding of the same terms, so tract's error lies within `√K·e`, and tract's output within
//! `(1 + √K)·e` of the float64 one, with K the model's longest sum: the largest fan-in of its
//! weights (elements per output row) or the input's pixel count (global pooling), whichever is
//! larger. On resnet50 at 96 px (K 4608) that is 69·e ≈ 4e-6, against timm's fixed 1.5e-3.

use kiln_engine::{DType, Tensor};
use kiln_nn::export::Exportable;
use kiln_nn::Model;
use kiln_train::{Error, Result};
use std::path::Path;
use tract_onnx::prelude::{tvec, DatumExt, Framework, InferenceModelExt, IntoRunnable, IntoTensor};

/// The seed of the random batch (standard normal, as timm's `torch.randn` example input).
const SEED: u64 = 0;

/// Runs `onnx` (the file just written from `exported`, the model or its feature extractor over
/// `model`, in the mode it was written in) with tract on a random batch of `batch` inputs of
/// `size` and compares its outputs with kiln's forward: an error names the largest difference
/// and the tolerance when they disagree. On success, the model is back in float32 and the
/// differences and tolerance are returned.
pub fn check_forward<E: Exportable + ?Sized>(
    exported: &E,
    model: &dyn Model,
    onnx: &Path,
    batch: usize,
    size: [usize; 3],
) -> Result<Checked> {
    let shape = [batch, size[0], size[1], size[2]];
    let x = Tensor::randn(&shape, DType::F32, SEED)?;
    let ours = flat::<f32>(exported.outputs(&x)?)?;
    model.to_dtype(DType::F64)?;
    let run64 = || flat::<f64>(exported.outputs(&x.to_dtype(DType::F64)?)?);
    let exact = run64();
    model.to_dtype(DType::F32)?;
    let exact = exact.map_err(|e| {
        Error::flag(
            "--check-forward",
            format!("kiln's float64 forward, which sets the tolerance, failed: {e}"),
        )
    })?;
    let theirs = tract_forward(onnx, &shape, x.to_vec::<f32>()?)?;
    if theirs.len() != ours.len() {
        return Err(Error::flag(
            "--check-forward",
            format!(
                "tract's output of {} has {} values, kiln's forward {}",
                onnx.display(),
                theirs.len(),
                ours.len()
            ),
        ));
    }
    let largest = exact.iter().fold(0f64, |m, v| m.max(v.abs()));
    let own = max_diff(ours.iter().map(|&v| v as f64), &exact);
    let sum = longest_sum(model, size) as f64;
    let tolerance = (1.0 + sum.sqrt()) * own.max(f64::from(f32::EPSILON) / 2.0 * largest);
    let vs_exact = max_diff(theirs.iter().map(|&v| v as f64), &exact);
    let vs_ours = max_diff(
        theirs.iter().map(|&v| v as f64),
        &ours.iter().map(|&v| v as f64).collect::<Vec<_>>(),
    );
    if vs_exact.is_nan() || vs_exact > tolerance {
        return Err(Error::flag(
            "--check-forward",
            format!(
                "tract's output of {} differs from kiln's forward by up to {vs_ours:.3e} (from \
                 kiln's float64 forward: {vs_exact:.3e}), beyond the tolerance {tolerance:.3e} \
                 ((1 + √{sum}) times kiln's own float32 error {own:.3e})",
                onnx.display()
            ),
        ));
    }
    Ok(Checked {
        vs_ours,
        vs_exact,
        own,
        tolerance,
    })
}

/// The outcome of a passed check: tract's largest difference from kiln's float32 forward and from
/// its float64 forward, kiln's own float32 error, and the tolerance.
#[derive(Debug, Clone, Copy)]
pub struct Checked {
    /// max |tract - kiln float32|.
    pub vs_ours: f64,
    /// max |tract - kiln float64|, held to `tolerance`.
    pub vs_exact: f64,
    /// max |kiln float32 - kiln float64|.
    pub own: f64,
    /// `(1 + √K)·own` (`own` at least half an ulp of the largest output), K the longest sum.
    pub tolerance: f64,
}

impl std::fmt::Display for Checked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "largest difference from kiln's forward {:.3e}; from its float64 forward {:.3e}, \
             within {:.3e} (from kiln's own float32 error {:.3e})",
            self.vs_ours, self.vs_exact, self.tolerance, self.own
        )
    }
}

/// The model's longest float32 sum: the largest fan-in of its weights (a weight of two or more
/// dims sums `numel / rows` products per output) or the input's pixel count, as global pooling
/// sums them.
fn longest_sum(model: &dyn Model, size: [usize; 3]) -> usize {
    model
        .named_tensors()
        .iter()
        .map(|t| t.tensor.shape())
        .filter(|s| s.len() >= 2 && s[0] > 0)
        .map(|s| s.iter().product::<usize>() / s[0])
        .fold(size[1] * size[2], usize::max)
}

/// Every value of `outputs`, in order.
fn flat<T: kiln_engine::StorageElem>(outputs: Vec<Tensor>) -> Result<Vec<T>> {
    let mut all = Vec::new();
    for o in outputs {
        all.extend(o.to_vec::<T>()?);
    }
    Ok(all)
}

/// The largest absolute difference of `a` and `b` (NaN when either holds one).
fn max_diff(a: impl Iterator<Item = f64>, b: &[f64]) -> f64 {
    a.zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, |m, d| {
        if d.is_nan() || m.is_nan() {
            f64::NAN
        } else {
            m.max(d)
        }
    })
}

/// tract's run of the ONNX file at `path` on the input `x` of `shape`: its outputs, flattened in
/// order.
fn tract_forward(path: &Path, shape: &[usize], x: Vec<f32>) -> Result<Vec<f32>> {
    let fail = |what: &str, e: tract_onnx::prelude::TractError| {
        Error::flag(
            "--check-forward",
            format!("tract cannot {what} {}: {e}", path.display()),
        )
    };
    // The input's shape made concrete: a dynamic-size file's height and width are symbolic.
    let fact = f32::fact(shape).into();
    let plan = tract_onnx::onnx()
        .model_for_path(path)
        .map_err(|e| fail("read", e))?
        .with_input_fact(0, fact)
        .map_err(|e| fail("set the input shape of", e))?
        .into_optimized()
        .map_err(|e| fail("optimize", e))?
        .into_runnable()
        .map_err(|e| fail("plan", e))?;
    let input = tract_onnx::prelude::tract_ndarray::ArrayD::from_shape_vec(shape.to_vec(), x)
        .map_err(|e| Error::flag("--check-forward", e.to_string()))?
        .into_tensor();
    let out = plan.run(tvec!(input.into())).map_err(|e| fail("run", e))?;
    let mut all = Vec::new();
    for o in out.iter() {
        let view =
            (o.to_plain_array_view::<f32>()).map_err(|e| fail("read the float32 outputs of", e))?;
        all.extend(view.iter().copied());
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_nn::export::{export_onnx, ExportOptions};
    use kiln_nn::{create_model, ModelArgs};

    /// `name` for 1×32×32 inputs and 10 classes, its weights drawn from `seed`, in eval mode.
    fn model(name: &str, seed: u64) -> Box<dyn Model> {
        kiln_engine::manual_seed(seed);
        let args = ModelArgs {
            num_classes: 10,
            in_chans: 1,
            img_size: Some(32),
            ..ModelArgs::default()
        };
        let mut m = create_model(name, &args).unwrap();
        m.set_training(false);
        m
    }

    /// The ONNX file of `m` for batches of 1×32×32 inputs, written under the temp dir.
    fn onnx_of(m: &dyn Model, tag: &str) -> std::path::PathBuf {
        let opts = ExportOptions {
            opset: 17,
            batch_size: 2,
            input_size: [1, 32, 32],
            keep_init: false,
            metadata: Vec::new(),
            dynamic_size: false,
        };
        let path =
            std::env::temp_dir().join(format!("kiln-check-{tag}-{}.onnx", std::process::id()));
        std::fs::write(&path, export_onnx(m, &opts).unwrap()).unwrap();
        path
    }

    #[test]
    fn a_models_own_file_passes_within_its_float32_error() {
        for name in ["resnet50", "convnext_atto", "vit_tiny_patch16_224"] {
            let m = model(name, 1);
            let path = onnx_of(m.as_ref(), name);
            let checked = check_forward(m.as_ref(), m.as_ref(), &path, 3, [1, 32, 32]);
            std::fs::remove_file(&path).ok();
            let c = checked.unwrap_or_else(|e| panic!("{name}: {e}"));
            let (diff, tolerance) = (c.vs_ours, c.tolerance);
            // tract lies within the tolerance of the float64 forward, kiln's float32 within its
            // own error of it: so the two within their sum.
            assert!(
                tolerance > 0.0 && diff <= tolerance + c.own,
                "{name}: {diff} {tolerance}"
            );
            // The model is float32 again for whatever follows.
            let x = Tensor::randn(&[1, 1, 32, 32], DType::F32, 5).unwrap();
            assert_eq!(m.forward(&x).unwrap().dtype(), DType::F32, "{name}");
        }
    }

    #[test]
    fn another_models_file_fails_naming_the_difference() {
        let a = model("resnet18", 1);
        let path = onnx_of(a.as_ref(), "other");
        let b = model("resnet18", 2);
        let e = check_forward(b.as_ref(), b.as_ref(), &path, 2, [1, 32, 32]);
        std::fs::remove_file(&path).ok();
        let e = e.unwrap_err().to_string();
        assert!(
            e.contains("--check-forward") && e.contains("differs from kiln's forward by up to"),
            "{e}"
        );
        assert!(e.contains("beyond the tolerance"), "{e}");
    }
}
