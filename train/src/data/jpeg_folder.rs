//! Writes a dataset as an ImageFolder of JPEG files, `OUT/<class>/<index>.jpg`, each image resized
//! to a square side: the JPEG folders the GPU end-to-end run and the loader benches read, made
//! from the embedded IDX data so that none is committed or downloaded
//! (`cargo run --release --example make_jpeg_folder`).

use super::{Dataset, Image};
use crate::augment::{hflip, resize, Interpolation};
use crate::{Error, Result};
use rayon::prelude::*;
use std::path::Path;

/// What [`write_jpeg_folder`] writes.
#[derive(Debug, Clone, Copy)]
pub struct JpegFolder {
    /// Images to write: the dataset's in turn, again from its start (mirrored, so that no two
    /// files are the same) where it has fewer.
    pub count: usize,
    /// The side of the square images, resized bilinearly.
    pub side: usize,
    /// JPEG quality, 1-100.
    pub quality: u8,
}

/// Writes `spec.count` images of `dataset` under `out/<class>/`, the class folders named by
/// `class_name`, with rayon's threads; returns the files written.
pub fn write_jpeg_folder(
    dataset: &dyn Dataset,
    out: &Path,
    spec: JpegFolder,
    class_name: impl Fn(usize) -> String + Sync,
) -> Result<usize> {
    // JPEG's frame header holds each side in 16 bits.
    let sides = 1..=u16::MAX as usize;
    if dataset.is_empty() || !sides.contains(&spec.side) || !(1..=100).contains(&spec.quality) {
        let what = format!(
            "{} images, side {}, quality {}",
            dataset.len(),
            spec.side,
            spec.quality
        );
        let hint = "a dataset with images, a side of 1-65535 pixels, a quality of 1-100";
        return Err(Error::config("a JPEG folder", what, hint));
    }
    for class in 0..dataset.num_classes() {
        let dir = out.join(class_name(class));
        std::fs::create_dir_all(&dir).map_err(|e| Error::write(&dir, e))?;
    }
    (0..spec.count).into_par_iter().try_for_each(|k| {
        let (i, mirrored) = (k % dataset.len(), (k / dataset.len()) % 2 == 1);
        let sample = dataset.load(i)?;
        let mut img = resize(
            &sample.image.to_channels(3),
            spec.side,
            spec.side,
            Interpolation::Bilinear,
        );
        if mirrored {
            img = hflip(img);
        }
        let path = out
            .join(class_name(sample.label))
            .join(format!("{k:07}.jpg"));
        encode(&img, &path, spec.quality)
    })?;
    Ok(spec.count)
}

/// One RGB image as a baseline JPEG file.
fn encode(img: &Image, path: &Path, quality: u8) -> Result<()> {
    let encoder = jpeg_encoder::Encoder::new_file(path, quality)
        .map_err(|e| Error::write(path, std::io::Error::other(e.to_string())))?;
    let (w, h) = (img.w as u16, img.h as u16);
    (encoder.encode(&img.data, w, h, jpeg_encoder::ColorType::Rgb))
        .map_err(|e| Error::write(path, std::io::Error::other(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{decode, Sample};

    /// Two 8×8 images, white on the left half and black on the right, in classes 0 and 1.
    #[derive(Debug)]
    struct Halves;

    impl Dataset for Halves {
        fn len(&self) -> usize {
            2
        }
        fn label(&self, i: usize) -> usize {
            i
        }
        fn filename(&self, i: usize) -> String {
            format!("halves#{i}")
        }
        fn load(&self, i: usize) -> Result<Sample> {
            let data = (0..64).map(|p| if p % 8 < 4 { 255 } else { 0 }).collect();
            Ok(Sample {
                image: Image::new(8, 8, 1, data),
                label: i,
                filename: self.filename(i),
            })
        }
        fn num_classes(&self) -> usize {
            2
        }
    }

    /// The mean of the left and of the right half of an RGB image.
    fn halves(img: &Image) -> (f64, f64) {
        let mean = |xs: std::ops::Range<usize>| {
            let px: Vec<f64> = (0..img.h)
                .flat_map(|y| xs.clone().flat_map(move |x| img.px(x, y).to_vec()))
                .map(f64::from)
                .collect();
            px.iter().sum::<f64>() / px.len() as f64
        };
        (mean(0..img.w / 2), mean(img.w / 2..img.w))
    }

    #[test]
    fn writes_class_folders_and_mirrors_the_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let spec = JpegFolder {
            count: 4,
            side: 16,
            quality: 95,
        };
        assert_eq!(
            write_jpeg_folder(&Halves, dir.path(), spec, |c| format!("k{c}")).unwrap(),
            4
        );
        for (k, class, mirrored) in [(0, 0, false), (1, 1, false), (2, 0, true), (3, 1, true)] {
            let path = dir.path().join(format!("k{class}/{k:07}.jpg"));
            let img = decode(&std::fs::read(&path).unwrap(), 3, "").unwrap();
            assert_eq!((img.w, img.h, img.c), (16, 16, 3));
            let (left, right) = halves(&img);
            // JPEG's 8×8 blocks blur the edge a little; the halves stay far apart.
            let bright_left = left > 200.0 && right < 55.0;
            let bright_right = right > 200.0 && left < 55.0;
            assert!(
                if mirrored { bright_right } else { bright_left },
                "{k}: {left} {right}"
            );
        }
    }

    #[test]
    fn refuses_what_jpeg_cannot_hold() {
        let dir = tempfile::tempdir().unwrap();
        for (side, quality) in [(0, 90), (70_000, 90), (16, 0), (16, 101)] {
            let spec = JpegFolder {
                count: 1,
                side,
                quality,
            };
            let err = write_jpeg_folder(&Halves, dir.path(), spec, |c| c.to_string());
            let msg = err.unwrap_err().to_string();
            assert!(
                msg.contains(&format!("side {side}, quality {quality}")),
                "{msg}"
            );
        }
    }
}
