//! Line charts drawn to PNG: series, ticks, the legend's corner, an embedded font.

use crate::{Error, Result};
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

/// Width and height of every chart kiln writes, in pixels.
pub const PLOT_SIZE: (u32, u32) = (960, 600);

/// The font family name the embedded font is registered under.
const FONT: &str = "sans-serif";

/// matplotlib's first colors (tab10), one per series.
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Series with at most this many points also get a dot per point.
const MAX_DOTTED: usize = 60;

/// One named line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend entry.
    pub name: String,
    /// (x, y) points in drawing order; non-finite ones are skipped.
    pub points: Vec<(f64, f64)>,
}

/// A line chart: title, axis names and one or more series with a legend.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// Caption above the plot.
    pub title: String,
    /// Name of the x axis.
    pub x_label: String,
    /// Name of the y axis.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
}

/// Registers the embedded font with plotters (once per process).
fn register_embedded_font() -> std::result::Result<(), String> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let bytes = include_bytes!("DejaVuSans-ascii.ttf");
    REGISTERED
        .get_or_init(|| register_font(FONT, FontStyle::Normal, bytes).is_ok())
        .then_some(())
        .ok_or_else(|| "the embedded font DejaVuSans-ascii.ttf does not parse".to_string())
}

/// A tick label with about four significant digits: `0.05`, `1.2e-5`, `300`.
fn tick_label(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if v.abs() < 1e-3 || v.abs() >= 1e5 {
        return format!("{v:.1e}");
    }
    let text = format!("{v:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The range of `values`, padded by 5% (by 1 or 10% of the value when they are all equal).
fn padded_range(values: impl Iterator<Item = f64>) -> Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return 0.0..1.0;
    }
    let pad = if hi > lo {
        0.05 * (hi - lo)
    } else if lo != 0.0 {
        0.1 * lo.abs()
    } else {
        1.0
    };
    lo - pad..hi + pad
}

/// The corner whose quarter-width, fifth-height box over the plot holds the fewest points: where
/// the legend hides the least.
fn emptiest_corner(chart: &LineChart, xs: &Range<f64>, ys: &Range<f64>) -> SeriesLabelPosition {
    let (w, h) = (xs.end - xs.start, ys.end - ys.start);
    let corners = [
        (SeriesLabelPosition::UpperRight, 0.75, 0.8),
        (SeriesLabelPosition::LowerRight, 0.75, 0.0),
        (SeriesLabelPosition::UpperLeft, 0.0, 0.8),
        (SeriesLabelPosition::LowerLeft, 0.0, 0.0),
    ];
    let count = |fx: f64, fy: f64| {
        let (x0, y0) = (xs.start + fx * w, ys.start + fy * h);
        let inside = |&&(x, y): &&(f64, f64)| {
            (x0..=x0 + 0.25 * w).contains(&x) && (y0..=y0 + 0.2 * h).contains(&y)
        };
        chart
            .series
            .iter()
            .map(|s| s.points.iter().filter(inside).count())
            .sum::<usize>()
    };
    corners
        .into_iter()
        .min_by_key(|&(_, fx, fy)| count(fx, fy))
        .map_or(SeriesLabelPosition::UpperRight, |(corner, _, _)| corner)
}

/// Draws `chart` into an RGB buffer of `PLOT_SIZE`.
fn draw(chart: &LineChart, rgb: &mut [u8]) -> std::result::Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = BitMapBackend::with_buffer(rgb, PLOT_SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let points = || chart.series.iter().flat_map(|s| s.points.iter());
    let xs = padded_range(points().map(|p| p.0));
    let ys = padded_range(points().map(|p| p.1));
    let legend = emptiest_corner(chart, &xs, &ys);
    let mut ctx = ChartBuilder::on(&root)
        .caption(&chart.title, (FONT, 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(xs, ys)
        .map_err(|e| err(&e))?;
    ctx.configure_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .x_label_formatter(&|v| tick_label(*v))
        .y_label_formatter(&|v| tick_label(*v))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(|e| err(&e))?;
    for (i, series) in chart.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let finite: Vec<(f64, f64)> = series
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        let dotted = finite.len() <= MAX_DOTTED;
        ctx.draw_series(LineSeries::new(finite.clone(), color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(&series.name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], color.stroke_width(3)));
        if dotted {
            let dots = finite
                .into_iter()
                .map(|p| Circle::new(p, 3, color.filled()));
            ctx.draw_series(dots).map_err(|e| err(&e))?;
        }
    }
    ctx.configure_series_labels()
        .position(legend)
        .label_font((FONT, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

/// Writes `chart` to `path` as an RGB PNG of `PLOT_SIZE`.
pub fn write_png(chart: &LineChart, path: &Path) -> Result<()> {
    let (w, h) = PLOT_SIZE;
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    let encode_error = |msg: String| Error::Encode {
        path: path.to_path_buf(),
        msg,
    };
    register_embedded_font().map_err(encode_error)?;
    draw(chart, &mut rgb).map_err(encode_error)?;
    let file = std::fs::File::create(path).map_err(|e| Error::write(path, e))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder
        .write_header()
        .map_err(|e| encode_error(e.to_string()))?;
    writer
        .write_image_data(&rgb)
        .map_err(|e| encode_error(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::{padded_range, tick_label};

    #[test]
    fn tick_labels_stay_short() {
        assert_eq!(tick_label(0.05), "0.05");
        assert_eq!(tick_label(300.0), "300");
        assert_eq!(tick_label(1.3e-5), "1.3e-5");
        assert_eq!(tick_label(0.0), "0");
    }

    #[test]
    fn flat_series_get_a_visible_range() {
        assert_eq!(padded_range([2.0, 2.0].into_iter()), 1.8..2.2);
        assert_eq!(padded_range(std::iter::empty()), 0.0..1.0);
    }
}
