//! timm's head of the token models (vision_transformer.py's `forward_head`, deit.py's distilled
//! one, eva.py's, swin_transformer.py's): the final norm before the pooling or `fc_norm` after it,
//! the token pool (with `map`, an attention pool), head dropout and the classifier (`head`, and `head_dist` of a distilled DeiT).

use super::head::classify;
use super::{AttentionPoolLatent, Head, Linear, MlpAct, NewClassifier, TokenNorm, TokenPool};
use crate::{Children, Error, Module, Result, Visitor, VisitorMut};
use kiln_engine::Tensor;

/// A family's head conventions: the pools it takes, its names, its features' layout and init.
#[derive(Debug, Clone, Copy)]
pub struct TokenFamily {
    /// The family where an error has no model name (`swin`).
    pub kind: &'static str,
    /// The family with its article, in messages (`a Swin`).
    pub noun: &'static str,
    /// The pools besides '' (none), in the order the messages list them.
    pub pools: &'static [TokenPool],
    /// The features are an NHWC map [B, H, W, C] (Swin), pooled as its H·W tokens.
    pub nhwc: bool,
    /// The classifier's state-dict name (`head`, `head.fc`).
    pub fc_name: &'static str,
    /// How the family builds a classifier (its init), at construction and on reset.
    pub new_classifier: NewClassifier,
    /// The final norm's eps.
    pub eps: f64,
    /// The final norm is an RmsNorm (AIMv2's), not a LayerNorm.
    pub rms: bool,
}

/// What one model's head is built from (timm's `VisionTransformer` head arguments).
#[derive(Debug, Clone, Copy)]
pub struct TokenHeadCfg<'a> {
    /// Token width.
    pub dim: usize,
    /// Classes of the classifier; 0 builds none.
    pub num_classes: usize,
    /// timm's `global_pool`.
    pub global_pool: &'a str,
    /// timm's `fc_norm`: `None` puts the final norm after the pooling for `avg` alone.
    pub fc_norm: Option<bool>,
    /// Class, register and distillation tokens ahead of the others (timm's
    /// `num_prefix_tokens`).
    pub prefix_tokens: usize,
    /// The first token is a class token.
    pub class_token: bool,
    /// A distillation token second and its classifier (timm's `VisionTransformerDistilled`).
    pub distilled: bool,
    /// Dropout before the classifier (timm's `head_drop`).
    pub drop_rate: f64,
    /// The attention pool a `map` head builds; `None` where the model takes no `map`.
    pub map: Option<MapCfg>,
    /// A final norm at all (timm's `final_norm`; RADIO's has none).
    pub final_norm: bool,
}

/// What a `map` head's attention pool is built from (timm's ViT passes its own).
#[derive(Debug, Clone, Copy)]
pub struct MapCfg {
    /// Attention heads.
    pub heads: usize,
    /// The MLP's hidden width.
    pub mlp_hidden: usize,
    /// The MLP's activation.
    pub act: MlpAct,
    /// The pool reads the prefix tokens too (EVA's), not only the patches (ViT's
    /// `pool_include_prefix=False`).
    pub include_prefix: bool,
}

/// The final norm (`norm` before the pooling or `fc_norm` after it), the pool, dropout, the
/// classifier and a distilled DeiT's second one.
#[derive(Debug, Clone)]
pub struct TokenHead {
    /// The final norm before the pooling (one of `norm` and `fc_norm` is built).
    norm: Option<TokenNorm>,
    /// The attention pool of a `map` head (`attn_pool`).
    attn_pool: Option<AttentionPoolLatent>,
    /// The final norm after the pooling.
    fc_norm: Option<TokenNorm>,
    /// The classifier.
    pub fc: Option<Linear>,
    /// The distillation token's classifier (`head_dist`; none without classes).
    fc_dist: Option<Linear>,
    pool: TokenPool,
    /// Token width (the features' without a final norm).
    dim: usize,
    prefix_tokens: usize,
    class_token: bool,
    distilled: bool,
    drop_rate: f64,
    /// The attention pool reads the prefix tokens too.
    include_prefix: bool,
    family: TokenFamily,
    /// Dropout is active.
    training: bool,
}

impl TokenHead {
    /// The head of `family` for `cfg` (timm's head with `reset_classifier`'s checks); `model`
    /// names the model in errors.
    pub fn new(family: TokenFamily, cfg: &TokenHeadCfg, model: &str) -> Result<TokenHead> {
        let mut head = TokenHead {
            norm: None,
            attn_pool: None,
            fc_norm: None,
            fc: None,
            fc_dist: None,
            pool: TokenPool::None,
            dim: cfg.dim,
            prefix_tokens: cfg.prefix_tokens,
            class_token: cfg.class_token,
            distilled: cfg.distilled,
            drop_rate: cfg.drop_rate,
            include_prefix: cfg.map.is_some_and(|m| m.include_prefix),
            family,
            training: true,
        };
        head.pool = head.checked_pool(cfg.global_pool, model)?;
        let fc_norm = cfg.fc_norm.unwrap_or(head.pool == TokenPool::Avg);
        let norm = || TokenNorm::new(cfg.dim, family.eps, family.rms);
        head.norm = (!fc_norm && cfg.final_norm).then(norm).transpose()?;
        if head.pool == TokenPool::Map {
            let Some(m) = cfg.map else {
                return Err(Error::BadArgument {
                    model: model.into(),
                    msg: format!("global_pool 'map': {} has no attention pool", family.noun),
                });
            };
            let pool = AttentionPoolLatent::new(cfg.dim, m.heads, m.mlp_hidden, m.act, family.eps);
            head.attn_pool = Some(pool?);
        }
        head.fc_norm = (fc_norm && cfg.final_norm).then(norm).transpose()?;
        head.reset(cfg.num_classes, None, model)?;
        Ok(head)
    }

    /// The final norm where it comes before the pooling (the end of timm's `forward_features`).
    pub fn forward_norm(&self, x: &Tensor) -> Result<Tensor> {
        match &self.norm {
            Some(norm) => norm.forward(x),
            None => Ok(x.clone()),
        }
    }

    /// Class, register and distillation tokens ahead of the others.
    pub fn num_prefix_tokens(&self) -> usize {
        self.prefix_tokens
    }

    /// The head reads the class token alone (pools by `token`, not distilled).
    pub fn reads_class_token_only(&self) -> bool {
        self.pool == TokenPool::Token && !self.distilled
    }

    /// A distilled head with its two classifiers.
    pub fn distills(&self) -> bool {
        self.fc_dist.is_some()
    }

    /// The class and distillation tokens of final tokens `x`, each through its classifier
    /// unless `pre_logits` or without classes (timm's `VisionTransformerDistilled`).
    pub fn distilled_logits(&self, x: &Tensor, pre_logits: bool) -> Result<(Tensor, Tensor)> {
        let cls = x.narrow(1, 0, 1)?.squeeze(1)?;
        let dist = x.narrow(1, 1, 1)?.squeeze(1)?;
        match (&self.fc, &self.fc_dist, pre_logits) {
            (Some(h), Some(hd), false) => Ok((h.forward(&cls)?, hd.forward(&dist)?)),
            _ => Ok((cls, dist)),
        }
    }

    /// The pool named `p` where this head can take it.
    fn checked_pool(&self, p: &str, model: &str) -> Result<TokenPool> {
        let pool = TokenPool::parse(p, self.family.pools, self.family.noun, model)?;
        let msg = match pool {
            // timm asserts `token` for VisionTransformerDistilled
            other if self.distilled && other != TokenPool::Token => {
                "a distilled DeiT pools by 'token' only (its class and distillation tokens)"
            }
            // timm asserts `class_token or global_pool != 'token'`
            TokenPool::Token if !self.class_token => {
                "global_pool 'token' needs a class token: this ViT has none (pool by 'avg')"
            }
            _ => return Ok(pool),
        };
        Err(Error::BadArgument {
            model: model.into(),
            msg: msg.into(),
        })
    }

    /// `x` pooled: an NHWC map first as its H·W tokens.
    fn pool_features(&self, x: &Tensor) -> Result<Tensor> {
        if let (TokenPool::Map, Some(attn_pool)) = (self.pool, &self.attn_pool) {
            let prefix = if self.include_prefix {
                0
            } else {
                self.prefix_tokens
            };
            return attn_pool.forward(&self.pool.pool(x, prefix)?);
        }
        if !self.family.nhwc || self.pool == TokenPool::None {
            return self.pool.pool(x, self.prefix_tokens);
        }
        let &[b, h, w, c] = x.shape() else {
            return Err(Error::BadArgument {
                model: self.family.kind.into(),
                msg: format!("the head takes [B, H, W, C] features, got {:?}", x.shape()),
            });
        };
        self.pool
            .pool(&x.reshape(&[b, h * w, c])?, self.prefix_tokens)
    }

    /// A classifier for `num_classes` over the features, none for 0.
    fn new_fc(&self, num_classes: usize) -> Result<Option<Linear>> {
        (num_classes > 0)
            .then(|| (self.family.new_classifier)(self.num_features(), num_classes))
            .transpose()
    }
}

/// Pool, `fc_norm`, dropout, classifier; a distilled head averages its two classifiers.
impl Head for TokenHead {
    fn classifier(&self) -> Option<&Linear> {
        self.fc.as_ref()
    }

    /// A distilled head takes no dropout and returns the two tokens' mean with `pre_logits`.
    fn forward_head(&self, x: &Tensor, pre_logits: bool) -> Result<Tensor> {
        if self.distilled {
            let (cls, dist) = self.distilled_logits(x, pre_logits)?;
            return Ok(cls.add(&dist)?.mul_scalar(0.5)?);
        }
        let pooled = self.pool_features(x)?;
        let pooled = match &self.fc_norm {
            Some(norm) => norm.forward(&pooled)?,
            None => pooled,
        };
        classify(
            &pooled,
            self.drop_rate,
            self.training,
            self.fc.as_ref(),
            pre_logits,
        )
    }

    /// The final norm stays where the head was built with it (`norm` or `fc_norm`), whatever
    /// pooling follows; no pooling only without classes.
    fn reset(&mut self, num_classes: usize, global_pool: Option<&str>, model: &str) -> Result<()> {
        let pool = match global_pool {
            Some(p) => self.checked_pool(p, model)?,
            None => self.pool,
        };
        let msg = match pool {
            TokenPool::None if num_classes > 0 => "global_pool '' needs num_classes 0",
            // timm: "Cannot currently add attention pooling in reset_classifier()"
            TokenPool::Map if self.attn_pool.is_none() => {
                "global_pool 'map' needs the attention pool the model was built with"
            }
            _ => "",
        };
        if !msg.is_empty() {
            return Err(Error::BadArgument {
                model: model.into(),
                msg: msg.into(),
            });
        }
        // timm drops the attention pool for another pooling
        if pool != TokenPool::Map {
            self.attn_pool = None;
        }
        self.pool = pool;
        self.fc = self.new_fc(num_classes)?;
        if self.distilled {
            self.fc_dist = self.new_fc(num_classes)?;
        }
        Ok(())
    }

    /// The final norm's width (the tokens' without one).
    fn num_features(&self) -> usize {
        let norm = self.norm.iter().chain(&self.fc_norm);
        norm.map(TokenNorm::width).next().unwrap_or(self.dim)
    }
}

/// `norm`, `fc_norm`, the classifier under the family's name, `head_dist`.
impl Children for TokenHead {
    fn visit(&self, v: &mut dyn Visitor) {
        if let Some(n) = &self.norm {
            v.child("norm", n);
        }
        if let Some(p) = &self.attn_pool {
            v.child("attn_pool", p);
        }
        if let Some(n) = &self.fc_norm {
            v.child("fc_norm", n);
        }
        if let Some(fc) = &self.fc {
            v.child(self.family.fc_name, fc);
        }
        if let Some(fc) = &self.fc_dist {
            v.child("head_dist", fc);
        }
        v.training(self.training);
    }

    fn visit_mut(&mut self, v: &mut dyn VisitorMut) -> Result<()> {
        if let Some(n) = &mut self.norm {
            v.child("norm", n)?;
        }
        if let Some(p) = &mut self.attn_pool {
            v.child("attn_pool", p)?;
        }
        if let Some(n) = &mut self.fc_norm {
            v.child("fc_norm", n)?;
        }
        if let Some(fc) = &mut self.fc {
            v.child(self.family.fc_name, fc)?;
        }
        if let Some(fc) = &mut self.fc_dist {
            v.child("head_dist", fc)?;
        }
        v.training(&mut self.training);
        Ok(())
    }
}

impl Module for TokenHead {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_head(x, false)
    }
}
