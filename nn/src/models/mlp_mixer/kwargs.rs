//! The model-specific kwargs (`--model-kwargs`) the mixers take, as timm's `MlpMixer` names
//! them. timm's entry points pass `patch_size`, `num_blocks` and `embed_dim` themselves, and all
//! but the MLP-Mixers' `mlp_ratio`: given again, they fail there (a keyword given twice), and
//! kiln refuses them too.

use super::{MixerBlockKind, MixerCfg};
use crate::model_kwargs::{Bad, KwargValue, Kwargs, TakesKwargs};

/// `mlp_ratio` as given: one positive number (both MLPs' ratio) or a pair (the token MLP's, the
/// channel MLP's), as timm's `to_2tuple` reads it.
fn mlp_ratio(kw: &Kwargs) -> std::result::Result<Option<(f64, f64)>, Bad> {
    let Some(v) = kw.get("mlp_ratio") else {
        return Ok(None);
    };
    let positive = |v: &KwargValue| match v {
        KwargValue::Int(i) if *i > 0 => Some(*i as f64),
        KwargValue::Float(f) if *f > 0.0 => Some(*f),
        _ => None,
    };
    let ratios = match v {
        KwargValue::Tuple(items) if items.len() == 2 => {
            positive(&items[0]).zip(positive(&items[1]))
        }
        v => positive(v).map(|r| (r, r)),
    };
    let what = "a positive number or a pair of them (tokens, channels)";
    ratios
        .map(Some)
        .ok_or_else(|| Kwargs::bad("mlp_ratio", v, what))
}

impl TakesKwargs for MixerCfg {
    const KEYS: &'static [&'static str] = &["mlp_ratio", "stem_norm", "nlhb"];

    fn apply(&mut self, kw: &Kwargs) -> std::result::Result<(), Bad> {
        self.stem_norm = kw.flag("stem_norm")?.unwrap_or(self.stem_norm);
        self.nlhb = kw.flag("nlhb")?.unwrap_or(self.nlhb);
        let Some(ratio) = mlp_ratio(kw)? else {
            return Ok(());
        };
        if self.block != MixerBlockKind::Mixer {
            return Err(
                "mlp_ratio is this model's entry point's own (timm: got multiple values \
                        for keyword argument 'mlp_ratio'); only the MLP-Mixers take it"
                    .into(),
            );
        }
        self.mlp_ratio = ratio;
        let (tokens, channels) = self.hidden();
        match tokens.min(channels) {
            0 => Err(format!(
                "mlp_ratio {ratio:?} makes an MLP 0 wide at embed_dim {}",
                self.dim
            )),
            _ => Ok(()),
        }
    }

    fn params(&self) -> f64 {
        let (tokens, channels) = self.hidden();
        let seq = (224 / self.patch.max(1)).pow(2) as f64;
        let (d, t, c) = (self.dim as f64, tokens as f64, channels as f64);
        self.num_blocks as f64 * (2.0 * d * c + 2.0 * seq * t.max(seq))
    }
}
