//! The model-specific kwargs (`--model-kwargs`) ResNet takes, as timm's constructor names them.

use super::{BlockKind, ResNetCfg, StemType};
use crate::model_kwargs::{Bad, Kwargs, TakesKwargs};

impl TakesKwargs for ResNetCfg {
    const KEYS: &'static [&'static str] = &[
        "layers",
        "stem_width",
        "stem_type",
        "avg_down",
        "cardinality",
        "base_width",
    ];

    fn apply(&mut self, kw: &Kwargs) -> std::result::Result<(), Bad> {
        self.layers = kw.stages("layers")?.unwrap_or(self.layers);
        self.stem_width = kw.count("stem_width")?.unwrap_or(self.stem_width);
        if let Some(v) = kw.get("stem_type") {
            self.stem = match kw.text("stem_type") {
                Some("") => StemType::Single,
                Some("deep") => StemType::Deep,
                Some("deep_tiered") => StemType::DeepTiered,
                _ => return Err(Kwargs::bad("stem_type", v, "'', 'deep' or 'deep_tiered'")),
            };
        }
        self.avg_down = kw.flag("avg_down")?.unwrap_or(self.avg_down);
        self.cardinality = kw.count("cardinality")?.unwrap_or(self.cardinality);
        self.base_width = kw.count("base_width")?.unwrap_or(self.base_width);
        Ok(())
    }

    fn params(&self) -> f64 {
        let stem = 27.0 * (self.stem_width * self.stem_width) as f64;
        let stages = self.layers.iter().enumerate().map(|(i, &n)| {
            let expansion = match self.blocks[i] {
                BlockKind::Basic => 1.0,
                _ => 4.0,
            };
            let planes = self.channels[i] as f64;
            let width = planes * self.base_width as f64 / 64.0 * self.cardinality as f64;
            let out = planes * expansion;
            let conv3 = 9.0 * width * width / self.cardinality as f64;
            n as f64 * (conv3 + 2.0 * width * out.max(width))
        });
        stem + stages.sum::<f64>()
    }
}
