//! A family's one registration: the architectures a timm module (`resnet.py`, ...) registers,
//! declared in the family's own folder as a [`Variants`] and listed once in
//! [`super::FAMILIES`], which the registry iterates.

use super::ModelArgs;
use crate::model_kwargs::{with_kwargs, TakesKwargs};
use crate::{Model, PretrainedCfg, Result};

/// Builds one architecture's model from its pretrained config and the arguments.
pub(crate) type Build = Box<dyn Fn(PretrainedCfg, &ModelArgs) -> Result<Box<dyn Model>>>;

/// One family of timm's models, as the registry sees it.
pub(crate) trait Family: Sync {
    /// Every architecture it registers.
    fn names(&self) -> Vec<&'static str>;
    /// The default pretrained config and the builder of `arch`, if it registers `arch`.
    fn lookup(&self, arch: &str) -> Option<(PretrainedCfg, Build)>;
}

/// A family as timm writes one: a table of variants (name, the family's config, the default
/// pretrained config) and the model's constructor; the builder applies the model-specific
/// kwargs (`--model-kwargs`) to the variant's config first.
pub(crate) struct Variants<C, M> {
    /// The registered variants.
    pub variants: fn() -> Vec<(&'static str, C, PretrainedCfg)>,
    /// The model's constructor.
    pub new: fn(&C, &ModelArgs, PretrainedCfg) -> Result<M>,
}

impl<C, M> Family for Variants<C, M>
where
    C: TakesKwargs + Clone + 'static,
    M: Model + 'static,
{
    fn names(&self) -> Vec<&'static str> {
        (self.variants)().into_iter().map(|(n, _, _)| n).collect()
    }

    fn lookup(&self, arch: &str) -> Option<(PretrainedCfg, Build)> {
        let (name, c, cfg) = (self.variants)().into_iter().find(|(n, _, _)| *n == arch)?;
        let new = self.new;
        let build: Build = Box::new(move |p, a| {
            let c = with_kwargs(&c, &a.kwargs, name)?;
            Ok(Box::new(new(&c, a, p)?) as Box<dyn Model>)
        });
        Some((cfg, build))
    }
}
