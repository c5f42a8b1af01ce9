//! Mixup/CutMix against timm's formulas, RandomErasing, and the normalize stage.
use kiln_train::augment::{
    derive_rng, mixup_target, Dims, EraseMode, Mixup, MixupMode, RandomErasing,
};
use kiln_train::loader::{Batch, Layout, Normalize};

const N: usize = 8;
const CLASSES: usize = 10;

/// Image i is filled with the value i + 1; targets are i (all distinct).
fn batch(layout: Layout) -> (Vec<f32>, Dims, Vec<usize>) {
    let d = Dims {
        n: N,
        c: 3,
        h: 16,
        w: 12,
        layout,
    };
    let x = (0..N)
        .flat_map(|i| vec![(i + 1) as f32; d.image_len()])
        .collect();
    (x, d, (0..N).collect())
}

fn mixup(mode: MixupMode, mixup_alpha: f64, cutmix_alpha: f64) -> Mixup {
    Mixup {
        mixup_alpha,
        cutmix_alpha,
        cutmix_minmax: None,
        prob: 1.0,
        switch_prob: 0.5,
        mode,
        label_smoothing: 0.1,
        num_classes: CLASSES,
        off_epoch: 0,
    }
}

/// lambda of row i, read back from its own class's value.
fn lam_of(targets: &[f32], i: usize, smoothing: f64) -> f64 {
    let off = smoothing / CLASSES as f64;
    let on = 1.0 - smoothing + off;
    (targets[i * CLASSES + i] as f64 - off) / (on - off)
}

fn rows_sum_to_one(t: &[f32]) {
    for row in t.chunks(CLASSES) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{row:?}");
    }
}

#[test]
fn mixup_target_is_timms_formula() {
    // timm: off = 0.1 / 4 = 0.025, on = 0.925; y = lam * onehot(t) + (1 - lam) * onehot(flip(t))
    let t = mixup_target(&[0, 3, 1, 2], 4, &[0.7, 0.7, 0.7, 0.7], 0.1);
    let want = [0.655, 0.025, 0.295, 0.025];
    t[..4]
        .iter()
        .zip(want)
        .for_each(|(g, w)| assert!((*g as f64 - w).abs() < 1e-6, "{t:?}"));
    assert!(t
        .chunks(4)
        .all(|row| (row.iter().sum::<f32>() - 1.0).abs() < 1e-6));
}

#[test]
fn mixup_batch_blends_with_the_flipped_batch() {
    for layout in [Layout::Nchw, Layout::Nhwc] {
        let (mut x, d, t) = batch(layout);
        let soft = mixup(MixupMode::Batch, 1.0, 0.0).apply(&mut x, d, &t, 0, &mut derive_rng(&[1]));
        rows_sum_to_one(&soft);
        let lam = lam_of(&soft, 0, 0.1);
        for i in 0..N {
            let want = lam * (i + 1) as f64 + (1.0 - lam) * (N - i) as f64;
            assert!((x[i * d.image_len()] as f64 - want).abs() < 1e-4);
            assert!((lam_of(&soft, i, 0.1) - lam).abs() < 1e-5);
        }
    }
}

#[test]
fn cutmix_lambda_is_the_kept_area() {
    for layout in [Layout::Nchw, Layout::Nhwc] {
        for seed in 0..20 {
            let (mut x, d, t) = batch(layout);
            let soft =
                mixup(MixupMode::Batch, 0.0, 1.0).apply(&mut x, d, &t, 0, &mut derive_rng(&[seed]));
            rows_sum_to_one(&soft);
            for i in 0..N {
                let img = &x[i * d.image_len()..(i + 1) * d.image_len()];
                let kept = img.iter().filter(|&&v| v == (i + 1) as f32).count() as f64
                    / d.image_len() as f64;
                assert!(
                    (kept - lam_of(&soft, i, 0.1)).abs() < 1e-5,
                    "seed {seed} image {i}"
                );
            }
        }
    }
}

#[test]
fn elem_pair_half_modes() {
    for (mode, keep) in [
        (MixupMode::Elem, N),
        (MixupMode::Pair, N),
        (MixupMode::Half, N / 2),
    ] {
        let (mut x, d, t) = batch(Layout::Nchw);
        let m = Mixup {
            switch_prob: 0.5,
            ..mixup(mode, 1.0, 1.0)
        };
        let soft = m.apply(&mut x, d, &t, 0, &mut derive_rng(&[9]));
        assert_eq!(
            (x.len(), soft.len()),
            (keep * d.image_len(), keep * CLASSES),
            "{mode:?}"
        );
        rows_sum_to_one(&soft);
        let lams: Vec<f64> = (0..keep).map(|i| lam_of(&soft, i, 0.1)).collect();
        if mode == MixupMode::Pair {
            (0..N / 2).for_each(|i| assert!((lams[i] - lams[N - 1 - i]).abs() < 1e-5));
        }
        assert!(
            lams.windows(2).any(|w| (w[0] - w[1]).abs() > 1e-6),
            "{mode:?}: per-element lambdas"
        );
    }
}

#[test]
fn mixup_off_epoch_keeps_images_and_smooths_labels() {
    let (mut x, d, t) = batch(Layout::Nhwc);
    let orig = x.clone();
    let m = Mixup {
        off_epoch: 5,
        ..mixup(MixupMode::Batch, 1.0, 1.0)
    };
    let soft = m.apply(&mut x, d, &t, 5, &mut derive_rng(&[2]));
    assert_eq!(x, orig);
    assert!((soft[0] - 0.91).abs() < 1e-6 && (soft[1] - 0.01).abs() < 1e-6);
}

#[test]
fn random_erasing_spares_the_clean_split() {
    for mode in [EraseMode::Const, EraseMode::Rand, EraseMode::Pixel] {
        let (mut x, d, _) = batch(Layout::Nchw);
        let re = RandomErasing {
            probability: 1.0,
            mode,
            max_count: 3,
            num_splits: 2,
        };
        re.apply(&mut x, d, &mut derive_rng(&[4]));
        for i in 0..N {
            let img = &x[i * d.image_len()..(i + 1) * d.image_len()];
            let erased = img.iter().filter(|&&v| v != (i + 1) as f32).count();
            assert_eq!(
                erased == 0,
                i < N / 2,
                "{mode:?} image {i}: {erased} erased"
            );
        }
    }
}

#[test]
fn normalize_layouts_agree() {
    let images: Vec<u8> = (0..2 * 3 * 4 * 3).map(|k| (k * 7 % 256) as u8).collect();
    let b = Batch {
        images,
        n: 2,
        h: 3,
        w: 4,
        c: 3,
        ..Default::default()
    };
    let (mean, std) = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]);
    let nchw = Normalize::new(&mean, &std, Layout::Nchw).apply(&b);
    let nhwc = Normalize::new(&mean, &std, Layout::Nhwc).apply(&b);
    for (i, y, x, c) in (0..2).flat_map(|i| {
        (0..3).flat_map(move |y| (0..4).flat_map(move |x| (0..3).map(move |c| (i, y, x, c))))
    }) {
        let v = b.images[((i * 3 + y) * 4 + x) * 3 + c] as f32;
        let want = (v / 255.0 - mean[c]) / std[c];
        assert!((nhwc[((i * 3 + y) * 4 + x) * 3 + c] - want).abs() < 1e-6);
        assert!((nchw[((i * 3 + c) * 3 + y) * 4 + x] - want).abs() < 1e-6);
    }
}
