//! VoVNet takes no model-specific kwargs in kiln (timm's overlay of `model_cfgs` keys is not
//! built).

use super::VovNetCfg;

crate::model_kwargs::takes_none!(VovNetCfg);
