//! kiln's modules, layers and timm's models, with timm's parameter names so timm's safetensors
//! weights load unchanged.
#![warn(missing_docs)]

mod error;
pub mod init;
pub mod layers;
pub mod models;
mod module;
mod overrides;
mod pretrained;
mod registry;
mod state_dict;

pub use error::{Error, Result};
pub use models::{FeatureInfo, GroupRule, Model, PretrainedCfg};
pub use module::{Kind, Module, NamedTensor};
pub use overrides::{init_head, set_batch_norm};
pub use pretrained::{adapt_input_conv, load_pretrained, PretrainedReport, PretrainedSource};
pub use registry::{create_model, list_models, ModelArgs};
pub use state_dict::{
    load_safetensors, load_safetensors_with_metadata, load_state_dict, save_safetensors,
    state_dict, write_durably, LoadReport,
};
