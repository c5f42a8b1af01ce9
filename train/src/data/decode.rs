//! Decoding JPEG and PNG bytes to an `Image` with 1 (L) or 3 (RGB) channels.
use super::Image;
use crate::{Error, Result};
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

/// Decodes JPEG or PNG bytes (told apart by their magic bytes) to `chans` channels (1 or 3).
/// `name` is the file the bytes came from, used in errors.
pub fn decode(bytes: &[u8], chans: usize, name: &str) -> Result<Image> {
    let err = |msg: String| Error::Decode {
        path: name.to_string(),
        msg,
    };
    if ![1, 3].contains(&chans) {
        return Err(err(format!("cannot decode to {chans} channels (1 or 3)")));
    }
    let decoder = if bytes.starts_with(&[0xFF, 0xD8]) {
        decode_jpeg
    } else if bytes.starts_with(b"\x89PNG") {
        decode_png
    } else {
        return Err(err("neither JPEG nor PNG (bad magic bytes)".into()));
    };
    // A decoder that panics on a malformed file (zune-jpeg asserts on some) is one bad file,
    // skipped like the others, not a failed batch.
    std::panic::catch_unwind(|| decoder(bytes, chans))
        .unwrap_or_else(|p| Err(format!("the decoder failed: {}", panic_text(&p))))
        .map_err(err)
}

/// The message of a caught panic.
pub(crate) fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Largest image decoded, in pixels (zune-jpeg's default 16384 × 16384): a header claiming more
/// is refused before its buffer is allocated.
const MAX_PIXELS: u64 = 16384 * 16384;

fn decode_jpeg(bytes: &[u8], chans: usize) -> std::result::Result<Image, String> {
    let cs = if chans == 1 {
        ColorSpace::Luma
    } else {
        ColorSpace::RGB
    };
    let opts = DecoderOptions::default()
        .jpeg_set_out_colorspace(cs)
        .set_strict_mode(true);
    let mut dec = zune_jpeg::JpegDecoder::new_with_options(bytes, opts);
    dec.decode_headers().map_err(|e| e.to_string())?;
    let (w, h) = dec.dimensions().ok_or("no dimensions")?;
    // Every 8×8 block's DC coefficient takes at least one bit (baseline or progressive), so a
    // file too small for its blocks is cut short or corrupt: refused before a long decode of
    // mostly invented pixels.
    let blocks = w.div_ceil(8) as u64 * h.div_ceil(8) as u64;
    if blocks > 8 * bytes.len() as u64 {
        return Err(format!(
            "{w}x{h} pixels cannot be held in {} bytes (truncated or corrupt)",
            bytes.len()
        ));
    }
    let data = dec.decode().map_err(|e| e.to_string())?;
    let c = dec
        .get_output_colorspace()
        .ok_or("no colorspace")?
        .num_components();
    if data.len() != w * h * c || ![1, 3].contains(&c) {
        return Err(format!("decoded {} bytes as {w}x{h}x{c}", data.len()));
    }
    Ok(Image::new(w, h, c, data).to_channels(chans))
}

fn decode_png(bytes: &[u8], chans: usize) -> std::result::Result<Image, String> {
    let mut dec = png::Decoder::new(bytes);
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().map_err(|e| e.to_string())?;
    let (w, h) = (reader.info().width, reader.info().height);
    if u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(format!("{w}x{h} is more than {MAX_PIXELS} pixels"));
    }
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    buf.truncate(info.buffer_size());
    let (w, h) = (info.width as usize, info.height as usize);
    let rgb_or_l = match info.color_type {
        png::ColorType::Grayscale => Image::new(w, h, 1, buf),
        png::ColorType::GrayscaleAlpha => {
            Image::new(w, h, 1, buf.chunks_exact(2).map(|p| p[0]).collect())
        }
        png::ColorType::Rgb => Image::new(w, h, 3, buf),
        png::ColorType::Rgba => Image::new(w, h, 3, drop_alpha(&buf)),
        png::ColorType::Indexed => return Err("indexed PNG left unexpanded".into()),
    };
    Ok(rgb_or_l.to_channels(chans))
}

/// RGBA -> RGB by dropping alpha, as PIL's `convert('RGB')` does.
fn drop_alpha(rgba: &[u8]) -> Vec<u8> {
    rgba.chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect()
}
