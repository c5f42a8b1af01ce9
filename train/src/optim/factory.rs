//! timm's `create_optimizer_v2`: an optimizer by name (every name of timm 1.0's registry), its
//! parameter groups, and the flags that tune it.

use super::adabelief::AdaBelief;
use super::adafactor::{Adafactor, AdafactorCfg, BigVision};
use super::adagrad::{Adadelta, Adagrad};
use super::adam::{Adam, AdamKind};
use super::adamax::Adamax;
use super::adan::Adan;
use super::ademamix::AdEMAMix;
use super::adopt::Adopt;
use super::decay::Decay;
use super::family::Family;
use super::groups::{layer_decay_groups, layer_decayed_params, param_groups};
use super::kron::{Kron, KronCfg};
use super::kron_precond::{FactorCfg, MemorySave};
use super::laprop::LaProp;
use super::lion::Lion;
use super::madgrad::Madgrad;
use super::muon::{Muon, MuonCfg};
use super::newton_schulz::NewtonSchulz;
use super::projection::Projection;
use super::rmsprop::RmsProp;
use super::rule_optimizer::{Parts, RuleOptimizer};
use super::sgd::Sgd;
use super::trust::Trust;
use super::{Lookahead, Optimizer};
use crate::clip::ClipMode;
#[cfg(feature = "clap")]
use crate::flags::{finite_f64, key_value};
use crate::flags::{first_outside, kwargs_as_mapping, Range};
use crate::setters::setters;
use crate::{Error, Result};
use kiln_nn::{Model, NamedTensor};
use serde::Serialize;
use std::collections::BTreeMap;

/// What `create_optimizer_v2` takes (timm's `optimizer_kwargs(cfg)`), with timm's names: the
/// "Optimizer parameters" flags of timm's train.py (the `kiln` command flattens this struct, so
/// each flag is declared here once), with train.py's flag defaults and create_optimizer_v2's
/// library defaults ([`Default`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct OptimizerConfig {
    /// Optimizer: a name of timm's registry (sgd, adamw, lion, ...), optionally `lookahead_`-prefixed.
    #[cfg_attr(feature = "clap", arg(long, default_value = "sgd"))]
    pub opt: String,
    /// Optimizer epsilon (default: the optimizer's).
    #[cfg_attr(feature = "clap", arg(id = "opt_eps", long = "opt-eps", value_parser = finite_f64))]
    #[serde(rename = "opt_eps")]
    pub eps: Option<f64>,
    /// Optimizer betas (default: the optimizer's).
    #[cfg_attr(
        feature = "clap",
        arg(id = "opt_betas", long = "opt-betas", num_args = 1.., value_parser = finite_f64)
    )]
    #[serde(rename = "opt_betas")]
    pub betas: Option<Vec<f64>>,
    /// SGD momentum (for the optimizers that take one).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0.9, value_parser = finite_f64))]
    pub momentum: f64,
    /// Weight decay (not applied to biases and norm parameters; the library's default is 0).
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 2e-5, value_parser = finite_f64))]
    pub weight_decay: f64,
    /// Clip the gradient norm to this (the trainer clips before each update).
    #[cfg_attr(feature = "clap", arg(long, value_parser = finite_f64))]
    pub clip_grad: Option<f64>,
    /// Gradient clipping mode. One of ("norm", "value", "agc").
    #[cfg_attr(feature = "clap", arg(long, value_enum, default_value_t = ClipMode::Norm))]
    pub clip_mode: ClipMode,
    /// Layer-wise learning rate decay (from the model's group_matcher).
    #[cfg_attr(feature = "clap", arg(long, value_parser = finite_f64))]
    pub layer_decay: Option<f64>,
    /// Floor on a layer's lr scale under --layer-decay.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = 0.0, value_parser = finite_f64))]
    pub layer_decay_min_scale: f64,
    /// Layers whose lr scale falls below this are not optimized.
    #[cfg_attr(feature = "clap", arg(long, value_parser = finite_f64))]
    pub layer_decay_no_opt_scale: Option<f64>,
    /// Other optimizer arguments, as key=value.
    #[cfg_attr(
        feature = "clap",
        arg(id = "opt_kwargs", long = "opt-kwargs", num_args = 0.., value_parser = key_value)
    )]
    #[serde(rename = "opt_kwargs", serialize_with = "kwargs_as_mapping")]
    pub kwargs: Vec<(String, String)>,
    /// The learning rate the optimizer is built with (corrected weight decay's `max_lr`); None
    /// makes Adafactor take relative steps. Not a flag: the schedule's lr rule resolves it.
    #[cfg_attr(feature = "clap", arg(skip))]
    #[serde(skip)]
    pub lr: Option<f64>,
    /// Kron's noise generator's seed outside its deterministic mode (the run's `--seed`).
    #[cfg_attr(feature = "clap", arg(skip = 42u64))]
    #[serde(skip)]
    pub seed: u64,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            opt: "sgd".into(),
            lr: None,
            momentum: 0.9,
            weight_decay: 0.0,
            eps: None,
            betas: None,
            clip_grad: None,
            clip_mode: ClipMode::Norm,
            layer_decay: None,
            layer_decay_min_scale: 0.0,
            layer_decay_no_opt_scale: None,
            kwargs: Vec::new(),
            seed: 42,
        }
    }
}

impl OptimizerConfig {
    /// The optimizer `opt` (a name of timm's registry) with timm's other defaults.
    pub fn new(opt: impl Into<String>) -> Self {
        OptimizerConfig {
            opt: opt.into(),
            ..OptimizerConfig::default()
        }
    }

    /// The gradient clipping the trainer applies before each update (`--clip-grad` set).
    pub fn clip(&self) -> Option<(ClipMode, f64)> {
        self.clip_grad.map(|v| (self.clip_mode, v))
    }

    /// Refuses the first value outside its flag's range.
    pub fn check_ranges(&self) -> Result<()> {
        use Range::*;
        first_outside([
            ("--opt-eps", self.eps.into_iter().collect(), Positive),
            (
                "--opt-betas",
                self.betas.clone().unwrap_or_default(),
                UnitOpen,
            ),
            ("--momentum", vec![self.momentum], NonNegative),
            ("--weight-decay", vec![self.weight_decay], NonNegative),
            (
                "--clip-grad",
                self.clip_grad.into_iter().collect(),
                Positive,
            ),
            (
                "--layer-decay",
                self.layer_decay.into_iter().collect(),
                NonNegative,
            ),
            (
                "--layer-decay-min-scale",
                vec![self.layer_decay_min_scale],
                NonNegative,
            ),
        ])
    }
}

setters!(OptimizerConfig {
    into opt: String,
    lr?: f64,
    momentum: f64,
    weight_decay: f64,
    eps?: f64,
    betas?: Vec<f64>,
    clip_grad?: f64,
    clip_mode: ClipMode,
    layer_decay?: f64,
    layer_decay_min_scale: f64,
    layer_decay_no_opt_scale?: f64,
    kwargs: Vec<(String, String)>,
    seed: u64,
});

/// An error on `--opt`.
fn opt_error(msg: String) -> Error {
    Error::Flag {
        flag: "--opt".into(),
        msg,
    }
}

/// `--opt-kwargs`, read by name; [`Kwargs::finish`] refuses the ones nobody read.
struct Kwargs {
    values: BTreeMap<String, String>,
}

impl Kwargs {
    fn get(&mut self, key: &str) -> Result<Option<f64>> {
        let Some(v) = self.values.remove(key) else {
            return Ok(None);
        };
        let parsed = match v.to_ascii_lowercase().as_str() {
            "true" => Some(1.0),
            "false" | "none" => Some(0.0),
            s => s.parse().ok(),
        };
        parsed.map(Some).ok_or_else(|| Error::Flag {
            flag: "--opt-kwargs".into(),
            msg: format!("{key}={v} is not a number or true/false"),
        })
    }

    /// The raw text of `key`, None when absent or `None`.
    fn text(&mut self, key: &str) -> Option<String> {
        let v = self.values.remove(key)?;
        (!v.eq_ignore_ascii_case("none")).then_some(v)
    }

    fn f64(&mut self, key: &str, default: f64) -> Result<f64> {
        Ok(self.get(key)?.unwrap_or(default))
    }

    fn bool(&mut self, key: &str, default: bool) -> Result<bool> {
        Ok(self.get(key)?.map_or(default, |v| v != 0.0))
    }

    fn finish(self, opt: &str) -> Result<()> {
        match self.values.keys().next() {
            Some(k) => Err(Error::Flag {
                flag: "--opt-kwargs".into(),
                msg: format!("'{opt}' takes no argument '{k}'"),
            }),
            None => Ok(()),
        }
    }
}

/// What a name asks for beyond its family: timm's `OptimInfo.defaults`.
#[derive(Debug, Clone, Copy, Default)]
struct Variant {
    caution: bool,
    corrected: bool,
    decoupled: bool,
    nesterov: bool,
    trust_clip: bool,
    trust: Option<Trust>,
}

/// The family a supported name builds, or None for names kiln does not implement.
fn family(
    base: &str,
    v: &mut Variant,
    a: &OptimizerConfig,
    kw: &mut Kwargs,
) -> Result<Option<Box<dyn Family>>> {
    let betas = |d: (f64, f64)| match a.betas.as_deref() {
        Some([b1, b2, ..]) => (*b1, *b2),
        _ => d,
    };
    let eps = |d: f64| a.eps.unwrap_or(d);
    let decay = |decoupled: bool| {
        if decoupled {
            Decay::Decoupled
        } else {
            Decay::L2
        }
    };
    v.caution = kw.bool("caution", v.caution)?;
    v.corrected = kw.bool("corrected_weight_decay", v.corrected)?;
    let adam = |kind, decoupled, e| Adam {
        kind,
        betas: betas((0.9, 0.999)),
        eps: eps(e),
        decay: decay(decoupled),
    };
    Ok(Some(match base {
        "sgd" | "momentum" | "sgdw" => {
            let nesterov = kw.bool("nesterov", v.nesterov)?;
            Box::new(Sgd {
                momentum: kw.f64("momentum", a.momentum)?,
                dampening: kw.f64("dampening", 0.0)?,
                nesterov,
                decay: decay(v.decoupled),
                buffer_from_zero: false,
            })
        }
        "adam" | "adamw" => Box::new(adam(AdamKind::Adam, v.decoupled, 1e-8)),
        "lamb" => {
            let max_grad_norm = kw.f64("max_grad_norm", 1.0)?;
            v.trust = Some(Trust::Lamb {
                max_grad_norm: (max_grad_norm > 0.0).then_some(max_grad_norm),
                trust_clip: kw.bool("trust_clip", v.trust_clip)?,
                always_adapt: kw.bool("always_adapt", false)?,
            });
            let decoupled = kw.bool("decoupled_decay", v.decoupled)?;
            Box::new(adam(AdamKind::Adam, decoupled, 1e-6))
        }
        "madgrad" => {
            let momentum = kw.f64("momentum", a.momentum)?;
            if momentum <= 0.0 {
                return Err(opt_error(
                    "madgrad with momentum 0 (its plain dual-averaging form) is not in kiln yet; \
                     use --momentum > 0"
                        .into(),
                ));
            }
            Box::new(Madgrad {
                momentum,
                eps: eps(1e-6),
                decay: decay(kw.bool("decoupled_decay", v.decoupled)?),
            })
        }
        "mars" => {
            let (b1, b2) = betas((0.9, 0.99));
            v.trust = Some(Trust::Mars {
                gamma: kw.f64("gamma", 0.025)?,
                beta1: b1,
            });
            Box::new(Adam {
                kind: AdamKind::Adam,
                betas: (b1, b2),
                eps: eps(1e-8),
                decay: Decay::Decoupled,
            })
        }
        "adamp" => {
            v.trust = Some(Trust::Project(Projection {
                delta: kw.f64("delta", 0.1)?,
                wd_ratio: kw.f64("wd_ratio", 0.01)?,
                eps: eps(1e-8),
                decay_scale: 1.0,
            }));
            let kind = match kw.bool("nesterov", v.nesterov)? {
                true => AdamKind::NAdamW,
                false => AdamKind::Adam,
            };
            Box::new(adam(kind, true, 1e-8))
        }
        "sgdp" => {
            let momentum = kw.f64("momentum", a.momentum)?;
            v.trust = Some(Trust::Project(Projection {
                delta: kw.f64("delta", 0.1)?,
                wd_ratio: kw.f64("wd_ratio", 0.1)?,
                eps: eps(1e-8),
                decay_scale: 1.0 / (1.0 - momentum),
            }));
            Box::new(Sgd {
                momentum,
                dampening: kw.f64("dampening", 0.0)?,
                nesterov: kw.bool("nesterov", v.nesterov)?,
                decay: Decay::Decoupled,
                buffer_from_zero: true,
            })
        }
        "novograd" => {
            let (b1, b2) = betas((0.95, 0.98));
            v.trust = Some(Trust::NovoGrad {
                beta2: b2,
                eps: eps(1e-8),
            });
            Box::new(Sgd {
                momentum: b1,
                dampening: 0.0,
                nesterov: false,
                decay: decay(kw.bool("decoupled_decay", v.decoupled)?),
                buffer_from_zero: false,
            })
        }
        "lars" => {
            v.trust = Some(Trust::Lars {
                trust_coeff: kw.f64("trust_coeff", 0.001)?,
                eps: eps(1e-8),
                trust_clip: kw.bool("trust_clip", v.trust_clip)?,
                always_adapt: kw.bool("always_adapt", false)?,
            });
            Box::new(Sgd {
                momentum: kw.f64("momentum", a.momentum)?,
                dampening: kw.f64("dampening", 0.0)?,
                nesterov: kw.bool("nesterov", v.nesterov)?,
                decay: Decay::L2,
                buffer_from_zero: false,
            })
        }
        "nadam" => Box::new(adam(AdamKind::NAdam, v.decoupled, 1e-8)),
        "nadamw" => Box::new(adam(AdamKind::NAdamW, true, 1e-8)),
        "radam" => Box::new(adam(AdamKind::RAdam, v.decoupled, 1e-8)),
        "adamax" => Box::new(Adamax {
            betas: betas((0.9, 0.999)),
            eps: eps(1e-8),
        }),
        "rmsprop" | "rmsproptf" => {
            let tf = base == "rmsproptf";
            Box::new(RmsProp {
                tf,
                alpha: kw.f64("alpha", 0.9)?,
                eps: eps(if tf { 1e-10 } else { 1e-8 }),
                momentum: kw.f64("momentum", a.momentum)?,
                decay: decay(kw.bool("decoupled_decay", v.decoupled)?),
            })
        }
        "adabelief" | "radabelief" => Box::new(AdaBelief {
            betas: betas((0.9, 0.999)),
            eps: eps(1e-16),
            rectify: kw.bool("rectify", base == "radabelief")?,
            degenerated_to_sgd: kw.bool("degenerated_to_sgd", true)?,
            decay: decay(kw.bool("decoupled_decay", true)?),
        }),
        "adan" | "adanw" => Box::new(Adan {
            betas: match a.betas.as_deref() {
                Some([b1, b2, b3, ..]) => (*b1, *b2, *b3),
                _ => (0.98, 0.92, 0.99),
            },
            eps: eps(1e-8),
            no_prox: kw.bool("no_prox", base == "adanw")?,
        }),
        "ademamix" => Box::new(AdEMAMix {
            betas: match a.betas.as_deref() {
                Some([b1, b2, b3, ..]) => (*b1, *b2, *b3),
                _ => (0.9, 0.999, 0.9999),
            },
            alpha: kw.f64("alpha", 5.0)?,
            eps: eps(1e-8),
        }),
        "adagrad" => Box::new(Adagrad {
            eps: eps(1e-8),
            lr_decay: kw.f64("lr_decay", 0.0)?,
        }),
        "adadelta" => Box::new(Adadelta {
            rho: kw.f64("rho", 0.9)?,
            eps: eps(1e-6),
        }),
        "lion" => Box::new(Lion {
            betas: betas((0.9, 0.99)),
        }),
        "laprop" => Box::new(LaProp {
            betas: betas((0.9, 0.999)),
            eps: eps(1e-15),
        }),
        "adopt" => {
            let clip = kw.f64("clip_exp", 0.333)?;
            Box::new(Adopt {
                betas: betas((0.9, 0.9999)),
                eps: eps(1e-6),
                clip_exp: (clip > 0.0).then_some(clip),
                decay: decay(kw.bool("decoupled", v.decoupled)?),
            })
        }
        _ => return Ok(None),
    }))
}

/// A registered name: its family's name and the variant flags it sets.
fn resolve(name: &str) -> Option<(&'static str, Variant)> {
    let plain = |b| Some((b, Variant::default()));
    let with = |b, caution, corrected, decoupled| {
        let v = Variant {
            caution,
            corrected,
            decoupled,
            ..Variant::default()
        };
        Some((b, v))
    };
    let sgd = |b, caution, corrected, decoupled, nesterov| {
        let v = Variant {
            caution,
            corrected,
            decoupled,
            nesterov,
            ..Variant::default()
        };
        Some((b, v))
    };
    let clipped = |b, trust_clip, nesterov| {
        let v = Variant {
            trust_clip,
            nesterov,
            ..Variant::default()
        };
        Some((b, v))
    };
    match name {
        "sgd" | "nesterov" | "fusedsgd" | "bnbsgd" => sgd("sgd", false, false, false, true),
        "momentum" => sgd("momentum", false, false, false, false),
        "sgdw" | "nesterovw" => sgd("sgdw", false, false, true, true),
        "sgdc" => sgd("sgdw", false, true, true, true),
        "csgdw" => sgd("sgdw", true, false, true, true),
        "csgdc" => sgd("sgdw", true, true, true, true),
        "adam" | "fusedadam" | "bnbadam" => plain("adam"),
        "adamw" | "adamwlegacy" | "fusedadamw" | "bnbadamw" => with("adamw", false, false, true),
        "adamc" => with("adamw", false, true, true),
        "cadamw" => with("adamw", true, false, true),
        "cadamc" => with("adamw", true, true, true),
        "nadam" | "nadamlegacy" => plain("nadam"),
        "nadamw" => plain("nadamw"),
        "nadamc" => with("nadamw", false, true, true),
        "cnadamw" => with("nadamw", true, false, true),
        "cnadamc" => with("nadamw", true, true, true),
        "radam" => plain("radam"),
        "radamw" | "radamlegacy" => with("radam", false, false, true),
        "adamax" => plain("adamax"),
        "rmsprop" => plain("rmsprop"),
        "rmsproptf" => plain("rmsproptf"),
        "rmsproptfw" => with("rmsproptf", false, false, true),
        "rmsproptfc" => with("rmsproptf", false, true, true),
        "crmsproptf" => with("rmsproptf", true, false, false),
        "lamb" | "fusedlamb" => plain("lamb"),
        "lambc" => clipped("lamb", true, false),
        "lambw" => with("lamb", false, false, true),
        "lambcw" => Some((
            "lamb",
            Variant {
                trust_clip: true,
                ..with("lamb", false, false, true)?.1
            },
        )),
        "lambcd" => with("lamb", false, true, true),
        "clamb" => with("lamb", true, false, false),
        "clambw" => with("lamb", true, false, true),
        "madgrad" => plain("madgrad"),
        "madgradw" => with("madgrad", false, false, true),
        "mars" => plain("mars"),
        "muon" => sgd("muon", false, false, true, false),
        "nmuon" => sgd("muon", false, false, true, true),
        "adamuon" => sgd("adamuon", false, false, true, false),
        "nadamuon" => sgd("adamuon", false, false, true, true),
        "cmars" => with("mars", true, false, false),
        "adamp" => sgd("adamp", false, false, true, true),
        "cadamp" => sgd("adamp", true, false, true, true),
        "sgdp" => sgd("sgdp", false, false, true, true),
        "csgdp" => sgd("sgdp", true, false, true, true),
        "novograd" | "fusednovograd" => plain("novograd"),
        "novogradw" => with("novograd", false, false, true),
        "novogradc" => with("novograd", false, true, true),
        "lars" => plain("lars"),
        "larc" => clipped("lars", true, false),
        "nlars" => clipped("lars", false, true),
        "nlarc" => clipped("lars", true, true),
        "adabelief" => plain("adabelief"),
        "radabelief" => plain("radabelief"),
        "adan" => plain("adan"),
        "adanw" => plain("adanw"),
        "cadan" => with("adan", true, false, false),
        "cadanw" => with("adanw", true, false, false),
        "adafactor" => plain("adafactor"),
        "cadafactor" => with("adafactor", true, false, false),
        "adafactorbv" => plain("adafactorbv"),
        "adafactorbvc" => with("adafactorbv", false, true, false),
        "cadafactorbv" => with("adafactorbv", true, false, false),
        "cadafactorbvc" => with("adafactorbv", true, true, false),
        // bitsandbytes' 32-bit AdEMAMix; kiln's rule keeps the same full-precision state.
        "bnbademamix" => plain("ademamix"),
        "adagrad" => plain("adagrad"),
        "adadelta" => plain("adadelta"),
        "lion" | "bnblion" => plain("lion"),
        "lionc" => with("lion", false, true, true),
        "clion" => with("lion", true, false, true),
        "clionc" => with("lion", true, true, true),
        "laprop" => plain("laprop"),
        "lapropc" => with("laprop", false, true, true),
        "claprop" => with("laprop", true, false, true),
        "adopt" => plain("adopt"),
        "adoptw" => with("adopt", false, false, true),
        "adoptc" => with("adopt", false, true, true),
        "cadopt" => with("adopt", true, false, false),
        "cadoptw" => with("adopt", true, false, true),
        "cadoptc" => with("adopt", true, true, true),
        "kron" => plain("kron"),
        "kronw" => with("kron", false, false, true),
        "kronc" => with("kron", false, true, true),
        _ => None,
    }
}

/// timm's registry names kiln does not build, with the reason.
fn refusal(name: &str) -> Option<String> {
    if name == "adahessian" {
        return Some(
            "adahessian is second-order: it needs Hessian-vector products (backward through \
             backward), which kiln's autograd does not record"
                .into(),
        );
    }
    if name.starts_with("bnb") && name.ends_with("8bit") {
        return Some(format!(
            "{name} keeps 8-bit quantized state through bitsandbytes' CUDA kernels, which kiln \
             does not have; use {} (full-precision state)",
            name.trim_start_matches("bnb").trim_end_matches("8bit")
        ));
    }
    None
}

/// timm's `create_optimizer_v2` over already-grouped parameters: the optimizer `args.opt`.
pub fn build(args: &OptimizerConfig, params: Vec<super::Param>) -> Result<Box<dyn Optimizer>> {
    let lower = args.opt.to_lowercase();
    let (lookahead, name) = match lower.split_once('_') {
        Some(("lookahead", rest)) => (true, rest.rsplit('_').next().unwrap_or(rest)),
        _ => (false, lower.rsplit('_').next().unwrap_or(&lower)),
    };
    if let Some(why) = refusal(name) {
        return Err(opt_error(why));
    }
    let Some((base, mut variant)) = resolve(name) else {
        return Err(opt_error(format!(
            "unknown optimizer '{}' (timm.optim.list_optimizers() names them)",
            args.opt
        )));
    };
    let mut kw = Kwargs {
        values: args.kwargs.iter().cloned().collect(),
    };
    if base == "adafactor" || base == "adafactorbv" {
        let cfg = adafactor(args, variant, base == "adafactorbv", &mut kw)?;
        kw.finish(name)?;
        return Ok(wrap(lookahead, Box::new(Adafactor::new(params, cfg))));
    }
    if base == "kron" {
        let cfg = kron(args, variant, &mut kw)?;
        kw.finish(name)?;
        return Ok(wrap(lookahead, Box::new(Kron::new(params, cfg))));
    }
    if base == "muon" || base == "adamuon" {
        let muon = muon(args, variant, base == "adamuon", params, &mut kw)?;
        kw.finish(name)?;
        return Ok(wrap(lookahead, Box::new(muon)));
    }
    let family = family(base, &mut variant, args, &mut kw)?
        .ok_or_else(|| opt_error(format!("'{name}' is not implemented in kiln yet")))?;
    kw.finish(name)?;
    let corrected_max_lr = match (variant.corrected, args.lr) {
        (false, _) => None,
        (true, Some(lr)) if lr > 0.0 => Some(lr),
        (true, _) => {
            return Err(opt_error(format!(
                "'{name}' (corrected weight decay) needs a positive --lr to take as max_lr"
            )))
        }
    };
    let parts = Parts {
        caution: variant.caution,
        corrected_max_lr,
        trust: variant.trust,
    };
    let inner = Box::new(RuleOptimizer::new(params, family, parts));
    Ok(wrap(lookahead, inner))
}

/// `inner`, inside Lookahead when asked.
fn wrap(lookahead: bool, inner: Box<dyn Optimizer>) -> Box<dyn Optimizer> {
    if lookahead {
        Box::new(Lookahead::new(inner))
    } else {
        inner
    }
}

/// Adafactor's settings: timm's defaults, `--opt-eps`, `--opt-kwargs`; the T5 form takes the
/// first beta and relative steps without an lr, the Big Vision form (`big_vision`) `--momentum`.
fn adafactor(
    a: &OptimizerConfig,
    v: Variant,
    big_vision: bool,
    kw: &mut Kwargs,
) -> Result<AdafactorCfg> {
    let caution = kw.bool("caution", v.caution)?;
    let corrected = kw.bool("corrected_weight_decay", v.corrected)?;
    let min_dim =
        |kw: &mut Kwargs, d| Ok::<_, Error>(kw.f64("min_dim_size_to_factor", d)? as usize);
    if big_vision {
        let lr = a.lr.unwrap_or(1.0);
        if corrected && lr <= 0.0 {
            return Err(opt_error(format!(
                "'{}' (corrected weight decay) needs a positive --lr to take as max_lr",
                a.opt
            )));
        }
        return Ok(AdafactorCfg {
            lr: Some(lr),
            eps: a.eps.unwrap_or(1e-30),
            eps_scale: 0.0,
            clip_threshold: kw.get("clipping_threshold")?,
            decay_rate: kw.f64("decay_rate", 0.8)?,
            beta1: Some(kw.f64("momentum", a.momentum)?),
            scale_parameter: false,
            min_dim_size_to_factor: min_dim(kw, 16.0)?,
            caution,
            big_vision: Some(BigVision {
                beta2_cap: kw.f64("beta2_cap", 0.999)?,
                decay_offset: kw.f64("decay_offset", 0.0)?,
                unscaled_wd: kw.bool("unscaled_wd", false)?,
                max_lr: corrected.then_some(lr),
            }),
        });
    }
    let beta1 = match a.betas.as_deref() {
        Some([b1, ..]) => Some(*b1),
        _ if caution => Some(0.9),
        _ => None,
    };
    Ok(AdafactorCfg {
        lr: a.lr,
        eps: a.eps.unwrap_or(1e-30),
        eps_scale: kw.f64("eps_scale", 1e-3)?,
        clip_threshold: Some(kw.f64("clip_threshold", 1.0)?),
        decay_rate: kw.f64("decay_rate", -0.8)?,
        beta1,
        scale_parameter: kw.bool("scale_parameter", true)?,
        min_dim_size_to_factor: min_dim(kw, 16.0)?,
        caution,
        big_vision: None,
    })
}

/// timm's `Muon` over `params`: its defaults (ε 1e-7, betas (0.9, 0.95), 5 quintic iterations),
/// `--momentum`, `--opt-eps`, `--opt-betas`, `--opt-kwargs`; AdamW (NAdamW with Nesterov)
/// fallback.
fn muon(
    a: &OptimizerConfig,
    v: Variant,
    adamuon: bool,
    params: Vec<super::Param>,
    kw: &mut Kwargs,
) -> Result<Muon> {
    let eps = a.eps.unwrap_or(1e-7);
    let betas = match a.betas.as_deref() {
        Some([b1, b2, ..]) => (*b1, *b2),
        _ => (0.9, 0.95),
    };
    let nesterov = kw.bool("nesterov", v.nesterov)?;
    let cfg = MuonCfg {
        momentum: kw.f64("momentum", a.momentum)?,
        nesterov,
        ns: NewtonSchulz {
            steps: kw.f64("ns_steps", 5.0)? as usize,
            eps,
            safety_factor: kw.f64("safety_factor", 1.0)?,
            scale_eps: kw.bool("scale_eps", false)?,
        },
        adamuon: adamuon.then_some((betas.1, eps)),
    };
    let fallback_lr_scale = kw.f64("fallback_lr_scale", 1.0)? as f32;
    let kind = match nesterov {
        true => AdamKind::NAdamW,
        false => AdamKind::Adam,
    };
    let family = Adam {
        kind,
        betas,
        eps,
        decay: Decay::Decoupled,
    };
    Ok(Muon::new(params, cfg, fallback_lr_scale, |rest| {
        RuleOptimizer::new(rest, Box::new(family), Parts::default())
    }))
}

/// An error on `--opt-kwargs`.
fn kwarg_error(msg: String) -> Error {
    Error::Flag {
        flag: "--opt-kwargs".into(),
        msg,
    }
}

/// A dtype kwarg of Kron's (`mu_dtype`, `precond_dtype`): kiln keeps both in float32.
fn float32_only(kw: &mut Kwargs, key: &str) -> Result<()> {
    match kw.text(key) {
        None => Ok(()),
        Some(v) if matches!(v.as_str(), "float32" | "torch.float32" | "float" | "fp32") => Ok(()),
        Some(v) => Err(kwarg_error(format!(
            "{key}={v}: kiln keeps Kron's momentum and factors in float32 (None or float32)"
        ))),
    }
}

/// A non-negative integer kwarg.
fn count(kw: &mut Kwargs, key: &str, default: usize) -> Result<usize> {
    let v = kw.f64(key, default as f64)?;
    if v < 0.0 || v.fract() != 0.0 {
        return Err(kwarg_error(format!(
            "{key}={v} is not a non-negative integer"
        )));
    }
    Ok(v as usize)
}

/// timm's `Kron` settings: its defaults, `--momentum`, `--seed` and `--opt-kwargs` by timm's
/// names; `kronw` and `kronc` set decoupled (and corrected) decay.
fn kron(a: &OptimizerConfig, v: Variant, kw: &mut Kwargs) -> Result<KronCfg> {
    let momentum = kw.f64("momentum", a.momentum)?;
    if !(0.0..1.0).contains(&momentum) {
        return Err(opt_error(format!(
            "kron needs 0 <= momentum < 1, got {momentum}"
        )));
    }
    if a.weight_decay < 0.0 {
        return Err(opt_error(format!(
            "kron needs weight decay >= 0, got {}",
            a.weight_decay
        )));
    }
    let key = "preconditioner_update_probability";
    let update_probability = match kw.text(key) {
        None => None,
        Some(t) => match t.parse::<f64>() {
            Ok(p) if p > 0.0 => Some(p),
            _ => {
                return Err(kwarg_error(format!(
                    "{key}={t} is not a probability above 0"
                )))
            }
        },
    };
    let memory_save = match kw.text("memory_save_mode").as_deref() {
        None => MemorySave::Off,
        Some("one_diag") => MemorySave::OneDiag,
        Some("smart_one_diag") => MemorySave::SmartOneDiag,
        Some("all_diag") => MemorySave::AllDiag,
        Some(m) => {
            return Err(kwarg_error(format!(
                "memory_save_mode={m}: timm's are None, one_diag, smart_one_diag, all_diag"
            )))
        }
    };
    let factors = FactorCfg {
        max_size_triangular: count(kw, "max_size_triangular", 2048)?,
        min_ndim_triangular: count(kw, "min_ndim_triangular", 2)?,
        memory_save,
        init_scale: kw.f64("precond_init_scale", 1.0)?,
    };
    float32_only(kw, "mu_dtype")?;
    float32_only(kw, "precond_dtype")?;
    let decoupled = kw.bool("decoupled_decay", v.decoupled)?;
    let corrected = kw.bool("corrected_weight_decay", v.corrected)?;
    let lr = a.lr.unwrap_or(0.001);
    if corrected && lr <= 0.0 {
        return Err(opt_error(format!(
            "'{}' (corrected weight decay) needs a positive --lr to take as max_lr",
            a.opt
        )));
    }
    let flatten = kw.bool("flatten", false)?;
    let (start, end) = (
        kw.f64("flatten_start_dim", 2.0)? as i64,
        kw.f64("flatten_end_dim", -1.0)? as i64,
    );
    Ok(KronCfg {
        momentum,
        update_probability,
        factors,
        momentum_into_precond_update: kw.bool("momentum_into_precond_update", true)?,
        precond_lr: kw.f64("precond_lr", 0.1)?,
        decoupled,
        corrected_max_lr: corrected.then_some(lr),
        flatten: flatten.then_some((start, end)),
        stochastic_weight_decay: kw.bool("stochastic_weight_decay", false)?,
        deterministic: kw.bool("deterministic", false)?,
        seed: a.seed,
    })
}

/// `create_optimizer_v2` over named parameters: timm's weight-decay groups (no decay on 1-d
/// parameters and biases), then the optimizer `args.opt`.
pub fn create_optimizer(
    args: &OptimizerConfig,
    params: Vec<NamedTensor>,
) -> Result<Box<dyn Optimizer>> {
    if args.layer_decay.is_some() {
        return Err(Error::Flag {
            flag: "--layer-decay".into(),
            msg: "needs the model's group_matcher: use create_optimizer_for_model".into(),
        });
    }
    build(args, param_groups(params, args.weight_decay, &[]))
}

/// `create_optimizer_v2` over a model: its `no_weight_decay` names are left undecayed and, with
/// `--layer-decay`, its `group_matcher` assigns each parameter's layer and lr scale.
pub fn create_optimizer_for_model(
    args: &OptimizerConfig,
    model: &dyn Model,
) -> Result<Box<dyn Optimizer>> {
    create_optimizer_for_model_and(args, model, Vec::new())
}

/// [`create_optimizer_for_model`] over the model's parameters followed by `extra` ones (a
/// distillation's feature projection), grouped by the same rules: `extra` names match none of
/// the model's layers, so layer decay puts them with its unmatched ones (the head), as timm's
/// `FeatureDistillationTrainableModule.group_matcher` puts its projection in the last layer.
pub fn create_optimizer_for_model_and(
    args: &OptimizerConfig,
    model: &dyn Model,
    extra: Vec<NamedTensor>,
) -> Result<Box<dyn Optimizer>> {
    let mut params = model.named_parameters();
    params.extend(extra);
    let no_wd = model.no_weight_decay();
    let grouped = match args.layer_decay {
        None => param_groups(params, args.weight_decay, &no_wd),
        Some(decay) => {
            let names: Vec<String> = params.iter().map(|p| p.name.clone()).collect();
            let matcher = model.group_matcher(false);
            let layers = layer_decay_groups(&names, &matcher, decay, args.layer_decay_min_scale)?;
            let no_opt = args.layer_decay_no_opt_scale;
            layer_decayed_params(params, args.weight_decay, &no_wd, &layers, no_opt)
        }
    };
    build(args, grouped)
}
