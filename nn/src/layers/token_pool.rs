//! timm's `global_pool` of the token models (vision_transformer.py's `_pool`): the class token,
//! the mean of the tokens after the prefix (class, register, distillation tokens), or none.

use crate::{Error, Result};
use kiln_engine::Tensor;

/// How a token head reduces `[B, N, C]` tokens to `[B, C]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPool {
    /// The class token (`token`).
    Token,
    /// The mean of the tokens after the prefix tokens (`avg`).
    Avg,
    /// No reduction (`''`, num_classes 0).
    None,
    /// Attention pooling (`map`): the head's `AttentionPoolLatent` reads the tokens after the
    /// prefix, which [`TokenPool::pool`] returns.
    Map,
}

impl TokenPool {
    /// timm's name of the pool.
    fn name(self) -> &'static str {
        match self {
            TokenPool::Token => "token",
            TokenPool::Avg => "avg",
            TokenPool::None => "",
            TokenPool::Map => "map",
        }
    }

    /// The pool named `p`, if it is '' or one of `accepted`; `family` ("a ViT") and `model` name
    /// the model in the error, which lists `accepted` in their order.
    pub fn parse(p: &str, accepted: &[TokenPool], family: &str, model: &str) -> Result<TokenPool> {
        if p.is_empty() {
            return Ok(TokenPool::None);
        }
        if let Some(&pool) = accepted.iter().find(|t| t.name() == p) {
            return Ok(pool);
        }
        let names: Vec<String> = accepted.iter().map(|t| format!("'{}'", t.name())).collect();
        Err(Error::BadArgument {
            model: model.into(),
            msg: format!(
                "global_pool '{p}': {family} pools by {} or '' (none)",
                names.join(", ")
            ),
        })
    }

    /// `x` ([B, N, C]) reduced: its first token, or the mean of the tokens after `prefix`; for
    /// `map` the tokens after `prefix`, which the attention pool reduces.
    pub fn pool(self, x: &Tensor, prefix: usize) -> Result<Tensor> {
        let after_prefix = || x.narrow(1, prefix, x.shape()[1] - prefix);
        match self {
            TokenPool::Token => Ok(x.narrow(1, 0, 1)?.squeeze(1)?),
            TokenPool::Avg => Ok(after_prefix()?.mean(1, false)?),
            TokenPool::None => Ok(x.clone()),
            TokenPool::Map => Ok(after_prefix()?),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_lists_the_accepted_pools() {
        let accepted = [TokenPool::Avg, TokenPool::Token];
        assert_eq!(
            TokenPool::parse("token", &accepted, "an EVA", "m").unwrap(),
            TokenPool::Token
        );
        assert_eq!(
            TokenPool::parse("", &accepted, "an EVA", "m").unwrap(),
            TokenPool::None
        );
        let err = TokenPool::parse("max", &accepted, "an EVA", "m").unwrap_err();
        let msg = "global_pool 'max': an EVA pools by 'avg', 'token' or '' (none)";
        assert!(err.to_string().contains(msg), "{err}");
    }

    #[test]
    fn the_mean_leaves_the_prefix_out() {
        let x = Tensor::from_vec((0..12).map(|v| v as f32).collect(), &[1, 3, 4]).unwrap();
        let avg = TokenPool::Avg.pool(&x, 1).unwrap().to_vec::<f32>().unwrap();
        assert_eq!(avg, [6.0, 7.0, 8.0, 9.0]);
        let token = TokenPool::Token
            .pool(&x, 1)
            .unwrap()
            .to_vec::<f32>()
            .unwrap();
        assert_eq!(token, [0.0, 1.0, 2.0, 3.0]);
    }
}
