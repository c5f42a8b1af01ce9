//! What distinguishes one MetaFormer from another (timm's `MetaFormer` constructor arguments):
//! the stages' depths, widths and token mixers, the norms, the MLP's activation, the scales and
//! the head.

/// A stage's token mixer (timm's `token_mixers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mixer {
    /// `Pooling`: a 3×3 average pool (padding not counted) minus its input (PoolFormer).
    Pooling,
    /// `SepConv`: MobileNetV2's inverted separable conv (ConvFormer, CAFormer's first stages).
    SepConv,
    /// `Attention`: multi-head self-attention of 32-wide heads over the stage's tokens
    /// (CAFormer's last stages, which run on `[B, N, C]` tokens).
    Attention,
}

/// The blocks' norm (timm's `norm_layers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockNorm {
    /// `GroupNorm1`: one group, eps 1e-5, with a bias (PoolFormer v1).
    GroupNorm1,
    /// `GroupNorm1NoBias`: one group, eps 1e-6, no bias (PoolFormer v2).
    GroupNorm1NoBias,
    /// `LayerNorm2dNoBias` over the channels of a map, `LayerNormNoBias` over tokens in an
    /// attention stage: eps 1e-6, no bias (ConvFormer, CAFormer).
    LayerNormNoBias,
}

/// The blocks' MLP activation (timm's `mlp_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockAct {
    /// `nn.GELU` (PoolFormer v1).
    Gelu,
    /// `StarReLU`: s · relu(x)² + b, learned s and b (timm's default).
    StarRelu,
}

/// timm's `MetaFormer` arguments that its entry points set, and the kwargs kiln passes on.
#[derive(Debug, Clone, Copy)]
pub struct MetaFormerCfg {
    /// Blocks per stage (timm's `depths`).
    pub depths: [usize; 4],
    /// Channels per stage (timm's `dims`).
    pub dims: [usize; 4],
    /// Each stage's token mixer.
    pub mixers: [Mixer; 4],
    /// The blocks' norm.
    pub norm: BlockNorm,
    /// The MLPs' activation.
    pub act: BlockAct,
    /// Biases in the MLPs (timm's `mlp_bias`).
    pub mlp_bias: bool,
    /// Layer scale's initial value in every stage; none leaves it out (timm's
    /// `layer_scale_init_values`).
    pub layer_scale: Option<f64>,
    /// Each stage's residual scale initial value; none leaves it out (timm's
    /// `res_scale_init_values`).
    pub res_scale: [Option<f64>; 4],
    /// `LayerNorm2dNoBias` after the stem conv and before each downsampling conv (timm's
    /// `downsample_norm`; none in PoolFormer v1).
    pub downsample_norm: bool,
    /// timm's `MlpHead` (fc1, squared ReLU, LayerNorm, fc2) as the classifier instead of a
    /// linear layer (timm's `use_mlp_head`).
    pub use_mlp_head: bool,
}

/// timm's default residual scales: 1.0 in the last two stages.
const RES_SCALE: [Option<f64>; 4] = [None, None, Some(1.0), Some(1.0)];

impl MetaFormerCfg {
    /// PoolFormer v1: pooling, `GroupNorm1`, GELU MLPs with biases, layer scale `ls`, no
    /// downsampling norm, a linear head.
    pub const fn poolformer(depths: [usize; 4], dims: [usize; 4], ls: f64) -> MetaFormerCfg {
        MetaFormerCfg {
            norm: BlockNorm::GroupNorm1,
            act: BlockAct::Gelu,
            mlp_bias: true,
            layer_scale: Some(ls),
            res_scale: [None; 4],
            downsample_norm: false,
            ..MetaFormerCfg::poolformerv2(depths, dims)
        }
    }

    /// PoolFormer v2: pooling, `GroupNorm1NoBias`, timm's defaults otherwise (StarReLU, residual
    /// scales in the last two stages, downsampling norms) but a linear head.
    pub const fn poolformerv2(depths: [usize; 4], dims: [usize; 4]) -> MetaFormerCfg {
        MetaFormerCfg {
            mixers: [Mixer::Pooling; 4],
            norm: BlockNorm::GroupNorm1NoBias,
            use_mlp_head: false,
            ..MetaFormerCfg::convformer(depths, dims)
        }
    }

    /// ConvFormer: separable convs in every stage with timm's defaults (`LayerNorm2dNoBias`,
    /// StarReLU, residual scales in the last two stages, the MLP head).
    pub const fn convformer(depths: [usize; 4], dims: [usize; 4]) -> MetaFormerCfg {
        MetaFormerCfg {
            depths,
            dims,
            mixers: [Mixer::SepConv; 4],
            norm: BlockNorm::LayerNormNoBias,
            act: BlockAct::StarRelu,
            mlp_bias: false,
            layer_scale: None,
            res_scale: RES_SCALE,
            downsample_norm: true,
            use_mlp_head: true,
        }
    }

    /// CAFormer: ConvFormer with attention in the last two stages.
    pub const fn caformer(depths: [usize; 4], dims: [usize; 4]) -> MetaFormerCfg {
        MetaFormerCfg {
            mixers: [
                Mixer::SepConv,
                Mixer::SepConv,
                Mixer::Attention,
                Mixer::Attention,
            ],
            ..MetaFormerCfg::convformer(depths, dims)
        }
    }
}
