//! Training from the library, without the CLI: resnet18 on an ImageFolder (class folders under
//! `train/` and `validation/`), with a callback of its own that records the loss of every update
//! and stops the run after a set number of updates. Everything else is timm's defaults.
//!
//! ```sh
//! cargo run --release --example train_folder -- FOLDER [UPDATES]
//! ```

use kiln_nn::{create_model, ModelArgs};
use kiln_train::callbacks::LogLines;
use kiln_train::data::{Dataset, ImageFolder};
use kiln_train::loader::DataConfig;
use kiln_train::optim::OptimizerConfig;
use kiln_train::sched::SchedulerConfig;
use kiln_train::trainer::{Callback, Context, Trainer};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Records every update's loss and stops the run after `max_updates` updates.
struct LossCurve {
    max_updates: usize,
    losses: Arc<Mutex<Vec<f64>>>,
}

impl Callback for LossCurve {
    fn name(&self) -> &str {
        "loss_curve"
    }

    fn batch_end(&mut self, ctx: &mut Context) -> kiln_train::Result<()> {
        if ctx.state.batch.updated {
            self.losses.lock().unwrap().push(ctx.state.batch.loss);
            if ctx.state.position.num_updates >= self.max_updates {
                ctx.request_stop(format!("{} updates done", self.max_updates));
            }
        }
        Ok(())
    }
}

/// Trains on the ImageFolder at `root` for `max_updates` updates; returns every update's loss.
fn train(root: &Path, max_updates: usize) -> kiln_train::Result<Vec<f64>> {
    let train: Arc<dyn Dataset> = Arc::new(ImageFolder::open(&root.join("train"), None, 3)?);
    let validation = Arc::new(ImageFolder::open(&root.join("validation"), None, 3)?);
    let model_args = ModelArgs {
        num_classes: train.num_classes(),
        ..ModelArgs::default()
    };
    let model = create_model("resnet18", &model_args)?;
    let losses = Arc::new(Mutex::new(Vec::new()));
    let mut trainer = Trainer::builder(model, train)
        .validation(validation)
        .data(DataConfig::default().img_size(32).batch_size(32).workers(2))
        .optimizer(OptimizerConfig::new("adamw").lr(2e-3).weight_decay(0.05))
        .scheduler(SchedulerConfig::new("cosine", 1).warmup_epochs(0))
        .callback(LogLines::new(10))
        .callback(LossCurve {
            max_updates,
            losses: losses.clone(),
        })
        .build()?;
    trainer.fit()?;
    let losses = losses.lock().unwrap().clone();
    Ok(losses)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let root = args.next().ok_or("usage: train_folder FOLDER [UPDATES]")?;
    let updates = args.next().map_or(Ok(100), |s| s.parse())?;
    let losses = train(Path::new(&root), updates)?;
    println!(
        "{} updates, loss {:?} -> {:?}",
        losses.len(),
        losses.first(),
        losses.last()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use kiln_train::data::{Dataset, IdxDataset};
    use std::path::Path;

    /// Writes the first `n` images of the embedded Fashion-MNIST `split` as PNGs under
    /// `root/folder/<class>/`.
    fn export(split: &str, folder: &str, n: usize, root: &Path) {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/fashion-mnist");
        let idx = IdxDataset::open(&data, split, 1).unwrap();
        for i in 0..n {
            let s = idx.load(i).unwrap();
            let dir = root.join(folder).join(format!("class{}", s.label));
            std::fs::create_dir_all(&dir).unwrap();
            let file = std::fs::File::create(dir.join(format!("{i}.png"))).unwrap();
            let mut png = png::Encoder::new(file, s.image.w as u32, s.image.h as u32);
            png.set_color(png::ColorType::Grayscale);
            png.write_header()
                .unwrap()
                .write_image_data(&s.image.data)
                .unwrap();
        }
    }

    #[test]
    fn trains_on_an_image_folder_and_the_callback_stops_the_run() {
        let root = tempfile::tempdir().unwrap();
        export("train", "train", 1280, root.path());
        export("t10k", "validation", 256, root.path());
        let losses = super::train(root.path(), 30).unwrap();
        assert_eq!(losses.len(), 30, "the stop lands after the 30th update");
        let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
        assert!(
            mean(&losses[25..]) < mean(&losses[..5]) - 0.2,
            "the loss falls: {losses:?}"
        );
    }
}
