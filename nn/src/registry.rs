//! The model registry: every family's architectures by name, `list_models` with wildcards, and
//! the close names an unknown one is offered.

use crate::models;
use crate::models::family::{Build, Family};
use crate::names::{edit_distance, wildcard};
use crate::PretrainedCfg;

/// Every registered family, in the order the registry looks a name up (each declares its
/// `FAMILY` in its own folder).
const FAMILIES: &[&dyn Family] = &[
    &models::resnet::FAMILY,
    &models::byobnet::FAMILY,
    &models::convnext::FAMILY,
    &models::cspnet::FAMILY,
    &models::densenet::FAMILY,
    &models::dla::FAMILY,
    &models::efficientnet::FAMILY,
    &models::ghostnet::FAMILY,
    &models::hardcorenas::FAMILY,
    &models::mobilenetv3::FAMILY,
    &models::regnet::FAMILY,
    &models::resnest::FAMILY,
    &models::rexnet::FAMILY,
    &models::swin::FAMILY,
    &models::vgg::FAMILY,
    &models::vovnet::FAMILY,
    &models::vit::FAMILY,
    &models::eva::FAMILY,
    &models::nfnet::FAMILY,
    &models::xcit::FAMILY,
    &models::resnetv2::FAMILY,
    &models::metaformer::FAMILY,
    &models::mlp_mixer::FAMILY,
];

/// The default pretrained config and the builder of registered architecture `arch`.
pub(crate) fn lookup(arch: &str) -> Option<(PretrainedCfg, Build)> {
    FAMILIES.iter().find_map(|f| f.lookup(arch))
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
    FAMILIES.iter().flat_map(|f| f.names()).collect()
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
