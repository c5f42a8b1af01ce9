//! Model-specific constructor arguments: timm's `create_model(name, **kwargs)` and train.py's
//! `--model-kwargs key=value`, as Python literals, applied to a family's config before the model
//! is built. Each family lists the keys it takes; any other key is refused with that list. As in
//! timm, a key set to `None` is dropped (the model's default stands).

use crate::models::convnext::ConvNeXtCfg;
use crate::models::densenet::DenseNetCfg;
use crate::models::efficientnet::EfficientNetCfg;
use crate::models::eva::EvaCfg;
use crate::models::regnet::{stage_args, RegNetCfg};
use crate::models::resnet::{BlockKind, ResNetCfg, StemType};
use crate::models::swin::SwinCfg;
use crate::models::vit::VitCfg;
use crate::{Error, Result};
use std::collections::BTreeMap;

/// A value as Python writes it: `3`, `0.5`, `True`, `None`, `'deep'`, `(2, 2, 6, 2)`.
#[derive(Debug, Clone, PartialEq)]
pub enum KwargValue {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// `True` or `False`.
    Bool(bool),
    /// `None`.
    None,
    /// Anything else, quotes removed.
    Str(String),
    /// `(a, b, ...)` or `[a, b, ...]`.
    Tuple(Vec<KwargValue>),
}

impl KwargValue {
    /// Reads `text` as a Python literal; what is not a number, bool, None or tuple is a string.
    pub fn parse(text: &str) -> KwargValue {
        let t = text.trim();
        let inner = t
            .strip_prefix('(')
            .and_then(|s| s.strip_suffix(')'))
            .or_else(|| t.strip_prefix('[').and_then(|s| s.strip_suffix(']')));
        if let Some(inner) = inner {
            let items = inner.split(',').map(str::trim).filter(|s| !s.is_empty());
            return KwargValue::Tuple(items.map(KwargValue::parse).collect());
        }
        match t {
            "True" | "true" => return KwargValue::Bool(true),
            "False" | "false" => return KwargValue::Bool(false),
            "None" => return KwargValue::None,
            _ => {}
        }
        if let Ok(i) = t.parse::<i64>() {
            return KwargValue::Int(i);
        }
        match t.parse::<f64>() {
            Ok(f) if f.is_finite() => KwargValue::Float(f),
            _ => KwargValue::Str(t.trim_matches(|c| c == '\'' || c == '"').to_string()),
        }
    }
}

/// The kwargs given for one model, read by type; every read marks the key as taken.
pub(crate) struct Kwargs<'a> {
    values: &'a BTreeMap<String, KwargValue>,
}

/// What a bad value reads as.
type Bad = String;

impl Kwargs<'_> {
    fn get(&self, key: &str) -> Option<&KwargValue> {
        self.values.get(key)
    }

    fn bad(key: &str, v: &KwargValue, what: &str) -> Bad {
        format!("{key}={v:?} is not {what}")
    }

    /// A positive count.
    pub fn count(&self, key: &str) -> std::result::Result<Option<usize>, Bad> {
        self.get(key)
            .map(|v| match v {
                KwargValue::Int(i) if *i > 0 => Ok(*i as usize),
                _ => Err(Self::bad(key, v, "a positive integer")),
            })
            .transpose()
    }

    /// A finite positive number (an integer reads as one).
    pub fn positive(&self, key: &str) -> std::result::Result<Option<f64>, Bad> {
        self.get(key)
            .map(|v| match v {
                KwargValue::Int(i) if *i > 0 => Ok(*i as f64),
                KwargValue::Float(f) if *f > 0.0 => Ok(*f),
                _ => Err(Self::bad(key, v, "a positive number")),
            })
            .transpose()
    }

    /// A finite number ≥ 0 (an integer reads as one).
    pub fn non_negative(&self, key: &str) -> std::result::Result<Option<f64>, Bad> {
        self.get(key)
            .map(|v| match v {
                KwargValue::Int(i) if *i >= 0 => Ok(*i as f64),
                KwargValue::Float(f) if *f >= 0.0 => Ok(*f),
                _ => Err(Self::bad(key, v, "a number at least 0")),
            })
            .transpose()
    }

    /// True or False.
    pub fn flag(&self, key: &str) -> std::result::Result<Option<bool>, Bad> {
        self.get(key)
            .map(|v| match v {
                KwargValue::Bool(b) => Ok(*b),
                _ => Err(Self::bad(key, v, "True or False")),
            })
            .transpose()
    }

    /// Four positive counts, one per stage.
    pub fn stages(&self, key: &str) -> std::result::Result<Option<[usize; 4]>, Bad> {
        self.get(key)
            .map(|v| match v {
                KwargValue::Tuple(items) if items.len() == 4 => {
                    let mut out = [0; 4];
                    for (o, item) in out.iter_mut().zip(items) {
                        match item {
                            KwargValue::Int(i) if *i > 0 => *o = *i as usize,
                            _ => return Err(Self::bad(key, v, "4 positive integers")),
                        }
                    }
                    Ok(out)
                }
                _ => Err(Self::bad(key, v, "4 positive integers, one per stage")),
            })
            .transpose()
    }

    /// A string.
    pub fn text(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(KwargValue::Str(s)) => Some(s),
            _ => None,
        }
    }
}

/// A family's config that takes model-specific kwargs.
pub(crate) trait TakesKwargs {
    /// The keys it takes (timm's constructor argument names).
    const KEYS: &'static [&'static str];
    /// Applies the kwargs, all among [`Self::KEYS`]; Err names a bad value.
    fn apply(&mut self, kw: &Kwargs) -> std::result::Result<(), Bad>;
    /// About how many parameters the config builds (the widths and depths kwargs can grow).
    fn params(&self) -> f64;
}

/// `cfg` with the kwargs `raw` (key, Python literal) applied, or an error naming `model`, the
/// key at fault and the keys the family takes.
pub(crate) fn with_kwargs<C: TakesKwargs + Clone>(
    cfg: &C,
    raw: &[(String, String)],
    model: &str,
) -> Result<C> {
    let mut cfg = cfg.clone();
    if raw.is_empty() {
        return Ok(cfg);
    }
    let bad = |msg: String| Error::BadArgument {
        model: model.into(),
        msg,
    };
    // timm's create_model drops the kwargs that are None, so the model's defaults stand.
    let values: BTreeMap<String, KwargValue> = raw
        .iter()
        .map(|(k, v)| (k.clone(), KwargValue::parse(v)))
        .filter(|(_, v)| *v != KwargValue::None)
        .collect();
    if let Some(key) = values.keys().find(|k| !C::KEYS.contains(&k.as_str())) {
        return Err(bad(match C::KEYS {
            [] => format!("takes no model-specific kwargs in kiln ('{key}' given)"),
            keys => format!("does not take '{key}' (it takes {})", keys.join(", ")),
        }));
    }
    cfg.apply(&Kwargs { values: &values }).map_err(bad)?;
    check_fits(cfg.params()).map_err(bad)?;
    Ok(cfg)
}

/// Refuses a model whose float32 weights, gradients and two optimizer moments would exceed the
/// machine's memory: the allocation would otherwise abort the process.
fn check_fits(params: f64) -> std::result::Result<(), Bad> {
    let Some(total) = memory_bytes() else {
        return Ok(());
    };
    let need = 16.0 * params;
    match need <= total as f64 {
        true => Ok(()),
        false => Err(format!(
            "these kwargs make about {:.3e} parameters, whose training state ({:.1} GB in \
             float32) exceeds this machine's {:.1} GB of memory",
            params,
            need / 1e9,
            total as f64 / 1e9
        )),
    }
}

/// `MemTotal` of `/proc/meminfo` in bytes (None where there is none).
fn memory_bytes() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A transformer stack: `depth` blocks of attention (4·dim²) and an MLP (2·dim·hidden).
fn transformer(depth: usize, dim: usize, hidden: usize) -> f64 {
    let (d, h) = (dim as f64, hidden as f64);
    depth as f64 * (4.0 * d * d + 2.0 * d * h)
}

/// The shape ViT and EVA share, `[patch, dim, depth, heads, mlp_hidden]`, with `patch_size`,
/// `embed_dim`, `depth`, `num_heads` and `mlp_ratio` applied; the MLP keeps its ratio to the width
/// unless `mlp_ratio` is given (timm's `int(dim * mlp_ratio)`).
fn token_stack(kw: &Kwargs, shape: [usize; 5]) -> std::result::Result<[usize; 5], Bad> {
    let [patch, dim, depth, heads, mlp_hidden] = shape;
    let ratio = kw
        .positive("mlp_ratio")?
        .unwrap_or(mlp_hidden as f64 / dim as f64);
    let dim = kw.count("embed_dim")?.unwrap_or(dim);
    Ok([
        kw.count("patch_size")?.unwrap_or(patch),
        dim,
        kw.count("depth")?.unwrap_or(depth),
        kw.count("num_heads")?.unwrap_or(heads),
        (dim as f64 * ratio) as usize,
    ])
}

impl TakesKwargs for VitCfg {
    const KEYS: &'static [&'static str] = &[
        "patch_size",
        "embed_dim",
        "depth",
        "num_heads",
        "mlp_ratio",
        "qkv_bias",
        "class_token",
        "reg_tokens",
        "no_embed_class",
        "init_values",
    ];

    fn apply(&mut self, kw: &Kwargs) -> std::result::Result<(), Bad> {
        let shape = [
            self.patch,
            self.dim,
            self.depth,
            self.heads,
            self.mlp_hidden,
        ];
        [
            self.patch,
            self.dim,
            self.depth,
            self.heads,
            self.mlp_hidden,
        ] = token_stack(kw, shape)?;
        self.qkv_bias = kw.flag("qkv_bias")?.unwrap_or(self.qkv_bias);
        self.class_token = kw.flag("class_token")?.unwrap_or(self.class_token);
        if let Some(v) = kw.get("reg_tokens") {
            self.reg_tokens = match v {
                KwargValue::Int(i) if *i >= 0 => *i as usize,
                _ => return Err(Kwargs::bad("reg_tokens", v, "a count")),
            };
        }
        self.no_embed_class = kw.flag("no_embed_class")?.unwrap_or(self.no_embed_class);
        if let Some(v) = kw.get("reg_tokens").filter(|_| self.reg_tokens > 4096) {
            return Err(Kwargs::bad("reg_tokens", v, "at most 4096"));
        }
        self.init_values = kw.positive("init_values")?.or(self.init_values);
        if !self.dim.is_multiple_of(self.heads) {
            return Err(format!(
                "embed_dim {} is not a multiple of num_heads {}",
                self.dim, self.heads
            ));
        }
        Ok(())
    }

    fn params(&self) -> f64 {
        let patch = (3 * self.patch * self.patch * self.dim) as f64;
        patch + transformer(self.depth, self.dim, self.mlp_hidden)
    }
}

impl TakesKwargs for EvaCfg {
    const KEYS: &'static [&'static str] =
        &["patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio"];

    fn apply(&mut self, kw: &Kwargs) -> std::result::Result<(), Bad> {
        let shape = [
            self.patch,
            self.dim,
            self.depth,
            self.heads,
            self.mlp_hidden,
        ];
        [
            self.patch,
            self.dim,
            self.depth,
            self.heads,
            self.mlp_hidden,
        ] = token_stack(kw, shape)?;
        match self.dim.is_multiple_of(self.heads) {
            true => Ok(()),
            false => Err(format!(
                "embed_dim {} is not a multiple of num_heads {}",
                self.dim, self.heads
            )),
        }
    }

    fn params(&self) -> f64 {
        let patch = (3 * self.patch * self.patch * self.dim) as f64;
        // SwiGLU: two input projections and one output.
        patch + transformer(self.depth, self.dim, 3 * self.mlp_hidden / 2)
    }
}

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

impl TakesKwargs for ConvNeXtCfg {
    const KEYS: &'static [&'static str] = &["depths", "dims", "ls_init_value", "conv_mlp"];

    fn apply(&mut self, kw: &Kwargs) -> std::result::Result<(), Bad> {
        self.depths = kw.stages("depths")?.unwrap_or(self.depths);
        self.dims = kw.stages("dims")?.unwrap_or(self.dims);
        self.ls_init_value = kw.positive("ls_init_value")?.or(self.ls_init_value);
        self.conv_mlp = kw.flag("conv_mlp")?.unwrap_or(self.conv_mlp);
        Ok(())
    }

    fn params(&self) -> f64 {
        let stages = self.depths.iter().zip(self.dims);
        stages
            .map(|(&n, d)| {
                n as f64 * (8.0 * (d * d) as f64 + 49.0 * d as f64) + 4.0 * (d * d) as f64
            })
            .sum()
    }
}

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
        let expansion = match self.block {
            BlockKind::Basic => 1.0,
            _ => 4.0,
        };
        let stem = 27.0 * (self.stem_width * self.stem_width) as f64;
        let stages = self.layers.iter().enumerate().map(|(i, &n)| {
            let planes = (64usize << i) as f64;
            let width = planes * self.base_width as f64 / 64.0 * self.cardinality as f64;
            let out = planes * expansion;
            let conv3 = 9.0 * width * width / self.cardinality as f64;
            n as f64 * (conv3 + 2.0 * width * out.max(width))
        });
        stem + stages.sum::<f64>()
    }
}

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
        let block = |s: &crate::models::regnet::StageArgs| {
            let (w, b) = (s.width as f64, s.width as f64 * self.bottle_ratio);
            2.0 * w * b + 9.0 * b * s.group_size as f64
        };
        stages.iter().map(|s| s.depth as f64 * block(s)).sum()
    }
}

/// Families that take none of kiln's model-specific kwargs yet.
macro_rules! takes_none {
    ($($cfg:ty),*) => {$(
        impl TakesKwargs for $cfg {
            const KEYS: &'static [&'static str] = &[];
            fn apply(&mut self, _kw: &Kwargs) -> std::result::Result<(), Bad> {
                Ok(())
            }
            // No kwargs: the registered sizes.
            fn params(&self) -> f64 {
                0.0
            }
        }
    )*};
}

takes_none!(
    crate::models::byobnet::ByobCfg,
    EfficientNetCfg,
    crate::models::mobilenetv3::MobileNetV3Cfg,
    crate::models::vgg::VggCfg
);

#[cfg(test)]
mod tests {
    use super::KwargValue::{self, *};

    #[test]
    fn python_literals_parse_as_python_reads_them() {
        let cases: [(&str, KwargValue); 9] = [
            ("3", Int(3)),
            ("0.5", Float(0.5)),
            ("1e-5", Float(1e-5)),
            ("True", Bool(true)),
            ("None", None),
            ("'deep'", Str("deep".into())),
            ("deep", Str("deep".into())),
            ("(2, 2, 6, 2)", Tuple(vec![Int(2), Int(2), Int(6), Int(2)])),
            ("[1,2]", Tuple(vec![Int(1), Int(2)])),
        ];
        for (text, want) in cases {
            assert_eq!(KwargValue::parse(text), want, "{text}");
        }
    }
}
