//! The model-specific kwargs (`--model-kwargs`) ResNet-V2 takes, as timm's `ResNetV2` names them.

use super::{ResNetV2Cfg, StemType};
use crate::model_kwargs::{Bad, Kwargs, TakesKwargs};

/// timm's `stem_type` as (stem, fixed padding); `None` for a name timm does not take.
fn stem_type(name: &str) -> Option<Result<(StemType, bool), Bad>> {
    Some(Ok(match name {
        "" => (StemType::Plain, false),
        "fixed" => (StemType::Plain, true),
        "deep" => (StemType::Deep, false),
        "deep_fixed" => (StemType::Deep, true),
        "tiered" => (StemType::Tiered, false),
        "same" | "deep_same" => {
            return Some(Err(format!(
                "stem_type '{name}' (TensorFlow's input-size \"same\" max pool of the ViT hybrids) \
                 is not built by kiln; it takes '', 'fixed', 'deep', 'deep_fixed' or 'tiered'"
            )))
        }
        _ => return None,
    }))
}

impl TakesKwargs for ResNetV2Cfg {
    const KEYS: &'static [&'static str] = &[
        "layers",
        "channels",
        "width_factor",
        "stem_chs",
        "stem_type",
        "avg_down",
        "basic",
        "bottle_ratio",
    ];

    fn apply(&mut self, kw: &Kwargs) -> std::result::Result<(), Bad> {
        self.layers = kw.stages("layers")?.unwrap_or(self.layers);
        self.channels = kw.stages("channels")?.unwrap_or(self.channels);
        self.width_factor = kw.count("width_factor")?.unwrap_or(self.width_factor);
        self.stem_chs = kw.count("stem_chs")?.unwrap_or(self.stem_chs);
        if let Some(v) = kw.get("stem_type") {
            let what = "'', 'fixed', 'deep', 'deep_fixed' or 'tiered'";
            let parsed = kw.text("stem_type").and_then(stem_type);
            (self.stem_type, self.stem_fixed) =
                parsed.ok_or_else(|| Kwargs::bad("stem_type", v, what))??;
        }
        self.avg_down = kw.flag("avg_down")?.unwrap_or(self.avg_down);
        self.basic = kw.flag("basic")?.unwrap_or(self.basic);
        self.bottle_ratio = kw.positive("bottle_ratio")?.unwrap_or(self.bottle_ratio);
        Ok(())
    }

    fn params(&self) -> f64 {
        let stem = self.width(self.stem_chs) as f64;
        let mut prev = stem;
        let mut total = 147.0 * stem + 27.0 * stem * stem;
        for (&n, &c) in self.layers.iter().zip(&self.channels) {
            let out = self.width(c) as f64;
            let mid = out * self.bottle_ratio;
            let block = |i: f64| match self.basic {
                true => 9.0 * (i * mid + mid * out),
                false => i * mid + 9.0 * mid * mid + mid * out,
            };
            total += block(prev) + (n as f64 - 1.0) * block(out) + prev * out;
            prev = out;
        }
        total
    }
}
