//! The model-specific kwargs (`--model-kwargs`) the NF-Nets take: the `NfCfg` fields timm's
//! constructor overlays onto the variant's config.

use super::config::{nonlin_gamma, NfCfg};
use crate::layers::Activation;
use crate::model_kwargs::{Bad, KwargValue, Kwargs, TakesKwargs};

impl TakesKwargs for NfCfg {
    const KEYS: &'static [&'static str] = &[
        "depths",
        "channels",
        "alpha",
        "group_size",
        "attn_gain",
        "width_factor",
        "bottle_ratio",
        "num_features",
        "ch_div",
        "gamma_in_act",
        "std_conv_eps",
        "skipinit",
        "zero_init_fc",
        "act_layer",
    ];

    fn apply(&mut self, kw: &Kwargs) -> std::result::Result<(), Bad> {
        self.depths = kw.stages("depths")?.unwrap_or(self.depths);
        self.channels = kw.stages("channels")?.unwrap_or(self.channels);
        self.alpha = kw.positive("alpha")?.unwrap_or(self.alpha);
        self.group_size = kw.count("group_size")?.or(self.group_size);
        self.attn_gain = kw.positive("attn_gain")?.unwrap_or(self.attn_gain);
        self.width_factor = kw.positive("width_factor")?.unwrap_or(self.width_factor);
        self.bottle_ratio = kw.positive("bottle_ratio")?.unwrap_or(self.bottle_ratio);
        self.num_features = match kw.get("num_features") {
            Some(KwargValue::Int(0)) => 0,
            _ => kw.count("num_features")?.unwrap_or(self.num_features),
        };
        self.ch_div = kw.count("ch_div")?.unwrap_or(self.ch_div);
        self.gamma_in_act = kw.flag("gamma_in_act")?.unwrap_or(self.gamma_in_act);
        self.std_conv_eps = kw.positive("std_conv_eps")?.unwrap_or(self.std_conv_eps);
        self.skipinit = kw.flag("skipinit")?.unwrap_or(self.skipinit);
        self.zero_init_fc = kw.flag("zero_init_fc")?.unwrap_or(self.zero_init_fc);
        if let Some(v) = kw.get("act_layer") {
            let act = kw.text("act_layer").and_then(Activation::from_name);
            self.act = act.filter(|a| nonlin_gamma(*a).is_some()).ok_or_else(|| {
                Kwargs::bad(
                    "act_layer",
                    v,
                    "an activation timm has an NF gain for (relu, relu6, silu, gelu, sigmoid, \
                     tanh)",
                )
            })?;
        }
        Ok(())
    }

    fn params(&self) -> f64 {
        // Per block about three bottleneck convs (1×1, 3×3 grouped, 1×1) at the stage's width.
        let mut total = 0.0;
        for (d, c) in self.depths.iter().zip(self.channels) {
            let w = c as f64 * self.width_factor;
            let mid = w * self.bottle_ratio.max(0.25);
            total += *d as f64 * (2.0 * w * mid + 9.0 * mid * mid);
        }
        total + self.num_features as f64 * self.channels[3] as f64 * self.width_factor
    }
}
