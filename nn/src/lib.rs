//! kiln's modules, layers and timm's models, with timm's parameter names so timm's weights
//! (safetensors, or the files `torch.save` writes) load unchanged.
#![warn(missing_docs)]

// `#[derive(Children)]` names this crate `::kiln_nn`, inside it too.
extern crate self as kiln_nn;

mod checkpoint_file;
mod error;
pub mod export;
mod feature_cfg;
mod features;
mod hub_cache;
mod hub_config;
pub mod init;
pub mod layers;
mod model;
mod model_kwargs;
mod model_source;
pub mod models;
mod module;
mod names;
mod overrides;
mod pretrained;
mod pretrained_cfg;
mod pretrained_tag;
mod pretrained_tags;
mod pretrained_tags_table;
pub mod prune;
mod registry;
mod split_bn;
mod state_dict;
pub mod torch_file;

pub use checkpoint_file::{
    clean_state_dict, load_weights, read_checkpoint_file, CheckpointFile, Weights,
};
pub use error::{Error, Result};
pub use feature_cfg::{FeatureCfg, FeatureFormat, FeatureInfo, OutIndices};
pub use features::{create_features, FeatureExtractor};
pub use hub_cache::HubCache;
pub use model::{GroupRule, Model};
pub use model_kwargs::KwargValue;
pub use model_source::{create_model, parse_model_name, ModelSpec};
pub use models::ModelArgs;
pub use module::{
    for_each_child_mut, join, map_children_tensors, map_tensor, visit_group, visit_group_mut,
    Child, Children, Kind, Module, NamedTensor, TensorMap, TensorSlot, Visitor, VisitorMut,
};
pub use overrides::{init_head, set_batch_norm};
pub use pretrained::{adapt_input_conv, load_pretrained, PretrainedReport, PretrainedSource};
pub use pretrained_cfg::PretrainedCfg;
pub use pretrained_tags::list_pretrained;
pub use registry::list_models;
pub use split_bn::convert_splitbn_model;
pub use state_dict::{
    load_safetensors, load_safetensors_with_metadata, load_state_dict, save_safetensors,
    state_dict, write_durably, LoadReport, CHECKSUM_KEY,
};
