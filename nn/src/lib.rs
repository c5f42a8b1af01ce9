//! kiln's modules, layers and timm's models.
#![warn(missing_docs)]
