//! Model-specific constructor arguments: timm's `create_model(name, **kwargs)` and train.py's
//! `--model-kwargs key=value`, as Python literals, applied to a family's config before the model
//! is built. Each family lists the keys it takes; any other key is refused with that list. As in
//! timm, a key set to `None` is dropped (the model's default stands).

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
pub(crate) type Bad = String;

impl Kwargs<'_> {
    /// The value given for `key`, if any.
    pub fn get(&self, key: &str) -> Option<&KwargValue> {
        self.values.get(key)
    }

    /// The error of a value `v` of `key` that is not `what`.
    pub fn bad(key: &str, v: &KwargValue, what: &str) -> Bad {
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
pub(crate) fn transformer(depth: usize, dim: usize, hidden: usize) -> f64 {
    let (d, h) = (dim as f64, hidden as f64);
    depth as f64 * (4.0 * d * d + 2.0 * d * h)
}

/// The kwargs ViT and EVA share (timm's names), for a config's `KEYS`, with the family's own
/// after them: `token_keys!["reg_tokens"]`.
macro_rules! token_keys {
    [$($own:literal),* $(,)?] => {
        &[
            "patch_size",
            "embed_dim",
            "depth",
            "num_heads",
            "mlp_ratio",
            "qkv_bias",
            "class_token",
            "init_values",
            $($own),*
        ]
    };
}
pub(crate) use token_keys;

/// Applies the kwargs of [`token_keys`] to a config with ViT's field names (`patch`, `dim`,
/// `depth`, `heads`, `mlp_hidden`, `qkv_bias`, `class_token`, `init_values`), returning the
/// enclosing `apply` at a bad value, and refuses a width its heads do not divide.
macro_rules! apply_token_kwargs {
    ($cfg:expr, $kw:expr) => {{
        let (c, kw) = (&mut *$cfg, $kw);
        let shape = [
            &mut c.patch,
            &mut c.dim,
            &mut c.depth,
            &mut c.heads,
            &mut c.mlp_hidden,
        ];
        $crate::model_kwargs::token_stack(kw, shape)?;
        c.qkv_bias = kw.flag("qkv_bias")?.unwrap_or(c.qkv_bias);
        c.class_token = kw.flag("class_token")?.unwrap_or(c.class_token);
        c.init_values = kw.positive("init_values")?.or(c.init_values);
        $crate::model_kwargs::heads_divide(c.dim, c.heads)
    }};
}
pub(crate) use apply_token_kwargs;

/// The shape ViT and EVA share, `[patch, dim, depth, heads, mlp_hidden]`, with `patch_size`,
/// `embed_dim`, `depth`, `num_heads` and `mlp_ratio` applied in place; the MLP keeps its ratio to
/// the width unless `mlp_ratio` is given (timm's `int(dim * mlp_ratio)`).
pub(crate) fn token_stack(kw: &Kwargs, shape: [&mut usize; 5]) -> std::result::Result<(), Bad> {
    let [patch, dim, depth, heads, mlp_hidden] = shape;
    let (ratio, width) = (kw.positive("mlp_ratio")?, kw.count("embed_dim")?);
    // the hidden width is recomputed only from a new ratio or width (the ratio's round trip
    // through f64 may lose one feature: 2048 / 768 · 768 < 2048)
    if ratio.is_some() || width.is_some() {
        let ratio = ratio.unwrap_or(*mlp_hidden as f64 / *dim as f64);
        *mlp_hidden = (width.unwrap_or(*dim) as f64 * ratio) as usize;
    }
    *dim = width.unwrap_or(*dim);
    *patch = kw.count("patch_size")?.unwrap_or(*patch);
    *depth = kw.count("depth")?.unwrap_or(*depth);
    *heads = kw.count("num_heads")?.unwrap_or(*heads);
    Ok(())
}

/// Refuses a token width `dim` that `heads` attention heads do not divide.
pub(crate) fn heads_divide(dim: usize, heads: usize) -> std::result::Result<(), Bad> {
    match dim.is_multiple_of(heads) {
        true => Ok(()),
        false => Err(format!(
            "embed_dim {dim} is not a multiple of num_heads {heads}"
        )),
    }
}

/// Families that take none of kiln's model-specific kwargs yet.
macro_rules! takes_none {
    ($($cfg:ty),*) => {$(
        impl $crate::model_kwargs::TakesKwargs for $cfg {
            const KEYS: &'static [&'static str] = &[];
            fn apply(
                &mut self,
                _kw: &$crate::model_kwargs::Kwargs,
            ) -> std::result::Result<(), $crate::model_kwargs::Bad> {
                Ok(())
            }
            // No kwargs: the registered sizes.
            fn params(&self) -> f64 {
                0.0
            }
        }
    )*};
}
pub(crate) use takes_none;

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
