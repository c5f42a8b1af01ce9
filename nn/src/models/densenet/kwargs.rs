//! The model-specific kwargs (`--model-kwargs`) DenseNet takes, as timm's constructor names them.

use super::DenseNetCfg;
use crate::model_kwargs::{Bad, Kwargs, TakesKwargs};

impl TakesKwargs for DenseNetCfg {
    const KEYS: &'static [&'static str] = &["growth_rate", "block_config", "bn_size"];

    fn apply(&mut self, kw: &Kwargs) -> std::result::Result<(), Bad> {
        self.growth_rate = kw.count("growth_rate")?.unwrap_or(self.growth_rate);
        self.block_config = kw.stages("block_config")?.unwrap_or(self.block_config);
        self.bn_size = kw.count("bn_size")?.unwrap_or(self.bn_size);
        Ok(())
    }

    fn params(&self) -> f64 {
        let (g, b) = (self.growth_rate as f64, self.bn_size as f64);
        let mut channels = 2.0 * g;
        let mut total = 0.0;
        for &n in &self.block_config {
            // Layer k reads channels + k·g inputs: its 1×1 conv to b·g, then a 3×3 to g.
            let n = n as f64;
            total += n * channels * b * g + b * g * g * n * (n - 1.0) / 2.0 + 9.0 * n * b * g * g;
            channels += n * g;
            total += channels * channels / 2.0;
            channels /= 2.0;
        }
        total
    }
}
