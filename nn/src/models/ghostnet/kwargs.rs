//! GhostNet takes no model-specific kwargs in kiln: timm's registered functions fix `width` and
//! `version`.

use super::GhostNetCfg;

crate::model_kwargs::takes_none!(GhostNetCfg);
