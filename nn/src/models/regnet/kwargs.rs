//! The model-specific kwargs (`--model-kwargs`) RegNet takes, as timm's constructor names them.

use super::{stage_args, RegNetCfg, StageArgs};
use crate::model_kwargs::{Bad, Kwargs, TakesKwargs};
use crate::Error;

impl TakesKwargs for RegNetCfg {
    // timm's RegNet overlays its kwargs onto the variant's `RegNetCfg` (`replace(cfg, **kwargs)`).
    const KEYS: &'static [&'static str] = &[
        "depth",
        "w0",
        "wa",
        "wm",
        "group_size",
        "bottle_ratio",
        "se_ratio",
        "group_min_ratio",
        "stem_width",
    ];

    fn apply(&mut self, kw: &Kwargs) -> std::result::Result<(), Bad> {
        self.depth = kw.count("depth")?.unwrap_or(self.depth);
        self.w0 = kw.count("w0")?.unwrap_or(self.w0);
        self.wa = kw.positive("wa")?.unwrap_or(self.wa);
        self.wm = kw.positive("wm")?.unwrap_or(self.wm);
        self.group_size = kw.count("group_size")?.unwrap_or(self.group_size);
        self.bottle_ratio = kw.positive("bottle_ratio")?.unwrap_or(self.bottle_ratio);
        self.se_ratio = kw.non_negative("se_ratio")?.unwrap_or(self.se_ratio);
        self.group_min_ratio =
            (kw.non_negative("group_min_ratio")?).unwrap_or(self.group_min_ratio);
        self.stem_width = kw.count("stem_width")?.unwrap_or(self.stem_width);
        if self.wm <= 1.0 {
            return Err(format!(
                "wm={} must be above 1 (the widths grow by it)",
                self.wm
            ));
        }
        match stage_args(self, "") {
            Ok(_) => Ok(()),
            Err(Error::BadArgument { msg, .. }) => Err(msg),
            Err(e) => Err(e.to_string()),
        }
    }

    fn params(&self) -> f64 {
        let Ok(stages) = stage_args(self, "") else {
            return 0.0;
        };
        // Per block: the two 1×1 convs through the bottleneck and the grouped 3×3.
        let block = |s: &StageArgs| {
            let (w, b) = (s.width as f64, s.width as f64 * self.bottle_ratio);
            2.0 * w * b + 9.0 * b * s.group_size as f64
        };
        stages.iter().map(|s| s.depth as f64 * block(s)).sum()
    }
}
