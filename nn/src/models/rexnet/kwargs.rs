//! The model-specific kwargs (`--model-kwargs`) ReXNet takes, as timm's constructor names them.

use super::RexNetCfg;
use crate::model_kwargs::{Bad, Kwargs, TakesKwargs};

impl TakesKwargs for RexNetCfg {
    const KEYS: &'static [&'static str] = &[
        "width_mult",
        "depth_mult",
        "initial_chs",
        "final_chs",
        "se_ratio",
        "ch_div",
    ];

    fn apply(&mut self, kw: &Kwargs) -> std::result::Result<(), Bad> {
        self.width_mult = kw.positive("width_mult")?.unwrap_or(self.width_mult);
        self.depth_mult = kw.positive("depth_mult")?.unwrap_or(self.depth_mult);
        self.initial_chs = kw.count("initial_chs")?.unwrap_or(self.initial_chs);
        self.final_chs = kw.count("final_chs")?.unwrap_or(self.final_chs);
        self.se_ratio = kw.non_negative("se_ratio")?.unwrap_or(self.se_ratio);
        self.ch_div = kw.count("ch_div")?.unwrap_or(self.ch_div);
        Ok(())
    }

    fn params(&self) -> f64 {
        // Per block: the expansion and projection 1×1 convs and the depthwise 3×3.
        let mut prev = self.stem_chs() as f64;
        let mut total = 0.0;
        for b in self.blocks() {
            let dw = prev * b.exp_ratio;
            total += prev * dw + 9.0 * dw + dw * b.out_chs as f64;
            prev = b.out_chs as f64;
        }
        total + prev * self.pen_chs() as f64
    }
}
