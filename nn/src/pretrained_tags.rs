//! timm's pretrained tags (`resnet50.a1_in1k`): the tags of each registered architecture with
//! their pretrained configs, from the table scripts/fixtures/make_pretrained_tags.py generates
//! (nn/src/pretrained_tags_table.rs). A bare architecture name means its first tag, as in timm.

use crate::pretrained_tag::{ArchTags, Tag};
use crate::pretrained_tags_table::ARCHS;
use crate::{Error, Result};

/// The tags of `arch`, if it has any.
pub(crate) fn arch_tags(arch: &str) -> Option<&'static ArchTags> {
    ARCHS.iter().find(|a| a.arch == arch)
}

/// `arch`'s tag `tag`, or its default tag when `None`; an unknown tag lists the known ones.
pub(crate) fn find_tag(arch: &str, tag: Option<&str>) -> Result<(&'static ArchTags, &'static Tag)> {
    let at = arch_tags(arch).ok_or_else(|| Error::BadArgument {
        model: arch.into(),
        msg: "kiln has no pretrained tags for this architecture".into(),
    })?;
    let found = match tag {
        None => at.tags.first(),
        Some(t) => at.tags.iter().find(|x| x.tag == t),
    };
    let found = found.ok_or_else(|| Error::UnknownTag {
        arch: arch.into(),
        tag: tag.unwrap_or_default().into(),
        known: at.tags.iter().map(|t| t.tag.to_string()).collect(),
    })?;
    Ok((at, found))
}

/// timm's `list_pretrained`: every `arch.tag` whose name matches a shell-style pattern (`*`, `?`),
/// architectures sorted, each one's tags in timm's order (its default first).
pub fn list_pretrained(pattern: &str) -> Vec<String> {
    let mut archs: Vec<&ArchTags> = ARCHS.iter().collect();
    archs.sort_by_key(|a| a.arch);
    archs
        .into_iter()
        .flat_map(|a| a.tags.iter().map(move |t| t.full_name(a.arch)))
        .filter(|n| crate::names::wildcard(pattern, n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::list_models;

    #[test]
    fn every_registered_model_has_its_tags() {
        let missing: Vec<String> = list_models("*")
            .into_iter()
            .filter(|m| arch_tags(m).is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "no tags for {missing:?}: rerun scripts/fixtures/make_pretrained_tags.py $(kiln models)"
        );
    }

    #[test]
    fn each_familys_own_config_is_its_default_tags() {
        for arch in list_models("*") {
            let (own, _) = crate::registry::lookup(&arch).unwrap();
            let (at, tag) = find_tag(&arch, None).unwrap();
            let mut from_table = own.clone();
            tag.apply(at, &mut from_table);
            from_table.hf_hub_id = None;
            assert_eq!(own, from_table, "{arch}");
        }
    }
}
