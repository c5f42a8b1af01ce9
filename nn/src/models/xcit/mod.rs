//! timm's XCiT (xcit.py): a convolutional patch embedding with a Fourier position encoding,
//! blocks of cross-covariance attention (XCA: attention across channels), local patch
//! interaction (depthwise convs) and MLP, then CaiT-style class-attention blocks reading a class
//! token, the final LayerNorm and the class-token head.

mod attention;
mod block;
mod config;
mod embed;
mod kwargs;
mod model;
mod variants;

pub use config::XcitCfg;
pub use model::Xcit;
pub use variants::variants;
pub(crate) use variants::FAMILY;
