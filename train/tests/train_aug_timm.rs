//! `--train-crop-mode` rkrc / rkrr, `--color-jitter-prob`, `--grayscale-prob` and
//! `--gaussian-blur-prob` against timm and torchvision. Fixtures:
//! `scripts/fixtures/make_train_aug_fixtures.py` -> `tests/fixtures/data/train_aug/`.
//! Deterministic steps are compared image for image (exactly, or within the resize and float
//! rounding tolerances stated where they are used); random steps replay timm's recorded draws or
//! are compared by the ranges and moments of many draws.

mod common;

use common::{fixture_image, pixel_diffs};
use kiln_train::augment::{
    derive_rng, gaussian_blur_reflect, grayscale, reflect_crop, resize, AugRng, CenterCropOrPad,
    ColorJitter, GaussianBlur, HFlip, Interpolation, RandomApply, RandomCropOrPad, RandomGrayscale,
    RandomResizedCrop, ResizeKeepRatio, Transform, VFlip,
};
use kiln_train::data::Image;
use kiln_train::loader::{AugConfig, DataConfig, MixConfig};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data")
}

fn fixtures() -> Value {
    let text = std::fs::read_to_string(dir().join("train_aug/cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A source image (`src_rgb.png` / `src_gray.png`) or an expected output (`train_aug/NAME`).
fn load(name: &str, gray: bool) -> Image {
    let folder = if name.starts_with("src_") {
        dir()
    } else {
        dir().join("train_aug")
    };
    fixture_image(&folder, name, gray)
}

fn is_gray(case: &Value) -> bool {
    case["src"].as_str().unwrap().contains("gray")
}

fn source(case: &Value) -> Image {
    load(case["src"].as_str().unwrap(), is_gray(case))
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap()
}

fn pair(v: &Value) -> (f64, f64) {
    (num(&v[0]), num(&v[1]))
}

fn list(v: &Value) -> Vec<f64> {
    let (a, b) = pair(v);
    vec![a, b]
}

/// PIL's `Image.transpose(TRANSPOSE)`: rows become columns.
fn transpose(img: &Image) -> Image {
    let c = img.c;
    let mut data = Vec::with_capacity(img.data.len());
    for x in 0..img.w {
        for y in 0..img.h {
            data.extend_from_slice(img.px(x, y));
        }
    }
    Image::new(img.h, img.w, c, data)
}

/// (max |kiln - want|, fraction of values that differ); the shapes must agree.
fn diff(got: &Image, want: &Image, what: &str) -> (u8, f64) {
    let d = pixel_diffs(got, want, what);
    let differing = d.iter().filter(|&&v| v > 0).count() as f64 / d.len() as f64;
    (d.iter().copied().max().unwrap_or(0), differing)
}

#[test]
fn keep_ratio_crops_match_timm_draw_for_draw() {
    let cases = fixtures()["keep_ratio"].as_array().unwrap().clone();
    assert_eq!(cases.len(), 144);
    let (mut padded, mut drawn) = (0, 0);
    for case in &cases {
        let what = case["out"].as_str().unwrap();
        let mut img = source(case);
        if case["transpose"].as_bool().unwrap() {
            img = transpose(&img);
        }
        let size = int(&case["size"]) as usize;
        let rk = ResizeKeepRatio::train(
            (size, size),
            pair(&case["scale"]),
            pair(&case["ratio"]),
            Interpolation::Random,
        );
        let (w, h) = rk.size_for(
            img.w,
            img.h,
            case["scale_draw"].as_f64(),
            case["log_aspect_draw"].as_f64(),
        );
        assert_eq!(
            [w as i64, h as i64],
            [int(&case["resized"][0]), int(&case["resized"][1])],
            "{what}: ResizeKeepRatio size"
        );
        drawn += case["scale_draw"].is_f64() as usize + case["log_aspect_draw"].is_f64() as usize;
        let filter: Interpolation = case["filter"].as_str().unwrap().parse().unwrap();
        let resized = if (w, h) == (img.w, img.h) {
            img
        } else {
            resize(&img, w, h, filter)
        };
        padded += (w < size || h < size) as usize;
        let (left, top) = match case["mode"].as_str().unwrap() {
            "rkrc" => CenterCropOrPad::reflect(size, size).offsets(w, h),
            _ => (
                int(&case["offset"][0]) as isize,
                int(&case["offset"][1]) as isize,
            ),
        };
        let got = reflect_crop(&resized, left, top, size, size);
        // Resizing is PIL's to the byte (as in resample_pil.rs); the crop and padding only copy
        // pixels.
        let (max, _) = diff(&got, &load(what, is_gray(case)), what);
        assert_eq!(max, 0, "{what}: max difference {max}");
    }
    assert!(
        padded >= 10 && drawn >= 100,
        "padded {padded}, drawn {drawn}"
    );
}

#[test]
fn crop_or_pad_matches_timms_reflect_padding_exactly() {
    let cases = fixtures()["crop_or_pad"].as_array().unwrap().clone();
    assert_eq!(cases.len(), 26);
    for case in &cases {
        let what = case["out"].as_str().unwrap();
        let img = source(case);
        let (w, h) = (int(&case["w"]) as usize, int(&case["h"]) as usize);
        let got = match case["kind"].as_str().unwrap() {
            "center" => CenterCropOrPad::reflect(w, h).apply(img, &mut derive_rng(&[0])),
            _ => reflect_crop(
                &img,
                int(&case["left"]) as isize,
                int(&case["top"]) as isize,
                w,
                h,
            ),
        };
        assert_eq!(got, load(what, is_gray(case)), "{what}");
    }
}

#[test]
fn random_crop_or_pad_draws_cover_timms_range() {
    for case in fixtures()["crop_range"].as_array().unwrap() {
        let t = RandomCropOrPad {
            w: int(&case["w"]) as usize,
            h: int(&case["h"]) as usize,
        };
        let (iw, ih) = (int(&case["iw"]) as usize, int(&case["ih"]) as usize);
        let mut rng = derive_rng(&[3, iw as u64, ih as u64]);
        let draws: Vec<(isize, isize)> = (0..int(&case["n"]))
            .map(|_| t.params(iw, ih, &mut rng))
            .collect();
        let stats = |v: Vec<isize>| {
            let set: std::collections::BTreeSet<isize> = v.iter().copied().collect();
            [
                *set.first().unwrap() as i64,
                *set.last().unwrap() as i64,
                set.len() as i64,
            ]
        };
        let want = |k: &str| -> Vec<i64> { case[k].as_array().unwrap().iter().map(int).collect() };
        assert_eq!(
            stats(draws.iter().map(|d| d.1).collect()).to_vec(),
            want("top"),
            "{case}"
        );
        assert_eq!(
            stats(draws.iter().map(|d| d.0).collect()).to_vec(),
            want("left"),
            "{case}"
        );
    }
}

/// The moments of many ResizeKeepRatio draws agree with timm's within 4 standard errors of their
/// difference (both are means of independent samples of the same size).
#[test]
fn keep_ratio_draws_match_timms_distribution() {
    for case in fixtures()["keep_stats"].as_array().unwrap() {
        let size = int(&case["size"]) as usize;
        let (iw, ih) = (int(&case["iw"]) as usize, int(&case["ih"]) as usize);
        let rk = ResizeKeepRatio::train(
            (size, size),
            pair(&case["scale"]),
            pair(&case["ratio"]),
            Interpolation::Bilinear,
        );
        let plain = rk.size_for(iw, ih, None, None);
        let n = int(&case["n"]) as usize;
        let mut rng = derive_rng(&[5, iw as u64]);
        let sizes: Vec<(usize, usize)> = (0..n).map(|_| rk.params(iw, ih, &mut rng)).collect();
        let nf = n as f64;
        let mean = |v: &dyn Fn(&(usize, usize)) -> f64| sizes.iter().map(v).sum::<f64>() / nf;
        let var = |v: &dyn Fn(&(usize, usize)) -> f64, m: f64| {
            sizes.iter().map(|s| (v(s) - m).powi(2)).sum::<f64>() / (nf - 1.0)
        };
        let (mw, mh) = (mean(&|s| s.0 as f64), mean(&|s| s.1 as f64));
        let (vw, vh) = (var(&|s| s.0 as f64, mw), var(&|s| s.1 as f64, mh));
        // Fourth central moments, for the standard error of a sample variance: (μ4 − σ⁴)/n.
        let m4 = |v: &dyn Fn(&(usize, usize)) -> f64, m: f64| {
            sizes.iter().map(|s| (v(s) - m).powi(4)).sum::<f64>() / nf
        };
        let (m4w, m4h) = (m4(&|s| s.0 as f64, mw), m4(&|s| s.1 as f64, mh));
        for (got, want, v_got, v_want, m4, what) in [
            (mw, num(&case["mean_w"]), vw, num(&case["var_w"]), m4w, "w"),
            (mh, num(&case["mean_h"]), vh, num(&case["var_h"]), m4h, "h"),
        ] {
            let se = ((v_got + v_want) / nf).sqrt();
            assert!((got - want).abs() <= 4.0 * se, "{case}: mean {what} {got}");
            let se_var = (2.0 * (m4 - v_got * v_got) / nf).sqrt();
            assert!(
                (v_got - v_want).abs() <= 4.0 * se_var,
                "{case}: variance of {what} {v_got}"
            );
        }
        let unchanged = sizes.iter().filter(|&&s| s == plain).count() as f64 / nf;
        let p = num(&case["unchanged"]);
        let se = (2.0 * p * (1.0 - p) / nf).sqrt();
        assert!(
            (unchanged - p).abs() <= 4.0 * se,
            "{case}: unchanged {unchanged}"
        );
    }
}

#[test]
fn grayscale_matches_torchvision_rgb_to_grayscale() {
    for case in fixtures()["grayscale"].as_array().unwrap() {
        let what = case["out"].as_str().unwrap();
        assert_eq!(grayscale(source(case)), load(what, is_gray(case)), "{what}");
    }
}

/// torchvision convolves in f32 with the 2-D kernel, kiln in f64 with the separable one: sums
/// agree to about 1e-4, so only a value whose exact blur lies that close to a rounding boundary
/// (x.5) may land one level apart — none or a handful of the 3600 or 1200 values of an image.
#[test]
fn gaussian_blur_matches_torchvision() {
    let cases = fixtures()["blur"].as_array().unwrap().clone();
    assert_eq!(cases.len(), 14);
    for case in &cases {
        let what = case["out"].as_str().unwrap();
        let got = gaussian_blur_reflect(
            source(case),
            int(&case["kernel"]) as usize,
            num(&case["sigma"]),
        );
        let (max, differing) = diff(&got, &load(what, is_gray(case)), what);
        assert!(
            max <= 1 && differing <= 0.002,
            "{what}: max {max}, differing {differing}"
        );
    }
}

/// kiln's twin of one of timm's recorded steps, as its Debug text, or just the type name for the
/// policies (their parameters are checked in augment_fixtures.rs and loader_pipelines.rs).
fn kiln_twin(step: &Value, args: &Value) -> Option<String> {
    let name = step["name"].as_str().unwrap();
    let size = || {
        (
            int(&step["size"][1]) as usize,
            int(&step["size"][0]) as usize,
        )
    };
    let interp = || -> Interpolation { step["interpolation"].as_str().unwrap().parse().unwrap() };
    let twin = match name {
        "RandomResizedCropAndInterpolation" => format!(
            "{:?}",
            RandomResizedCrop {
                size: size(),
                scale: pair(&step["scale"]),
                ratio: pair(&step["ratio"]),
                interp: interp(),
            }
        ),
        "ResizeKeepRatio" => format!(
            "{:?}",
            ResizeKeepRatio {
                size: size(),
                longest: num(&step["longest"]),
                interp: interp(),
                random_scale_prob: num(&step["random_scale_prob"]),
                random_scale_range: pair(&step["random_scale_range"]),
                random_scale_area: step["random_scale_area"].as_bool().unwrap(),
                random_aspect_prob: num(&step["random_aspect_prob"]),
                random_aspect_range: pair(&step["random_aspect_range"]),
            }
        ),
        "CenterCropOrPad" | "RandomCropOrPad" => {
            assert_eq!(step["padding_mode"], "reflect");
            let (w, h) = size();
            match name {
                "CenterCropOrPad" => format!("{:?}", CenterCropOrPad::reflect(w, h)),
                _ => format!("{:?}", RandomCropOrPad { w, h }),
            }
        }
        "RandomHorizontalFlip" => format!("{:?}", HFlip(num(&step["p"]))),
        "RandomVerticalFlip" => format!("{:?}", VFlip(num(&step["p"]))),
        "RandomGrayscale" => format!("{:?}", RandomGrayscale(num(&step["p"]))),
        "ColorJitter" => {
            // torchvision keeps (max(0, 1 - j), 1 + j) per factor; None where j is 0 (a no-op,
            // which kiln leaves out).
            if step["brightness"].is_null() {
                return None;
            }
            let j = num(&args["color_jitter"]);
            for k in ["brightness", "contrast", "saturation"] {
                assert_eq!(pair(&step[k]), ((1.0 - j).max(0.0), 1.0 + j), "{k}");
            }
            assert!(step["hue"].is_null());
            format!(
                "{:?}",
                ColorJitter {
                    brightness: j,
                    contrast: j,
                    saturation: j,
                    hue: 0.0,
                }
            )
        }
        "GaussianBlur" => {
            let k = int(&step["kernel_size"][0]) as usize;
            assert_eq!(int(&step["kernel_size"][1]) as usize, k);
            format!(
                "{:?}",
                GaussianBlur {
                    kernel_size: k,
                    sigma: pair(&step["sigma"]),
                }
            )
        }
        "RandomApply" => {
            let inner = step["transforms"].as_array().unwrap();
            assert_eq!(inner.len(), 1);
            let inner = kiln_twin(&inner[0], args)?;
            format!(
                "RandomApply {{ p: {:?}, transform: {inner} }}",
                num(&step["p"])
            )
        }
        "RandAugment" | "AutoAugment" => name.to_string(),
        "AugMixAugment" => "AugMix".to_string(),
        other => panic!("no kiln twin for timm's {other}"),
    };
    Some(twin)
}

/// Debug text of kiln's steps, policies cut to their type name.
fn kiln_steps(steps: &[Box<dyn Transform>]) -> Vec<String> {
    steps
        .iter()
        .map(|t| {
            let d = format!("{t:?}");
            let policy = ["RandAugment", "AutoAugment", "AugMix"]
                .into_iter()
                .find(|p| d.starts_with(&format!("{p} ")));
            policy.map_or(d, str::to_string)
        })
        .collect()
}

#[test]
fn train_pipelines_are_timms_step_for_step() {
    let cases = fixtures()["pipelines"].as_array().unwrap().clone();
    assert_eq!(cases.len(), 7);
    for case in &cases {
        let a = &case["args"];
        let cfg = DataConfig {
            img_size: 32,
            aug: AugConfig {
                train_crop_mode: a["train_crop_mode"].as_str().map(str::to_string),
                scale: list(&a["scale"]),
                ratio: list(&a["ratio"]),
                hflip: num(&a["hflip"]),
                vflip: num(&a["vflip"]),
                color_jitter: num(&a["color_jitter"]),
                color_jitter_prob: a["color_jitter_prob"].as_f64(),
                grayscale_prob: a["grayscale_prob"].as_f64(),
                gaussian_blur_prob: a["gaussian_blur_prob"].as_f64(),
                aa: a["auto_augment"].as_str().map(str::to_string),
                ..AugConfig::default()
            },
            mix: MixConfig::default().train_interpolation(a["interpolation"].as_str().unwrap()),
            ..DataConfig::default()
        };
        let p = cfg.train_pipeline().unwrap();
        for (part, steps) in [("primary", &p.primary), ("secondary", &p.secondary)] {
            let want: Vec<String> = case[part]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|s| kiln_twin(s, a))
                .collect();
            assert_eq!(kiln_steps(steps), want, "{part} of {a}");
        }
    }
}

/// A marker transform: inverts the image.
#[derive(Debug)]
struct Invert;

impl Transform for Invert {
    fn apply(&self, mut img: Image, _rng: &mut AugRng) -> Image {
        img.data.iter_mut().for_each(|v| *v = 255 - *v);
        img
    }
}

/// `k` successes in `n` draws lie within 4 binomial standard deviations of `n·p`.
fn assert_binomial(k: usize, n: usize, p: f64, what: &str) {
    let (nf, kf) = (n as f64, k as f64);
    let sd = (nf * p * (1.0 - p)).sqrt();
    assert!(
        (kf - nf * p).abs() <= 4.0 * sd.max(0.5),
        "{what}: {k} of {n} at p = {p}"
    );
}

#[test]
fn random_apply_and_random_grayscale_honour_their_probability() {
    let n = 4000;
    let pixel = Image::new(1, 1, 3, vec![200, 40, 90]);
    for p in [0.0, 0.1, 0.5, 0.8, 1.0] {
        let apply = RandomApply {
            p,
            transform: Box::new(Invert),
        };
        let gray = RandomGrayscale(p);
        let mut rng = derive_rng(&[9, (p * 10.0) as u64]);
        let (mut inverted, mut grayed) = (0, 0);
        for _ in 0..n {
            inverted += (apply.apply(pixel.clone(), &mut rng).data[0] == 55) as usize;
            let g = gray.apply(pixel.clone(), &mut rng);
            grayed += (g.data[0] == g.data[1] && g.data[1] == g.data[2]) as usize;
        }
        assert_binomial(inverted, n, p, "RandomApply");
        assert_binomial(grayed, n, p, "RandomGrayscale");
    }
    // A gray image stays as it is (torchvision converts L to L).
    let gray_px = Image::new(1, 1, 1, vec![77]);
    let mut rng = derive_rng(&[10]);
    assert_eq!(
        RandomGrayscale(1.0).apply(gray_px.clone(), &mut rng),
        gray_px
    );
}

/// The blur's sigma is uniform on (0.1, 2.0), as torchvision's `GaussianBlur.get_params`: every
/// draw inside, mean and variance within 4 standard errors of (a + b)/2 and (b - a)²/12.
#[test]
fn gaussian_blur_sigma_is_uniform_on_timms_range() {
    let blur = GaussianBlur::timm();
    assert_eq!((blur.kernel_size, blur.sigma), (23, (0.1, 2.0)));
    let n = 20000;
    let mut rng = derive_rng(&[12]);
    let s: Vec<f64> = (0..n).map(|_| blur.draw_sigma(&mut rng)).collect();
    assert!(s.iter().all(|&v| (0.1..=2.0).contains(&v)));
    let nf = n as f64;
    let mean = s.iter().sum::<f64>() / nf;
    let var = s.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (nf - 1.0);
    let (want_mean, want_var) = (1.05, 1.9f64.powi(2) / 12.0);
    assert!(
        (mean - want_mean).abs() <= 4.0 * (want_var / nf).sqrt(),
        "mean {mean}"
    );
    // Var of the sample variance of a uniform: (μ4 - σ⁴)/n with μ4 = 9σ⁴/5.
    let se_var = (0.8 * want_var * want_var / nf).sqrt();
    assert!((var - want_var).abs() <= 4.0 * se_var, "var {var}");
}

/// The colour steps of DataConfig's train pipeline, run on the photo: jitter reaches a fraction
/// `color_jitter_prob` of the images and grayscale a fraction `grayscale_prob`.
#[test]
fn config_probabilities_reach_the_pipeline() {
    let photo = load("src_rgb.png", false);
    let n = 2000;
    let run = |cfg: DataConfig, test: &dyn Fn(&Image) -> bool| -> usize {
        let p = cfg.train_pipeline().unwrap();
        (0..n as u64)
            .filter(|&i| {
                let mut rng = derive_rng(&[13, i]);
                let out = p
                    .secondary
                    .iter()
                    .fold(photo.clone(), |img, t| t.apply(img, &mut rng));
                test(&out)
            })
            .count()
    };
    let aug = |a: AugConfig| DataConfig::default().aug(a);
    let jittered = run(aug(AugConfig::default().color_jitter_prob(0.3)), &|img| {
        img != &photo
    });
    assert_binomial(jittered, n, 0.3, "color_jitter_prob");
    let grayed = run(
        aug(AugConfig::default().color_jitter(0.0).grayscale_prob(0.25)),
        &|img| {
            img.data
                .chunks_exact(3)
                .all(|p| p[0] == p[1] && p[1] == p[2])
        },
    );
    assert_binomial(grayed, n, 0.25, "grayscale_prob");
}
