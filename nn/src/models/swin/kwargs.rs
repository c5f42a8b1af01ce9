//! The model-specific kwargs (`--model-kwargs`) Swin takes, as timm's constructor names them.

use super::SwinCfg;
use crate::model_kwargs::{transformer, Bad, Kwargs, TakesKwargs};

impl TakesKwargs for SwinCfg {
    const KEYS: &'static [&'static str] = &["embed_dim", "depths", "num_heads", "window_size"];

    fn apply(&mut self, kw: &Kwargs) -> std::result::Result<(), Bad> {
        self.embed_dim = kw.count("embed_dim")?.unwrap_or(self.embed_dim);
        self.depths = kw.stages("depths")?.unwrap_or(self.depths);
        self.heads = kw.stages("num_heads")?.unwrap_or(self.heads);
        self.window = kw.count("window_size")?.unwrap_or(self.window);
        for (i, h) in self.heads.iter().enumerate() {
            if !(self.embed_dim << i).is_multiple_of(*h) {
                return Err(format!(
                    "stage {i}'s width {} is not a multiple of its {h} heads",
                    self.embed_dim << i
                ));
            }
        }
        Ok(())
    }

    fn params(&self) -> f64 {
        let stages = self.depths.iter().enumerate();
        stages
            .map(|(i, &n)| transformer(n, self.embed_dim << i, 4 * (self.embed_dim << i)))
            .sum()
    }
}
