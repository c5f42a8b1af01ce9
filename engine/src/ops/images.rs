//! Image batches from the data loader: uint8 NHWC bytes to normalized float images on a device.

use crate::{DType, Device, Error, Layout, MemoryFormat, Result, Storage, Tensor};

impl Tensor {
    /// `bytes` (n·h·w·c uint8, NHWC, as the loader produces them) as normalized `dtype` images
    /// \[N, C, H, W\] in channels-last memory order on `device`: (v/255 - mean\[c\]) / std\[c\].
    /// On CUDA the bytes travel (4× smaller than floats) on the copy stream through a
    /// page-locked buffer and are normalized on the device (timm's prefetcher).
    pub fn from_u8_images(
        bytes: &[u8],
        [n, h, w, c]: [usize; 4],
        mean: &[f32],
        std: &[f32],
        dtype: DType,
        device: Device,
    ) -> Result<Tensor> {
        if bytes.len() != n * h * w * c || mean.len() != c || std.len() != c {
            return Err(Error::BadShape {
                op: "from_u8_images",
                shape: vec![n, h, w, c],
                msg: format!(
                    "{} bytes, {} means and {} stds for this NHWC shape",
                    bytes.len(),
                    mean.len(),
                    std.len()
                ),
            });
        }
        let s = Storage::upload_u8(device, bytes)?.normalize_u8_nhwc(mean, std, dtype)?;
        Ok(Tensor::plain(
            s,
            Layout::with_format(&[n, c, h, w], MemoryFormat::ChannelsLast),
        ))
    }
}
