//! What the tests of the row-wise losses (bce.cu, softmax_xent.cu) share: their shapes, logits
//! with a class label per row on the host and the device, gradient scales, and the f64 check.

use super::Gpu;
use cudarc::driver::{CudaSlice, DeviceRepr};
use kiln_kernels::cpu::softmax_xent::Targets;
use kiln_kernels::cuda::softmax_xent::XentTargets;

/// (rows, len): a warp per row, then a block per row.
pub const SHAPES: [(usize, usize); 2] = [(19, 77), (3, 1301)];

/// Deterministic, sign-mixed logits: `rows` rows of `len`, in about ±506/`spread`.
pub fn logits(rows: usize, len: usize, spread: f32) -> Vec<f32> {
    (0..rows * len)
        .map(|i| ((i * 7919 % 1013) as f32 - 506.0) / spread)
        .collect()
}

/// A per-row gradient scale, 1/(r + 2).
pub fn scales(rows: usize) -> Vec<f32> {
    (0..rows).map(|r| 1.0 / (r + 2) as f32).collect()
}

/// Logits and a class label per row, on the host and the device.
pub struct Batch<T> {
    /// Rows.
    pub rows: usize,
    /// Logits per row.
    pub len: usize,
    /// The logits, row-major.
    pub x: Vec<T>,
    /// A class index per row.
    pub labels: Vec<i64>,
    /// The logits on the device.
    pub dx: CudaSlice<T>,
    /// The labels on the device.
    pub dlab: CudaSlice<i64>,
}

impl<T: DeviceRepr> Batch<T> {
    fn new(g: &Gpu, (rows, len): (usize, usize), x: Vec<T>, labels: Vec<i64>) -> Batch<T> {
        let (dx, dlab) = (g.upload(&x), g.upload(&labels));
        Batch {
            rows,
            len,
            x,
            labels,
            dx,
            dlab,
        }
    }

    /// The class labels with label smoothing `smoothing`, for the twin and for the kernels.
    pub fn hard(&self, g: &Gpu, smoothing: f64) -> (Targets<'_, T>, XentTargets) {
        let t = XentTargets::Hard {
            labels: g.ptr(&self.dlab),
            smoothing,
        };
        (Targets::Hard(&self.labels, smoothing), t)
    }
}

impl Batch<f32> {
    /// `logits(rows, len, spread)`, with label (31r + 5) mod len in row r.
    pub fn f32(g: &Gpu, (rows, len): (usize, usize), spread: f32) -> Batch<f32> {
        let labels = (0..rows).map(|r| ((r * 31 + 5) % len) as i64).collect();
        Batch::new(g, (rows, len), logits(rows, len, spread), labels)
    }
}

impl Batch<f64> {
    /// The f64 tests' 7 rows of 45: `logits(7, 45, spread)` times 3, label 17r mod 45 in row r.
    pub fn f64(g: &Gpu, spread: f32) -> Batch<f64> {
        let (rows, len) = (7, 45);
        let x = logits(rows, len, spread)
            .iter()
            .map(|&v| v as f64 * 3.0)
            .collect();
        let labels = (0..rows).map(|r| (r * 17 % len) as i64).collect();
        Batch::new(g, (rows, len), x, labels)
    }
}

/// Asserts |got - want| <= 1e-12·max(|want|, 1) row by row.
pub fn assert_rows_f64(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (r, (a, b)) in got.iter().zip(want).enumerate() {
        assert!(
            (a - b).abs() <= 1e-12 * b.abs().max(1.0),
            "{what}[{r}]: {a} vs {b}"
        );
    }
}
