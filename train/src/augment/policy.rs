//! timm's policies from their config strings: RandAugment (`rand-m9-mstd0.5-inc1`), AutoAugment
//! (`v0`, `v0r`, `original`, `originalr`, `3a`, with `-mstd`), AugMix (`augmix-m5-w4-d2`).
use super::augment_op::{AugHparams, AugmentOp, OpName};
use super::pixel::blend;
use super::policies;
use super::{AugRng, Transform};
use crate::data::Image;
use crate::{Error, Result};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::{Beta, Dirichlet, Distribution};
use std::sync::Arc;

use OpName::*;

const RAND_TRANSFORMS: [OpName; 15] = [
    AutoContrast,
    Equalize,
    Invert,
    Rotate,
    Posterize,
    Solarize,
    SolarizeAdd,
    Color,
    Contrast,
    Brightness,
    Sharpness,
    ShearX,
    ShearY,
    TranslateXRel,
    TranslateYRel,
];
const RAND_INCREASING_TRANSFORMS: [OpName; 15] = [
    AutoContrast,
    Equalize,
    Invert,
    Rotate,
    PosterizeIncreasing,
    SolarizeIncreasing,
    SolarizeAdd,
    ColorIncreasing,
    ContrastIncreasing,
    BrightnessIncreasing,
    SharpnessIncreasing,
    ShearX,
    ShearY,
    TranslateXRel,
    TranslateYRel,
];
const RAND_3A: [OpName; 3] = [SolarizeIncreasing, Desaturate, GaussianBlur];
const RAND_WEIGHTED_3A: [(OpName, f64); 14] = [
    (SolarizeIncreasing, 6.0),
    (Desaturate, 6.0),
    (GaussianBlur, 6.0),
    (Rotate, 3.0),
    (ShearX, 2.0),
    (ShearY, 2.0),
    (PosterizeIncreasing, 1.0),
    (AutoContrast, 1.0),
    (ColorIncreasing, 1.0),
    (SharpnessIncreasing, 1.0),
    (ContrastIncreasing, 1.0),
    (BrightnessIncreasing, 1.0),
    (Equalize, 1.0),
    (Invert, 1.0),
];
const RAND_WEIGHTED_0: [(OpName, f64); 15] = [
    (Rotate, 3.0),
    (ShearX, 2.0),
    (ShearY, 2.0),
    (TranslateXRel, 1.0),
    (TranslateYRel, 1.0),
    (ColorIncreasing, 0.25),
    (SharpnessIncreasing, 0.25),
    (AutoContrast, 0.25),
    (SolarizeIncreasing, 0.05),
    (SolarizeAdd, 0.05),
    (ContrastIncreasing, 0.05),
    (BrightnessIncreasing, 0.05),
    (Equalize, 0.05),
    (PosterizeIncreasing, 0.05),
    (Invert, 0.05),
];
const AUGMIX_TRANSFORMS: [OpName; 13] = [
    AutoContrast,
    ColorIncreasing,
    ContrastIncreasing,
    BrightnessIncreasing,
    SharpnessIncreasing,
    Equalize,
    Rotate,
    PosterizeIncreasing,
    SolarizeIncreasing,
    ShearX,
    ShearY,
    TranslateXRel,
    TranslateYRel,
];

/// timm's RandAugment: `num_layers` ops drawn per image (uniformly with replacement, or weighted
/// without), each applied with its probability.
#[derive(Debug, Clone)]
pub struct RandAugment {
    /// Candidate ops.
    pub ops: Vec<AugmentOp>,
    /// Ops per image.
    pub num_layers: usize,
    /// Selection weights (normalized), for the `t` variants.
    pub weights: Option<Vec<f64>>,
}

impl Transform for RandAugment {
    fn apply(&self, img: Image, rng: &mut AugRng) -> Image {
        let chosen: Vec<&AugmentOp> = match &self.weights {
            None => (0..self.num_layers)
                .map(|_| &self.ops[rng.gen_range(0..self.ops.len())])
                .collect(),
            Some(w) => {
                let idx: Vec<usize> = (0..self.ops.len()).collect();
                let picks = idx.choose_multiple_weighted(rng, self.num_layers, |&i| w[i]);
                picks
                    .map(|it| it.map(|&i| &self.ops[i]).collect())
                    .unwrap_or_default()
            }
        };
        chosen.into_iter().fold(img, |img, op| op.apply(img, rng))
    }
}

/// timm's AutoAugment: one sub-policy drawn per image, its ops applied in order.
#[derive(Debug, Clone)]
pub struct AutoAugment {
    /// Sub-policies.
    pub policy: Vec<Vec<AugmentOp>>,
}

impl Transform for AutoAugment {
    fn apply(&self, img: Image, rng: &mut AugRng) -> Image {
        let sub = &self.policy[rng.gen_range(0..self.policy.len())];
        sub.iter().fold(img, |img, op| op.apply(img, rng))
    }
}

/// timm's AugMix: `width` chains of 1..=3 (or `depth`) ops mixed by Dirichlet weights, then blended
/// with the original by a Beta(alpha, alpha) draw.
#[derive(Debug, Clone)]
pub struct AugMix {
    /// Candidate ops (probability 1).
    pub ops: Vec<AugmentOp>,
    /// Dirichlet / Beta concentration.
    pub alpha: f64,
    /// Number of chains.
    pub width: usize,
    /// Ops per chain (-1: 1..=3 drawn per chain).
    pub depth: i64,
    /// timm's `blended` mode (blend each chain in turn).
    pub blended: bool,
}

impl AugMix {
    fn chain(&self, img: &Image, rng: &mut AugRng) -> Image {
        let depth = if self.depth > 0 {
            self.depth as usize
        } else {
            rng.gen_range(1..4)
        };
        (0..depth).fold(img.clone(), |im, _| {
            self.ops[rng.gen_range(0..self.ops.len())].apply(im, rng)
        })
    }

    fn basic(&self, img: Image, ws: &[f32], m: f32, rng: &mut AugRng) -> Image {
        let mut mixed = vec![0f32; img.data.len()];
        for &w in ws {
            let aug = self.chain(&img, rng);
            mixed
                .iter_mut()
                .zip(&aug.data)
                .for_each(|(o, &v)| *o += w * v as f32);
        }
        let mixed = Image {
            data: mixed.iter().map(|v| v.clamp(0.0, 255.0) as u8).collect(),
            ..img.clone()
        };
        blend(&img, mixed, m)
    }

    fn blended(&self, img: Image, ws: &[f32], m: f32, rng: &mut AugRng) -> Image {
        let mut cump = 1f32;
        let mut rws: Vec<f32> = ws
            .iter()
            .rev()
            .map(|&w| {
                let a = w * m / cump;
                cump *= 1.0 - a;
                a
            })
            .collect();
        rws.reverse();
        let orig = img.clone();
        rws.into_iter().fold(img, |im, w| {
            let aug = self.chain(&orig, rng);
            blend(&im, aug, w)
        })
    }
}

impl Transform for AugMix {
    fn apply(&self, img: Image, rng: &mut AugRng) -> Image {
        let ws: Vec<f32> = match Dirichlet::new_with_size(self.alpha, self.width) {
            Ok(d) => d.sample(rng).iter().map(|&w| w as f32).collect(),
            Err(_) => vec![1.0 / self.width as f32; self.width],
        };
        let m = Beta::new(self.alpha, self.alpha).map_or(0.5, |b| b.sample(rng)) as f32;
        if self.blended {
            self.blended(img, &ws, m, rng)
        } else {
            self.basic(img, &ws, m, rng)
        }
    }
}

/// The `key` and numeric value of a config section (`m9` -> ("m", "9")), as timm's `re.split(r'(\d.*)')`.
fn section(c: &str) -> Option<(&str, &str)> {
    let at = c.find(|ch: char| ch.is_ascii_digit())?;
    Some((&c[..at], &c[at..]))
}

fn num<T: std::str::FromStr>(what: &'static str, v: &str) -> Result<T> {
    v.parse().map_err(|_| Error::config(what, v, "a number"))
}

fn ops(names: &[OpName], prob: f64, magnitude: f64, hp: &Arc<AugHparams>) -> Vec<AugmentOp> {
    names
        .iter()
        .map(|&name| AugmentOp {
            name,
            prob,
            magnitude,
            hp: hp.clone(),
        })
        .collect()
}

/// timm's `rand_augment_transform(config, hparams)`.
pub fn rand_augment(config: &str, mut hp: AugHparams) -> Result<RandAugment> {
    let (mut magnitude, mut layers, mut increasing, mut prob, mut set) =
        (10.0, 2, false, 0.5, None);
    for c in config.split('-').skip(1) {
        if let Some(t) = c.strip_prefix('t') {
            set = Some(t.to_string());
            continue;
        }
        let Some((key, val)) = section(c) else {
            continue;
        };
        match key {
            "mstd" => {
                hp.magnitude_std = Some(num::<f64>("mstd", val)?)
                    .map(|s| if s > 100.0 { f64::INFINITY } else { s })
                    .unwrap_or(0.0)
            }
            "mmax" => hp.magnitude_max = Some(num::<i64>("mmax", val)? as f64),
            "inc" => increasing = num::<i64>("inc", val)? != 0,
            "m" => magnitude = num::<i64>("m", val)? as f64,
            "n" => layers = num("n", val)?,
            "p" => prob = num("p", val)?,
            _ => {
                return Err(Error::config(
                    "RandAugment section",
                    c,
                    "m, n, p, mstd, mmax, inc or t",
                ))
            }
        }
    }
    let hp = Arc::new(hp);
    let weighted = |table: &[(OpName, f64)]| {
        let total: f64 = table.iter().map(|t| t.1).sum();
        let names: Vec<OpName> = table.iter().map(|t| t.0).collect();
        (names, Some(table.iter().map(|t| t.1 / total).collect()))
    };
    let (names, weights) = match set.as_deref() {
        Some("weights") => weighted(&RAND_WEIGHTED_0),
        Some("3aw") => weighted(&RAND_WEIGHTED_3A),
        Some("3a") => (RAND_3A.to_vec(), None),
        _ if increasing => (RAND_INCREASING_TRANSFORMS.to_vec(), None),
        _ => (RAND_TRANSFORMS.to_vec(), None),
    };
    Ok(RandAugment {
        ops: ops(&names, prob, magnitude, &hp),
        num_layers: layers,
        weights,
    })
}

/// One AutoAugment policy: (op, probability, magnitude) per sub-policy step.
type Policy = &'static [&'static [(OpName, f64, f64)]];

/// timm's `auto_augment_transform(config, hparams)`: `v0`, `v0r`, `original`, `originalr`, `3a`, `-mstd<x>`.
pub fn auto_augment(config: &str, mut hp: AugHparams) -> Result<AutoAugment> {
    let mut parts = config.split('-');
    let name = parts.next().unwrap_or_default();
    for c in parts {
        match section(c) {
            Some(("mstd", v)) => hp.magnitude_std = num("mstd", v)?,
            Some(_) => return Err(Error::config("AutoAugment section", c, "mstd<float>")),
            None => {}
        }
    }
    // The `r` policies are their base tables with PosterizeIncreasing.
    let (policy, r): (Policy, bool) = match name {
        "v0" => (policies::V0, false),
        "v0r" => (policies::V0, true),
        "original" => (policies::ORIGINAL, false),
        "originalr" => (policies::ORIGINAL, true),
        "3a" => (policies::THREE_A, false),
        _ => {
            return Err(Error::config(
                "AutoAugment policy",
                name,
                "v0, v0r, original, originalr or 3a",
            ))
        }
    };
    let hp = Arc::new(hp);
    let policy = policy
        .iter()
        .map(|sub| {
            sub.iter()
                .map(|&(name, prob, magnitude)| AugmentOp {
                    name: if r {
                        policies::posterize_increasing(name)
                    } else {
                        name
                    },
                    prob,
                    magnitude,
                    hp: hp.clone(),
                })
                .collect()
        })
        .collect();
    Ok(AutoAugment { policy })
}

/// timm's `augment_and_mix_transform(config, hparams)`: `augmix-m<sev>-w<width>-d<depth>-a<alpha>-b<0|1>-mstd<x>`.
pub fn augmix(config: &str, mut hp: AugHparams) -> Result<AugMix> {
    let (mut magnitude, mut width, mut depth, mut alpha, mut blended) = (3.0, 3, -1, 1.0, false);
    let mut mstd = None;
    for c in config.split('-').skip(1) {
        let Some((key, val)) = section(c) else {
            continue;
        };
        match key {
            "mstd" => mstd = Some(num::<f64>("mstd", val)?),
            "m" => magnitude = num::<i64>("m", val)? as f64,
            "w" => width = num("w", val)?,
            "d" => depth = num("d", val)?,
            "a" => alpha = num("a", val)?,
            "b" => blended = num::<i64>("b", val)? != 0,
            _ => return Err(Error::config("AugMix section", c, "m, w, d, a, b or mstd")),
        }
    }
    hp.magnitude_std = mstd.unwrap_or(f64::INFINITY);
    let hp = Arc::new(hp);
    Ok(AugMix {
        ops: ops(&AUGMIX_TRANSFORMS, 1.0, magnitude, &hp),
        alpha,
        width,
        depth,
        blended,
    })
}

/// The transform for timm's `--aa` string: `rand-...`, `augmix-...`, or an AutoAugment policy.
pub fn aa_transform(config: &str, hp: AugHparams) -> Result<Box<dyn Transform>> {
    Ok(if config.starts_with("rand") {
        Box::new(rand_augment(config, hp)?)
    } else if config.starts_with("augmix") {
        Box::new(augmix(
            config,
            AugHparams {
                translate_pct: 0.3,
                ..hp
            },
        )?)
    } else {
        Box::new(auto_augment(config, hp)?)
    })
}
