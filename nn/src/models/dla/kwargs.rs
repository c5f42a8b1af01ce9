//! DLA takes no model-specific kwargs in kiln.

use super::DlaCfg;

crate::model_kwargs::takes_none!(DlaCfg);
