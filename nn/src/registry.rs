//! The model registry: `create_model` by name, `list_models` with wildcards.

use crate::model_kwargs::{with_kwargs, TakesKwargs};
use crate::models::byobnet::{self, ByobNet};
use crate::models::convnext::{self, ConvNeXt};
use crate::models::densenet::{self, DenseNet};
use crate::models::efficientnet::{self, EfficientNet};
use crate::models::eva::{self, Eva};
use crate::models::mobilenetv3::{self, MobileNetV3};
use crate::models::regnet::{self, RegNet};
use crate::models::resnest;
use crate::models::resnet::{self, ResNet};
use crate::models::swin::{self, SwinTransformer};
use crate::models::vgg::{self, Vgg};
use crate::models::vit::{self, VisionTransformer};
use crate::pretrained::PretrainedSource;
use crate::{Model, ModelSpec, PretrainedCfg, Result};

/// Arguments of `create_model` (timm's names and defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelArgs {
    /// Classifier classes; 0 removes the head.
    pub num_classes: usize,
    /// Input channels.
    pub in_chans: usize,
    /// Global pool type: avg, max, avgmax, catavgmax, token (ViT), or '' (no pooling, needs
    /// num_classes 0); `None` keeps the model's default (avg; token for ViT).
    pub global_pool: Option<String>,
    /// Input size, for models whose parameters depend on it (ViT's position embedding); `None`
    /// keeps the model's default (224).
    pub img_size: Option<usize>,
    /// Dropout before the classifier.
    pub drop_rate: f64,
    /// Stochastic-depth rate of the last block (linearly increasing from 0); `None` keeps the
    /// model's default, as timm's `create_model` does for an unset `--drop-path` (0.1 for Swin,
    /// 0 for the others).
    pub drop_path_rate: Option<f64>,
    /// Zero-init the last norm (BN or GroupNorm) of each residual block.
    pub zero_init_last: bool,
    /// Weights to start from, adapted as timm's `load_pretrained` does (timm's `pretrained=True`
    /// is [`ModelSpec::pretrained_source`]).
    pub pretrained: Option<PretrainedSource>,
    /// Model-specific constructor arguments (timm's `**kwargs`: `depth`, `window_size`, ...) as
    /// key and Python literal; each family takes its own ([`crate::KwargValue`]).
    pub kwargs: Vec<(String, String)>,
}

impl Default for ModelArgs {
    fn default() -> Self {
        ModelArgs {
            num_classes: 1000,
            in_chans: 3,
            global_pool: None,
            img_size: None,
            drop_rate: 0.0,
            drop_path_rate: None,
            zero_init_last: true,
            pretrained: None,
            kwargs: Vec::new(),
        }
    }
}

impl ModelArgs {
    /// The stochastic-depth rate asked for, else the model's `default`.
    pub fn drop_path_or(&self, default: f64) -> f64 {
        self.drop_path_rate.unwrap_or(default)
    }
}

/// Builds a registered model (parameters from the global Philox stream: seed it first). `name`
/// is an architecture, `arch.tag` (a bare architecture takes timm's default tag), or a hub repo
/// or folder (`hf-hub:org/name`, `local-dir:/path`; see [`ModelSpec`]); the model's pretrained
/// config is the tag's, with `args.num_classes`.
pub fn create_model(name: &str, args: &ModelArgs) -> Result<Box<dyn Model>> {
    ModelSpec::resolve(name)?.create(args)
}

/// Builds one architecture's model from its pretrained config and the arguments.
pub(crate) type Build = Box<dyn Fn(PretrainedCfg, &ModelArgs) -> Result<Box<dyn Model>>>;

/// The default pretrained config and the builder of registered architecture `arch`.
pub(crate) fn lookup(arch: &str) -> Option<(PretrainedCfg, Build)> {
    family(arch, resnet::variants(), ResNet::new)
        .or_else(|| family(arch, byobnet::variants(), ByobNet::new))
        .or_else(|| family(arch, convnext::variants(), ConvNeXt::new))
        .or_else(|| family(arch, densenet::variants(), DenseNet::new))
        .or_else(|| family(arch, efficientnet::variants(), EfficientNet::new))
        .or_else(|| family(arch, mobilenetv3::variants(), MobileNetV3::new))
        .or_else(|| family(arch, regnet::variants(), RegNet::new))
        .or_else(|| family(arch, resnest::variants(), ResNet::new))
        .or_else(|| family(arch, swin::variants(), SwinTransformer::new))
        .or_else(|| family(arch, vgg::variants(), Vgg::new))
        .or_else(|| family(arch, vit::variants(), VisionTransformer::new))
        .or_else(|| family(arch, eva::variants(), Eva::new))
}

/// [`lookup`] within one family's variants; the builder applies the model-specific kwargs.
fn family<C: TakesKwargs + Clone + 'static, M: Model + 'static>(
    arch: &str,
    variants: Vec<(&'static str, C, PretrainedCfg)>,
    new: fn(&C, &ModelArgs, PretrainedCfg) -> Result<M>,
) -> Option<(PretrainedCfg, Build)> {
    let (name, c, cfg) = variants.into_iter().find(|(n, _, _)| *n == arch)?;
    let build: Build = Box::new(move |p, a| {
        let c = with_kwargs(&c, &a.kwargs, name)?;
        Ok(Box::new(new(&c, a, p)?) as Box<dyn Model>)
    });
    Some((cfg, build))
}

/// Registered model names matching a shell-style pattern (`*` and `?`), sorted.
pub fn list_models(pattern: &str) -> Vec<String> {
    let mut names: Vec<String> = all_names()
        .into_iter()
        .filter(|n| wildcard(pattern, n))
        .map(String::from)
        .collect();
    names.sort();
    names
}

fn all_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = resnet::variants().into_iter().map(|(n, _, _)| n).collect();
    names.extend(byobnet::variants().into_iter().map(|(n, _, _)| n));
    names.extend(convnext::variants().into_iter().map(|(n, _, _)| n));
    names.extend(densenet::variants().into_iter().map(|(n, _, _)| n));
    names.extend(efficientnet::variants().into_iter().map(|(n, _, _)| n));
    names.extend(mobilenetv3::variants().into_iter().map(|(n, _, _)| n));
    names.extend(regnet::variants().into_iter().map(|(n, _, _)| n));
    names.extend(resnest::variants().into_iter().map(|(n, _, _)| n));
    names.extend(swin::variants().into_iter().map(|(n, _, _)| n));
    names.extend(vgg::variants().into_iter().map(|(n, _, _)| n));
    names.extend(vit::variants().into_iter().map(|(n, _, _)| n));
    names.extend(eva::variants().into_iter().map(|(n, _, _)| n));
    names
}

/// Whether `name` matches `pattern` with `*` (any run) and `?` (any one char).
pub(crate) fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Up to three registered names within edit distance 3 of `name`, closest first.
pub(crate) fn close_names(name: &str) -> Vec<String> {
    let mut scored: Vec<(usize, &str)> = all_names()
        .into_iter()
        .map(|n| (edit_distance(name, n), n))
        .filter(|(d, _)| *d <= 3)
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(3)
        .map(|(_, n)| n.to_string())
        .collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_fnmatch() {
        assert!(wildcard("resnet*", "resnet50d"));
        assert!(wildcard("*50*", "resnet50d"));
        assert!(wildcard("resnet?8", "resnet18"));
        assert!(!wildcard("resnet1?", "resnet152"));
        assert_eq!(list_models("resnet1*d"), vec!["resnet101d", "resnet18d"]);
    }

    #[test]
    fn unknown_model_suggests_close_names() {
        let err = create_model("resnet5O", &ModelArgs::default())
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("unknown model 'resnet5O' (did you mean resnet50, resnet152, resnet18?)")
        );
    }
}
