//! Odd batches: unreadable samples in a training batch are replaced by the next dataset indices
//! (timm's `ImageDataset` retry), so batches keep their size in every position; a batch shrunk to
//! one sample is dropped in training; evaluation skips without refilling.
use kiln_train::augment::Pipeline;
use kiln_train::data::{Dataset, Image, Sample};
use kiln_train::loader::{Batch, DistributedSampler, Loader, LoaderOptions};
use kiln_train::{Error, Result};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Timm's retry bound, as the loader uses it.
const RETRIES: usize = 10;

/// `len` 2x2 gray images whose pixels hold their index; the indices in `corrupt` fail to load.
#[derive(Debug)]
struct Marked {
    len: usize,
    corrupt: BTreeSet<usize>,
}

impl Dataset for Marked {
    fn len(&self) -> usize {
        self.len
    }
    fn label(&self, i: usize) -> usize {
        i % 3
    }
    fn filename(&self, i: usize) -> String {
        format!("img{i}.png")
    }
    fn load(&self, i: usize) -> Result<Sample> {
        if self.corrupt.contains(&i) {
            return Err(Error::Decode {
                path: self.filename(i),
                msg: "corrupt on purpose".into(),
            });
        }
        Ok(Sample {
            image: Image::filled(2, 2, &[i as u8]),
            label: self.label(i),
            filename: self.filename(i),
        })
    }
    fn num_classes(&self) -> usize {
        3
    }
}

fn loader(len: usize, corrupt: &[usize], batch_size: usize, train: bool, workers: usize) -> Loader {
    let ds = Arc::new(Marked {
        len,
        corrupt: corrupt.iter().copied().collect(),
    });
    let sampler = Box::new(DistributedSampler::single(len, false, 0));
    let opts = LoaderOptions {
        batch_size,
        workers,
        drop_last: train,
        prefetch: 0,
        seed: 1,
        rank: 0,
        shape: (2, 2, 1),
    };
    Loader::new(ds, Pipeline::new(vec![], vec![]), sampler, opts).unwrap()
}

/// The dataset index each batch slot shows (its pixel value).
fn shown(b: &Batch) -> Vec<usize> {
    (0..b.n).map(|i| b.image(i)[0] as usize).collect()
}

/// The naive rule: slot `i` shows the first readable index from `i` on (wrapping), and
/// skips the unreadable ones before it.
fn expected_slot(i: usize, len: usize, corrupt: &[usize]) -> (usize, usize) {
    let t = (0..len)
        .find(|t| !corrupt.contains(&((i + t) % len)))
        .unwrap();
    ((i + t) % len, t)
}

#[test]
fn corrupt_images_in_every_position_keep_the_batch_size() {
    let cases: [(&str, &[usize]); 6] = [
        ("first", &[0]),
        ("middle", &[5]),
        ("last", &[11]),
        ("several", &[1, 2, 9]),
        ("whole batch", &[4, 5, 6, 7]),
        ("last sample of the epoch", &[15]),
    ];
    for (what, corrupt) in cases {
        let mut l = loader(16, corrupt, 4, true, 2);
        let batches: Vec<Batch> = l.epoch(0).map(Result::unwrap).collect();
        assert_eq!(batches.len(), 4, "{what}: batch count");
        let mut skips = 0;
        for (k, b) in batches.iter().enumerate() {
            assert_eq!(b.n, 4, "{what}: batch {k} keeps its size");
            let want: Vec<(usize, usize)> = (4 * k..4 * k + 4)
                .map(|i| expected_slot(i, 16, corrupt))
                .collect();
            assert_eq!(
                shown(b),
                want.iter().map(|w| w.0).collect::<Vec<_>>(),
                "{what}: batch {k} refilled from the next samples"
            );
            assert_eq!(b.skipped, want.iter().map(|w| w.1).sum::<usize>());
            assert_eq!(
                b.targets,
                shown(b).iter().map(|i| i % 3).collect::<Vec<_>>()
            );
            skips += b.skipped;
        }
        assert_eq!(l.skipped(), skips, "{what}: every skip counted");
        assert!(skips >= corrupt.len(), "{what}: {skips} skips");
    }
}

#[test]
fn refilled_batches_do_not_depend_on_workers_and_resume_exactly() {
    let corrupt = [0, 3, 4, 5, 6, 7, 13];
    let full: Vec<Batch> = loader(20, &corrupt, 4, true, 0)
        .epoch(2)
        .map(Result::unwrap)
        .collect();
    let threaded: Vec<Batch> = loader(20, &corrupt, 4, true, 3)
        .epoch(2)
        .map(Result::unwrap)
        .collect();
    assert_eq!(full.len(), 5);
    for (a, b) in full.iter().zip(&threaded) {
        assert_eq!((a.images.clone(), a.skipped), (b.images.clone(), b.skipped));
    }
    let mut l = loader(20, &corrupt, 4, true, 2);
    let resumed: Vec<Batch> = l.epoch_from(2, 3).map(Result::unwrap).collect();
    assert_eq!(resumed.len(), 2);
    for (a, b) in full[3..].iter().zip(&resumed) {
        assert_eq!((a.index, &a.images), (b.index, &b.images));
    }
}

#[test]
fn a_training_batch_shrunk_to_one_sample_is_dropped() {
    // Batch 0 is [0, 1]; 1..=10 are unreadable, so slot 1 exhausts its retries and one sample is
    // left: the batch comes out empty (the trainer skips it) instead of reaching BatchNorm.
    let corrupt: Vec<usize> = (1..=RETRIES).collect();
    let mut l = loader(14, &corrupt, 2, true, 1);
    let batches: Vec<Batch> = l.epoch(0).map(Result::unwrap).collect();
    assert_eq!(batches.len(), 7);
    assert_eq!((batches[0].n, batches[0].skipped), (0, RETRIES));
    assert_eq!(shown(&batches[1]), [11, 11]);
    assert!(batches[1..].iter().all(|b| b.n == 2));
}

#[test]
fn batch_size_one_trains_on_single_samples() {
    let mut l = loader(5, &[2], 1, true, 0);
    let batches: Vec<Batch> = l.epoch(0).map(Result::unwrap).collect();
    let slots: Vec<Vec<usize>> = batches.iter().map(shown).collect();
    assert_eq!(slots, [[0], [1], [3], [3], [4]]);
}

#[test]
fn evaluation_skips_without_refilling_and_keeps_a_last_batch_of_one() {
    let mut l = loader(9, &[2], 4, false, 2);
    let batches: Vec<Batch> = l.epoch(0).map(Result::unwrap).collect();
    let slots: Vec<Vec<usize>> = batches.iter().map(shown).collect();
    assert_eq!(slots, [vec![0, 1, 3], vec![4, 5, 6, 7], vec![8]]);
    assert_eq!(l.skipped(), 1);
}
