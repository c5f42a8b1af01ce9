//! Training from the library on a dataset type of your own: `Stripes` draws its images on the fly
//! (horizontal or vertical stripes, a checkerboard, or flat grey, at a period and phase of the
//! sample's own), so any data source, a database, a simulator, a custom file format, plugs in
//! by implementing `Dataset`. The model comes from a `build_model` of your own, as the hooks of
//! other trainers allow; here a registered kiln model, with one input channel.
//!
//! ```sh
//! cargo run --release --example custom_dataset
//! ```

use kiln_nn::{create_model, Model, ModelArgs};
use kiln_train::data::{Dataset, Image, Sample};
use kiln_train::loader::DataConfig;
use kiln_train::optim::OptimizerConfig;
use kiln_train::sched::SchedulerConfig;
use kiln_train::trainer::Trainer;
use std::sync::Arc;

/// `len` generated 32×32 grey images in four classes; `seed` makes a split its own.
#[derive(Debug)]
struct Stripes {
    len: usize,
    seed: usize,
}

const SIDE: usize = 32;
const CLASSES: usize = 4;

impl Dataset for Stripes {
    fn len(&self) -> usize {
        self.len
    }

    fn label(&self, i: usize) -> usize {
        i % CLASSES
    }

    fn filename(&self, i: usize) -> String {
        format!("stripes#{i}")
    }

    fn load(&self, i: usize) -> kiln_train::Result<Sample> {
        let n = i.wrapping_mul(2_654_435_761).wrapping_add(self.seed) >> 3;
        let (period, phase) = (4 + n % 5, n / 5 % 8);
        let pixel = |x: usize, y: usize| {
            let on = |t: usize| (t + phase) % period < period / 2;
            match self.label(i) {
                0 => [60, 200][on(y) as usize],
                1 => [60, 200][on(x) as usize],
                2 => [60, 200][(on(x) ^ on(y)) as usize],
                _ => 130,
            }
        };
        let data = (0..SIDE * SIDE)
            .map(|p| pixel(p % SIDE, p / SIDE))
            .collect();
        Ok(Sample {
            image: Image::new(SIDE, SIDE, 1, data),
            label: self.label(i),
            filename: self.filename(i),
        })
    }

    fn num_classes(&self) -> usize {
        CLASSES
    }
}

/// The model hook: any `Model`, built as you like.
fn build_model(num_classes: usize) -> kiln_nn::Result<Box<dyn Model>> {
    let args = ModelArgs {
        num_classes,
        in_chans: 1,
        ..ModelArgs::default()
    };
    create_model("resnet18", &args)
}

/// Trains one epoch on `train_len` images and returns the validation top-1 (%).
fn run(train_len: usize) -> kiln_train::Result<f64> {
    let train = Arc::new(Stripes {
        len: train_len,
        seed: 0,
    });
    let mut trainer = Trainer::builder(build_model(CLASSES)?, train)
        .validation(Arc::new(Stripes { len: 256, seed: 1 }))
        .data(
            DataConfig::default()
                .img_size(SIDE)
                .in_chans(1)
                .batch_size(32)
                .small_images(true),
        )
        .optimizer(OptimizerConfig::new("sgd").lr(0.1))
        .scheduler(SchedulerConfig::new("cosine", 1).warmup_epochs(0))
        .build()?;
    trainer.fit()?;
    let eval = trainer
        .state()
        .eval
        .expect("validation ran after the epoch");
    Ok(eval.top1)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let top1 = run(2048)?;
    println!("validation top-1 after one epoch: {top1:.1} %");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn learns_a_dataset_type_of_its_own() {
        let top1 = super::run(1280).unwrap();
        assert!(top1 > 95.0, "top-1 {top1:.1} % (chance: 25 %)");
    }
}
