//! The model registry: `create_model` by name, `list_models` with wildcards.

use crate::models::convnext::{self, ConvNeXt};
use crate::models::efficientnet::{self, EfficientNet};
use crate::models::mobilenetv3::{self, MobileNetV3};
use crate::models::resnet::{self, ResNet};
use crate::models::vit::{self, VisionTransformer};
use crate::pretrained::{load_pretrained, PretrainedSource};
use crate::{Error, Model, PretrainedCfg, Result};

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
    /// Stochastic-depth rate of the last block (linearly increasing from 0).
    pub drop_path_rate: f64,
    /// Zero-init the last BN of each residual block.
    pub zero_init_last: bool,
    /// Weights to start from, adapted as timm's `load_pretrained` does.
    pub pretrained: Option<PretrainedSource>,
}

impl Default for ModelArgs {
    fn default() -> Self {
        ModelArgs {
            num_classes: 1000,
            in_chans: 3,
            global_pool: None,
            img_size: None,
            drop_rate: 0.0,
            drop_path_rate: 0.0,
            zero_init_last: true,
            pretrained: None,
        }
    }
}

/// Builds a registered model (parameters from the global Philox stream: seed it first).
pub fn create_model(name: &str, args: &ModelArgs) -> Result<Box<dyn Model>> {
    let arch = name.split('.').next().unwrap_or(name);
    if args.in_chans == 0 {
        return Err(Error::BadArgument {
            model: name.into(),
            msg: "in_chans must be at least 1".into(),
        });
    }
    for (n, rc, cfg) in resnet::variants() {
        if n == arch {
            let cfg = tagged(cfg, name, args);
            return with_pretrained(Box::new(ResNet::new(&rc, args, cfg)?), args);
        }
    }
    for (n, cc, cfg) in convnext::variants() {
        if n == arch {
            let cfg = tagged(cfg, name, args);
            return with_pretrained(Box::new(ConvNeXt::new(&cc, args, cfg)?), args);
        }
    }
    for (n, ec, cfg) in efficientnet::variants() {
        if n == arch {
            let cfg = tagged(cfg, name, args);
            return with_pretrained(Box::new(EfficientNet::new(&ec, args, cfg)?), args);
        }
    }
    for (n, mc, cfg) in mobilenetv3::variants() {
        if n == arch {
            let cfg = tagged(cfg, name, args);
            return with_pretrained(Box::new(MobileNetV3::new(&mc, args, cfg)?), args);
        }
    }
    for (n, vc, cfg) in vit::variants() {
        if n == arch {
            let cfg = tagged(cfg, name, args);
            return with_pretrained(Box::new(VisionTransformer::new(&vc, args, cfg)?), args);
        }
    }
    Err(Error::UnknownModel {
        name: name.into(),
        suggestions: close_names(arch),
    })
}

/// `model` with `args.pretrained` loaded into it, if given.
fn with_pretrained(model: Box<dyn Model>, args: &ModelArgs) -> Result<Box<dyn Model>> {
    if let Some(source) = &args.pretrained {
        load_pretrained(model.as_ref(), source)?;
    }
    Ok(model)
}

/// The default config renamed to `name`'s `.tag` if it has one, with the head's classes.
fn tagged(mut cfg: PretrainedCfg, name: &str, args: &ModelArgs) -> PretrainedCfg {
    if let Some((arch, tag)) = name.split_once('.') {
        cfg.name = format!("{arch}.{tag}");
    }
    cfg.num_classes = args.num_classes;
    cfg
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
    names.extend(convnext::variants().into_iter().map(|(n, _, _)| n));
    names.extend(efficientnet::variants().into_iter().map(|(n, _, _)| n));
    names.extend(mobilenetv3::variants().into_iter().map(|(n, _, _)| n));
    names.extend(vit::variants().into_iter().map(|(n, _, _)| n));
    names
}

/// Whether `name` matches `pattern` with `*` (any run) and `?` (any one char).
fn wildcard(pattern: &str, name: &str) -> bool {
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
fn close_names(name: &str) -> Vec<String> {
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
