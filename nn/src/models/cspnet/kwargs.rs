//! The model-specific kwargs (`--model-kwargs`) CSPNet takes, as timm's constructor names them:
//! `output_stride` (8, 16 or 32) and `act_layer` (an activation name, timm's `cfg` overlay).

use super::CspNetCfg;
use crate::layers::Activation;
use crate::model_kwargs::{Bad, Kwargs, TakesKwargs};

impl TakesKwargs for CspNetCfg {
    const KEYS: &'static [&'static str] = &["output_stride", "act_layer"];

    fn apply(&mut self, kw: &Kwargs) -> std::result::Result<(), Bad> {
        if let Some(os) = kw.count("output_stride")? {
            if ![8, 16, 32].contains(&os) {
                return Err(format!("output_stride={os} is not 8, 16 or 32"));
            }
            self.output_stride = os;
        }
        if let Some(v) = kw.get("act_layer") {
            let act = kw.text("act_layer").and_then(Activation::from_name);
            self.act = act.ok_or_else(|| Kwargs::bad("act_layer", v, "an activation name"))?;
        }
        Ok(())
    }

    fn params(&self) -> f64 {
        // Neither kwarg changes the widths: each stage's blocks at about two squared widths.
        let stages = self.stages.iter();
        stages
            .map(|s| 2.0 * (s.depth * s.out_chs * s.out_chs) as f64)
            .sum()
    }
}
