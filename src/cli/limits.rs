//! Sizes a run asks for, refused before they are allocated: counts that must be positive, loader
//! threads beyond what a process should start, and batches, classifiers or feature maps whose
//! bytes alone exceed the memory of the device that would hold them. The memory checks compare a
//! lower bound (what the run needs at the very least) with what is free, so they never refuse a
//! run that could fit; they catch the size that would otherwise end in the kernel's OOM killer.

use kiln_engine::Device;
use kiln_nn::{FeatureInfo, Model, ModelArgs, ModelSpec};
use kiln_train::{Error, Result};

/// Loader threads a run may start (one per worker).
pub const MAX_WORKERS: usize = 1024;

/// The widest pooled feature of any registered model (VGG's 4096, doubled for `catavgmax`);
/// classifiers are estimated with it before a probe model is built to read the true width.
const WIDEST_FEATURES: u64 = 8192;

/// Classes a probe model is built with to read the classifier's input width.
const PROBE_CLASSES: usize = 1000;

/// Refuses a zero `value` of `name`.
pub fn at_least_one(name: &str, value: usize) -> Result<()> {
    match value {
        0 => Err(Error::flag(name, "must be at least 1")),
        _ => Ok(()),
    }
}

/// Refuses input channels images are not decoded to (1, L; 3, RGB).
pub fn check_channels(in_chans: usize) -> Result<()> {
    match in_chans {
        1 | 3 => Ok(()),
        n => Err(Error::flag(
            "--in-chans",
            format!("{n}: kiln decodes images to 1 (L) or 3 (RGB) channels"),
        )),
    }
}

/// Refuses more loader workers than [`MAX_WORKERS`].
pub fn check_workers(workers: usize) -> Result<()> {
    if workers > MAX_WORKERS {
        return Err(Error::flag(
            "--workers",
            format!("{workers} loader threads: kiln starts one thread per worker, at most {MAX_WORKERS}"),
        ));
    }
    Ok(())
}

/// Refuses a batch larger than a rank's share of the training images: timm's training loader
/// drops the last incomplete batch, so no step would run.
pub fn check_batches(images: usize, world: usize, batch: usize) -> Result<()> {
    let per_rank = images / world.max(1);
    if batch > per_rank {
        let share = match world {
            1 => format!("the {images} training images"),
            _ => format!("each rank's {per_rank} of the {images} training images"),
        };
        return Err(Error::flag(
            "--batch-size",
            format!("{batch} is more than {share}: the loader drops an incomplete last batch (timm's drop_last), so no step would run"),
        ));
    }
    Ok(())
}

/// Memory free for the tensors of a run on `device`: the CPU's `MemAvailable`, or the GPU's
/// free memory; `None` where it cannot be read (the checks are then skipped).
pub struct Budget {
    bytes: u64,
    place: String,
}

impl Budget {
    /// What is free now on `device`.
    pub fn of(device: Device) -> Option<Budget> {
        let bytes = match device {
            Device::Cpu => mem_available()?,
            Device::Cuda(n) => kiln_engine::cuda::device(n).ok()?.mem_get_info().ok()?.0 as u64,
        };
        let place = match device {
            Device::Cpu => "the CPU's memory".to_string(),
            Device::Cuda(n) => format!("cuda:{n}"),
        };
        Some(Budget { bytes, place })
    }

    /// Refuses `need` bytes (at least) that exceed what is free, blaming `name` for `what`.
    fn require(&self, name: &str, need: u64, what: &str) -> Result<()> {
        if need <= self.bytes {
            return Ok(());
        }
        Err(Error::flag(
            name,
            format!(
                "{what} need at least {} but {} has {} free",
                gib(need),
                self.place,
                gib(self.bytes)
            ),
        ))
    }
}

/// `MemAvailable` of `/proc/meminfo` in bytes.
fn mem_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

/// One batch of `batch` float32 images of `chans`×`size`×`size` must fit before anything else:
/// blames `--img-size` for a size that cannot fit even one image, else `--batch-size`.
pub fn check_input_batch(budget: &Budget, batch: usize, chans: usize, size: usize) -> Result<()> {
    let image = 4 * chans as u64 * (size as u64).pow(2);
    budget.require("--img-size", image, &format!("{size}x{size} input images"))?;
    let what = format!("batches of {batch} images of {chans}x{size}x{size}");
    budget.require("--batch-size", image.saturating_mul(batch as u64), &what)
}

/// Refuses a classifier of `num_classes` whose weights and gradients cannot fit, before the model
/// is built: by the widest classifier any model has, then (only where that could not fit) by the
/// width of a probe model built with [`PROBE_CLASSES`].
pub fn check_classifier(budget: &Budget, spec: &ModelSpec, args: &ModelArgs) -> Result<()> {
    let classes = args.num_classes as u64;
    // Weights and their gradients, float32.
    let head_bytes = |width: u64| 2 * 4 * classes * (width + 1);
    if head_bytes(WIDEST_FEATURES) <= budget.bytes || args.num_classes <= PROBE_CLASSES {
        return Ok(());
    }
    let probe = spec.create(&ModelArgs {
        num_classes: PROBE_CLASSES,
        ..args.clone()
    })?;
    let heads = if probe.has_distillation_head() { 2 } else { 1 };
    let width = probe.head_hidden_size() as u64;
    budget.require(
        "--num-classes",
        heads * head_bytes(width),
        &format!("the classifier's weights and gradients ({width} features x {classes} classes)"),
    )
}

/// Refuses a batch whose feature maps alone cannot fit: the sum over the model's feature stages
/// of one map each (the training step keeps every block's output, so many times this) at
/// `bytes_per_value`, for `batch` images of `size`×`size`.
pub fn check_activations(
    budget: &Budget,
    model: &dyn Model,
    batch: usize,
    size: usize,
    bytes_per_value: usize,
) -> Result<()> {
    let values = stage_maps(model, size).sum::<u64>();
    let what = format!("the feature maps of a batch of {batch} at {size}x{size}");
    require_batch(budget, values * bytes_per_value as u64, batch, &what)
}

/// Refuses an evaluation batch whose largest feature map alone cannot fit (inference frees each
/// map once the next is computed, so one map is the least it holds).
pub fn check_largest_map(
    budget: &Budget,
    model: &dyn Model,
    batch: usize,
    size: usize,
    bytes_per_value: usize,
) -> Result<()> {
    let values = stage_maps(model, size).max().unwrap_or(0);
    let what = format!("the largest feature map of a batch of {batch} at {size}x{size}");
    require_batch(budget, values * bytes_per_value as u64, batch, &what)
}

/// Values of one image's map at each of the model's feature stages.
fn stage_maps(model: &dyn Model, size: usize) -> impl Iterator<Item = u64> + '_ {
    model
        .feature_info()
        .iter()
        .map(move |f| stage_values(f, size))
}

/// `per_image` bytes for each of `batch` images, blamed on `--batch-size`.
fn require_batch(budget: &Budget, per_image: u64, batch: usize, what: &str) -> Result<()> {
    budget.require("--batch-size", per_image.saturating_mul(batch as u64), what)
}

/// Values of one image's feature map at a stage.
fn stage_values(f: &FeatureInfo, size: usize) -> u64 {
    let side = size.div_ceil(f.reduction.max(1)) as u64;
    f.num_chs as u64 * side * side
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(bytes: u64) -> Budget {
        Budget {
            bytes,
            place: "the test's memory".into(),
        }
    }

    #[test]
    fn an_input_batch_is_blamed_on_the_size_of_one_image_else_the_batch() {
        let b = budget(1 << 30);
        assert!(check_input_batch(&b, 128, 3, 224).is_ok());
        let one = check_input_batch(&b, 1, 1, 100_000)
            .unwrap_err()
            .to_string();
        assert!(one.starts_with("--img-size: 100000x100000 input images need at least 37.3 GiB but the test's memory has 1.0 GiB free"), "{one}");
        let many = check_input_batch(&b, 100_000, 3, 224)
            .unwrap_err()
            .to_string();
        assert!(
            many.starts_with("--batch-size: batches of 100000"),
            "{many}"
        );
    }

    #[test]
    fn a_huge_classifier_is_refused_from_a_probe_model_without_building_it() {
        let spec = ModelSpec::resolve("resnet18").unwrap();
        let args = |num_classes| ModelArgs {
            num_classes,
            ..Default::default()
        };
        let b = budget(4 << 30);
        let e = check_classifier(&b, &spec, &args(1_000_000_000))
            .unwrap_err()
            .to_string();
        // 512 features: (512 + 1) x 1e9 x 4 bytes x 2 = 3822.1 GiB.
        assert!(e.contains("(512 features x 1000000000 classes)"), "{e}");
        assert!(e.contains("need at least 3822.1 GiB"), "{e}");
        // 21,841 classes (ImageNet-21k) pass without a probe: even 8192 features fit 4 GiB.
        assert!(check_classifier(&b, &spec, &args(21_841)).is_ok());
    }

    #[test]
    fn feature_maps_sum_over_the_stages() {
        let model = kiln_nn::create_model("resnet18", &ModelArgs::default()).unwrap();
        // resnet18 at 224: 64x112² + 64x56² + 128x28² + 256x14² + 512x7² = 1,179,136 values.
        let need = 1_179_136u64 * 4 * 1000;
        assert!(check_activations(&budget(need), model.as_ref(), 1000, 224, 4).is_ok());
        let e = check_activations(&budget(need - 1), model.as_ref(), 1000, 224, 4).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("--batch-size: the feature maps of a batch of 1000"));
        // Evaluation: the largest map alone, 64x112² values an image.
        let largest = 64 * 112 * 112 * 4 * 1000;
        assert!(check_largest_map(&budget(largest), model.as_ref(), 1000, 224, 4).is_ok());
        let e = check_largest_map(&budget(largest - 1), model.as_ref(), 1000, 224, 4).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("--batch-size: the largest feature map of a batch of 1000"));
    }
}
