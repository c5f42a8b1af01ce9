//! timm's `features_only`: a model that returns the feature maps at chosen indices of its
//! [`Model::feature_info`] instead of logits.

use crate::{
    create_model, Error, FeatureFormat, FeatureInfo, Model, ModelArgs, OutIndices, Result,
};
use kiln_engine::Tensor;

/// A model wrapped as timm's `features_only` wraps it: [`FeatureExtractor::forward`] returns
/// the taken maps in the model's order (timm's, whatever order `out_indices` lists them in).
pub struct FeatureExtractor {
    model: Box<dyn Model>,
    take: Vec<usize>,
    info: Vec<FeatureInfo>,
    output_fmt: FeatureFormat,
}

impl FeatureExtractor {
    /// Wraps `model` (its classifier removed, as timm's feature models have none), taking
    /// `out_indices` or the family's default.
    pub fn new(mut model: Box<dyn Model>, out_indices: Option<OutIndices>) -> Result<Self> {
        let cfg = model.feature_cfg();
        let out_indices = out_indices.unwrap_or(cfg.out_indices);
        let take = resolve(&out_indices, model.as_ref())?;
        model.reset_classifier(0, None)?;
        let info = take.iter().map(|&i| model.feature_info()[i].clone());
        Ok(FeatureExtractor {
            info: info.collect(),
            take,
            model,
            output_fmt: cfg.output_fmt,
        })
    }

    /// The taken feature maps, in the order of [`FeatureExtractor::feature_info`].
    pub fn forward(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        let maps = self.model.forward_intermediates(x)?;
        let taken = maps
            .into_iter()
            .enumerate()
            .filter(|(i, _)| self.take.contains(i));
        taken
            .map(|(_, m)| match self.output_fmt {
                FeatureFormat::Nchw => Ok(m),
                FeatureFormat::Nhwc => Ok(m.permute(&[0, 2, 3, 1])?.contiguous()?),
            })
            .collect()
    }

    /// Channels, reduction and module of each taken map.
    pub fn feature_info(&self) -> &[FeatureInfo] {
        &self.info
    }

    /// The taken indices into the model's feature_info, ascending.
    pub fn out_indices(&self) -> &[usize] {
        &self.take
    }

    /// The wrapped model (its parameters, pretrained config).
    pub fn model(&self) -> &dyn Model {
        self.model.as_ref()
    }

    /// The wrapped model, mutably (training mode, device, dtype).
    pub fn model_mut(&mut self) -> &mut dyn Model {
        self.model.as_mut()
    }
}

/// timm's `create_model(name, features_only=True, out_indices=...)`: the model built from
/// `args`, wrapped to return the maps at `out_indices` (`None`: the family's default).
pub fn create_features(
    name: &str,
    args: &ModelArgs,
    out_indices: Option<OutIndices>,
) -> Result<FeatureExtractor> {
    FeatureExtractor::new(create_model(name, args)?, out_indices)
}

/// The absolute indices `out_indices` names, ascending and each once (timm's
/// `feature_take_indices`, its extractors returning maps in module order).
fn resolve(out_indices: &OutIndices, model: &dyn Model) -> Result<Vec<usize>> {
    let n = model.feature_info().len();
    let model_name = || model.pretrained_cfg().name.clone();
    let mut take = match out_indices {
        OutIndices::Last(last) if (1..=n).contains(last) => (n - last..n).collect(),
        OutIndices::Last(last) => {
            return Err(Error::BadArgument {
                model: model_name(),
                msg: format!("out_indices {last} (the last n maps) is out of range (1 to {n})"),
            })
        }
        OutIndices::List(list) => list
            .iter()
            .map(|&i| {
                let abs = if i < 0 { i + n as i64 } else { i };
                usize::try_from(abs)
                    .ok()
                    .filter(|&a| a < n)
                    .ok_or_else(|| Error::BadArgument {
                        model: model_name(),
                        msg: format!(
                            "feature index {i} is out of range ({} to {}: {n} feature maps)",
                            -(n as i64),
                            n as i64 - 1
                        ),
                    })
            })
            .collect::<Result<Vec<usize>>>()?,
    };
    take.sort_unstable();
    take.dedup();
    Ok(take)
}
