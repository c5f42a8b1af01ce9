//! What distinguishes one mixer from another (timm's `MlpMixer` constructor arguments).

/// The block every layer of a mixer is (timm's `block_layer`, with its `mlp_layer` and
/// `norm_layer`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MixerBlockKind {
    /// `MixerBlock` of GELU `Mlp`s (MLP-Mixer).
    Mixer,
    /// `MixerBlock` of `GluMlp`s with SiLU, the gate last (gMixer).
    GluMixer,
    /// `ResBlock` with `Affine` norms (ResMLP), its layer scales starting at `init_values`.
    Res {
        /// The layer scales' initial value (timm's `init_values`).
        init_values: f64,
    },
    /// `SpatialGatingBlock` of a `GatedMlp` (gMLP).
    SpatialGating,
}

impl MixerBlockKind {
    /// The norms are ResMLP's `Affine` (every other block's are LayerNorms, eps 1e-6).
    pub fn affine(self) -> bool {
        matches!(self, MixerBlockKind::Res { .. })
    }
}

/// timm's `MlpMixer` arguments that its entry points set, and the kwargs kiln passes on.
#[derive(Debug, Clone, Copy)]
pub struct MixerCfg {
    /// Patch size of the stem.
    pub patch: usize,
    /// Blocks (timm's `num_blocks`).
    pub num_blocks: usize,
    /// Token width (timm's `embed_dim`).
    pub dim: usize,
    /// The token and channel MLPs' widths over `dim` (timm's `mlp_ratio`, a pair for
    /// `MixerBlock`, the channel ratio alone for the others).
    pub mlp_ratio: (f64, f64),
    /// The block kind.
    pub block: MixerBlockKind,
    /// A norm after the patch embedding (timm's `stem_norm`).
    pub stem_norm: bool,
    /// The classifier's bias starts at −log(num_classes) (timm's `nlhb`).
    pub nlhb: bool,
}

impl MixerCfg {
    /// timm's defaults (no stem norm, a zero head bias) for `patch`, `num_blocks`, `dim`,
    /// `mlp_ratio` and `block`.
    pub const fn new(
        patch: usize,
        num_blocks: usize,
        dim: usize,
        mlp_ratio: (f64, f64),
        block: MixerBlockKind,
    ) -> MixerCfg {
        MixerCfg {
            patch,
            num_blocks,
            dim,
            mlp_ratio,
            block,
            stem_norm: false,
            nlhb: false,
        }
    }

    /// The token MLP's and the channel MLP's hidden widths (timm's `int(ratio * dim)`).
    pub fn hidden(&self) -> (usize, usize) {
        let width = |r: f64| (r * self.dim as f64) as usize;
        (width(self.mlp_ratio.0), width(self.mlp_ratio.1))
    }
}
