//! What a model's feature maps are ([`FeatureInfo`]) and which ones `features_only` takes by
//! default ([`FeatureCfg`]).

/// One feature map a model exposes for feature extraction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureInfo {
    /// Channels.
    pub num_chs: usize,
    /// Input-to-feature stride.
    pub reduction: usize,
    /// The module that produces it.
    pub module: String,
}

/// Which feature maps to take (timm's `out_indices`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutIndices {
    /// The last `n` maps (timm's int).
    Last(usize),
    /// These maps; a negative index counts from the end (timm's tuple).
    List(Vec<i64>),
}

/// The layout of the returned maps (timm's `output_fmt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureFormat {
    /// Batch, channels, height, width.
    Nchw,
    /// Batch, height, width, channels (Swin's stage outputs).
    Nhwc,
}

/// A family's `feature_cfg` in timm: the default `out_indices` and the layout of the maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureCfg {
    /// The maps taken when none are asked for.
    pub out_indices: OutIndices,
    /// The maps' layout.
    pub output_fmt: FeatureFormat,
}

impl Default for FeatureCfg {
    /// timm's `build_model_with_cfg` default: maps 0 to 4, NCHW.
    fn default() -> Self {
        FeatureCfg {
            out_indices: OutIndices::List((0..5).collect()),
            output_fmt: FeatureFormat::Nchw,
        }
    }
}
