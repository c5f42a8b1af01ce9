//! A model's pretrained config (timm's `pretrained_cfg`) and timm's normalization constants.

/// timm's ImageNet mean.
pub const IMAGENET_DEFAULT_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// timm's ImageNet std.
pub const IMAGENET_DEFAULT_STD: [f64; 3] = [0.229, 0.224, 0.225];
/// timm's Inception mean.
pub const IMAGENET_INCEPTION_MEAN: [f64; 3] = [0.5, 0.5, 0.5];
/// timm's Inception std.
pub const IMAGENET_INCEPTION_STD: [f64; 3] = [0.5, 0.5, 0.5];

/// A model's pretrained config: what its weights expect at input (timm's `pretrained_cfg`).
#[derive(Debug, Clone, PartialEq)]
pub struct PretrainedCfg {
    /// `arch.tag`, e.g. `resnet50.a1_in1k`.
    pub name: String,
    /// The Hugging Face hub repo of the weights (`timm/resnet50.a1_in1k`), if any.
    pub hf_hub_id: Option<String>,
    /// (C, H, W) for training.
    pub input_size: [usize; 3],
    /// (C, H, W) for testing, when different.
    pub test_input_size: Option<[usize; 3]>,
    /// Spatial size of the final feature map at `input_size`.
    pub pool_size: [usize; 2],
    /// Eval center-crop fraction.
    pub crop_pct: f64,
    /// Eval crop fraction at `test_input_size`.
    pub test_crop_pct: Option<f64>,
    /// Eval crop mode (timm's `crop_mode`): `center`, `squash` or `border`.
    pub crop_mode: String,
    /// Resize interpolation (`bilinear`, `bicubic`).
    pub interpolation: String,
    /// Normalization mean per channel.
    pub mean: [f64; 3],
    /// Normalization std per channel.
    pub std: [f64; 3],
    /// Name of the first conv (for in_chans adaptation); comma-separated where several convs
    /// read the input (RepVGG's and MobileOne's stem branches, timm's tuple). See
    /// [`PretrainedCfg::first_convs`].
    pub first_conv: String,
    /// Name of the classifier; comma-separated where there are several (a distilled DeiT's
    /// `head,head_dist`, timm's tuple). See [`PretrainedCfg::classifiers`].
    pub classifier: String,
    /// Classes of the pretrained head.
    pub num_classes: usize,
}

impl PretrainedCfg {
    /// timm's `_cfg` defaults for the tag `name`: 3×224×224 ImageNet input (pool 7×7, crop 0.875
    /// centered, bilinear, ImageNet mean and std), 1000 classes, no hub id; a family overrides
    /// the fields its `_cfg` sets otherwise.
    pub fn timm_default(name: String, first_conv: &str, classifier: &str) -> Self {
        PretrainedCfg {
            name,
            hf_hub_id: None,
            input_size: [3, 224, 224],
            test_input_size: None,
            pool_size: [7, 7],
            crop_pct: 0.875,
            test_crop_pct: None,
            crop_mode: "center".into(),
            interpolation: "bilinear".into(),
            mean: IMAGENET_DEFAULT_MEAN,
            std: IMAGENET_DEFAULT_STD,
            first_conv: first_conv.into(),
            classifier: classifier.into(),
            num_classes: 1000,
        }
    }

    /// The classifier modules, one name each (`head` and `head_dist` for a distilled DeiT).
    pub fn classifiers(&self) -> impl Iterator<Item = &str> {
        self.classifier.split(',')
    }

    /// The convs that read the input, one name each (RepVGG's `stem.conv_kxk.conv` and
    /// `stem.conv_1x1.conv`).
    pub fn first_convs(&self) -> impl Iterator<Item = &str> {
        self.first_conv.split(',')
    }
}
