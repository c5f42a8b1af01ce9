//! timm's pretrained tags (`resnet50.a1_in1k`): the tags of each registered architecture with
//! their pretrained configs, from the table scripts/fixtures/make_pretrained_tags.py generates
//! (nn/src/pretrained_tags_table.rs). A bare architecture name means its first tag, as in timm.

use crate::pretrained_tags_table::ARCHS;
use crate::{Error, PretrainedCfg, Result};

/// One pretrained tag: the fields of timm's `PretrainedCfg` for `arch.tag` that kiln uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Tag {
    pub tag: &'static str,
    pub hf_hub_id: Option<&'static str>,
    pub input_size: [usize; 3],
    pub test_input_size: Option<[usize; 3]>,
    pub pool_size: Option<[usize; 2]>,
    pub crop_pct: f64,
    pub test_crop_pct: Option<f64>,
    pub crop_mode: &'static str,
    pub interpolation: &'static str,
    pub mean: [f64; 3],
    pub std: [f64; 3],
    pub num_classes: usize,
}

/// An architecture's tags, timm's default first, and the modules its weights adapt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ArchTags {
    pub arch: &'static str,
    pub first_conv: &'static str,
    pub classifier: &'static str,
    pub tags: &'static [Tag],
}

impl Tag {
    /// `cfg` (the architecture's) with this tag's values, named `arch.tag`.
    pub fn apply(&self, arch: &ArchTags, cfg: &mut PretrainedCfg) {
        cfg.name = format!("{}.{}", arch.arch, self.tag);
        cfg.hf_hub_id = self.hf_hub_id.map(String::from);
        cfg.input_size = self.input_size;
        cfg.test_input_size = self.test_input_size;
        cfg.pool_size = self.pool_size.unwrap_or(cfg.pool_size);
        cfg.crop_pct = self.crop_pct;
        cfg.test_crop_pct = self.test_crop_pct;
        cfg.crop_mode = self.crop_mode.into();
        cfg.interpolation = self.interpolation.into();
        cfg.mean = self.mean;
        cfg.std = self.std;
        cfg.num_classes = self.num_classes;
        cfg.first_conv = arch.first_conv.into();
        cfg.classifier = arch.classifier.into();
    }
}

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
        .flat_map(|a| a.tags.iter().map(move |t| format!("{}.{}", a.arch, t.tag)))
        .filter(|n| crate::registry::wildcard(pattern, n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{create_model, list_models, ModelArgs};

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

    #[test]
    fn a_bare_name_is_timms_default_tag() {
        let bare = create_model("resnet50", &ModelArgs::default()).unwrap();
        let tagged = create_model("resnet50.a1_in1k", &ModelArgs::default()).unwrap();
        assert_eq!(bare.pretrained_cfg(), tagged.pretrained_cfg());
        assert_eq!(bare.pretrained_cfg().name, "resnet50.a1_in1k");
    }

    #[test]
    fn a_tag_brings_its_own_cfg() {
        let m = create_model("resnet50.tv_in1k", &ModelArgs::default()).unwrap();
        let cfg = m.pretrained_cfg();
        assert_eq!(cfg.name, "resnet50.tv_in1k");
        assert_eq!(cfg.hf_hub_id.as_deref(), Some("timm/resnet50.tv_in1k"));
        assert_eq!(
            (cfg.crop_pct, cfg.interpolation.as_str()),
            (0.875, "bilinear")
        );
        assert_eq!(cfg.test_input_size, None);
    }

    #[test]
    fn an_unknown_tag_lists_the_known_ones() {
        let err = create_model("resnet18d.nope", &ModelArgs::default())
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("resnet18d has no pretrained tag 'nope' (known: ra2_in1k, ra4_e3600_r224_in1k)")
        );
    }

    #[test]
    fn list_pretrained_matches_names_with_tags() {
        let r18d = list_pretrained("resnet18d.*");
        assert_eq!(
            r18d,
            ["resnet18d.ra2_in1k", "resnet18d.ra4_e3600_r224_in1k"]
        );
        assert!(list_pretrained("*").len() > list_models("*").len());
    }
}
