//! The learning rate of one optimizer update for every param group, by the group's lr scale.

/// The lr of one optimizer update for each param group (layer-wise lr decay gives groups their lr
/// scales). timm's schedulers set `lr · scale` on every group; a plateau schedule then reduces
/// each group's own lr, so its min-lr clamp and eps act per group, as torch's `ReduceLROnPlateau`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroupLr {
    lr: f64,
    reductions: Option<Reductions>,
    factor: f64,
}

/// The reductions a plateau schedule made since it took over from warmup at lr `start`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Reductions {
    /// The lr of scale 1 when the plateau took over.
    pub start: f64,
    /// Reductions since (each one reduces every group that is still above min-lr).
    pub count: usize,
    /// The factor per reduction (`--decay-rate`).
    pub factor: f64,
    /// No reduction goes below it.
    pub min_lr: f64,
    /// This epoch's noise: the lr of scale 1 over its reduced value (1 without noise).
    pub noise: f64,
}

impl GroupLr {
    /// `lr · scale` for every group.
    pub fn scaled(lr: f64) -> Self {
        GroupLr {
            lr,
            reductions: None,
            factor: 1.0,
        }
    }

    pub(crate) fn reduced(lr: f64, reductions: Reductions) -> Self {
        GroupLr {
            lr,
            reductions: Some(reductions),
            factor: 1.0,
        }
    }

    /// The lr of a group of scale 1.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Every group's lr times `factor` (muon's fallback lr scale).
    pub fn times(self, factor: f64) -> Self {
        GroupLr {
            factor: self.factor * factor,
            ..self
        }
    }

    /// The lr of a group of lr scale `scale`.
    pub fn for_scale(&self, scale: f32) -> f64 {
        let scale = scale as f64;
        let lr = match self.reductions {
            None => self.lr * scale,
            Some(r) => {
                let reduced =
                    (0..r.count).fold(r.start * scale, |lr, _| reduce(lr, r.factor, r.min_lr));
                reduced * r.noise
            }
        };
        lr * self.factor
    }
}

/// Smaller lr changes are skipped (`ReduceLROnPlateau`'s eps).
const EPS: f64 = 1e-8;

/// One reduction of a param group's lr: times `factor`, not below `min_lr`, and no change smaller
/// than eps (`ReduceLROnPlateau._reduce_lr`).
pub(crate) fn reduce(lr: f64, factor: f64, min_lr: f64) -> f64 {
    let reduced = (lr * factor).max(min_lr);
    if lr - reduced > EPS {
        reduced
    } else {
        lr
    }
}
