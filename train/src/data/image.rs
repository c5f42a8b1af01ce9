//! `Image`: a decoded image, 8-bit, rows of interleaved channels (HWC).

/// A decoded 8-bit image in HWC order (`c` is 1 for gray, 3 for RGB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Width in pixels.
    pub w: usize,
    /// Height in pixels.
    pub h: usize,
    /// Channels per pixel (1 or 3).
    pub c: usize,
    /// `h * w * c` bytes, row-major, channels interleaved.
    pub data: Vec<u8>,
}

impl Image {
    /// An image from its bytes; panics if `data.len() != h * w * c`.
    pub fn new(w: usize, h: usize, c: usize, data: Vec<u8>) -> Self {
        assert_eq!(data.len(), w * h * c, "image buffer is not {h}x{w}x{c}");
        Image { w, h, c, data }
    }

    /// An image filled with one value per channel.
    pub fn filled(w: usize, h: usize, fill: &[u8]) -> Self {
        let data = fill
            .iter()
            .copied()
            .cycle()
            .take(w * h * fill.len())
            .collect();
        Image {
            w,
            h,
            c: fill.len(),
            data,
        }
    }

    /// The channels of pixel (x, y).
    pub fn px(&self, x: usize, y: usize) -> &[u8] {
        let i = (y * self.w + x) * self.c;
        &self.data[i..i + self.c]
    }

    /// Bytes of one row.
    pub fn row(&self, y: usize) -> &[u8] {
        &self.data[y * self.w * self.c..(y + 1) * self.w * self.c]
    }

    /// Converts to `c` channels: gray is repeated to RGB, RGB becomes gray with PIL's
    /// ITU-R 601-2 luma (L = R*299/1000 + G*587/1000 + B*114/1000).
    pub fn to_channels(self, c: usize) -> Image {
        match (self.c, c) {
            (a, b) if a == b => self,
            (1, 3) => {
                let data = self.data.iter().flat_map(|&v| [v, v, v]).collect();
                Image { c: 3, data, ..self }
            }
            (3, 1) => {
                let data = self.data.chunks_exact(3).map(luma).collect();
                Image { c: 1, data, ..self }
            }
            (a, b) => panic!("no conversion from {a} to {b} channels"),
        }
    }
}

/// Refuses a channel count images cannot be decoded to (kiln decodes to L or RGB).
pub fn check_channels(chans: usize) -> crate::Result<()> {
    match chans {
        1 | 3 => Ok(()),
        _ => Err(crate::Error::Config {
            what: "image channel count",
            value: chans.to_string(),
            hint: "images decode to 1 (L) or 3 (RGB) channels".into(),
        }),
    }
}

/// PIL's `convert('L')`: (R*19595 + G*38470 + B*7471 + 0x8000) >> 16.
fn luma(p: &[u8]) -> u8 {
    ((p[0] as u32 * 19595 + p[1] as u32 * 38470 + p[2] as u32 * 7471 + 0x8000) >> 16) as u8
}
