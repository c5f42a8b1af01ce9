//! One pretrained tag of timm's (`resnet50.a1_in1k`) and an architecture's list of them: the
//! rows of the generated table (nn/src/pretrained_tags_table.rs).

use crate::PretrainedCfg;

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
    /// `arch.tag`, or `arch` alone for timm's untagged default config (tag `''`).
    pub fn full_name(&self, arch: &str) -> String {
        match self.tag {
            "" => arch.to_string(),
            tag => format!("{arch}.{tag}"),
        }
    }

    /// `cfg` (the architecture's) with this tag's values, named by [`Tag::full_name`].
    pub fn apply(&self, arch: &ArchTags, cfg: &mut PretrainedCfg) {
        cfg.name = self.full_name(arch.arch);
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
