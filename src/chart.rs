//! PNG line charts for reports (backtests, simulations), drawn with plotters.
//!
//! The font is compiled in (DejaVu Sans, see `assets/`) so charts render the same on a bare
//! machine with no fontconfig.

use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: Once = Once::new();
const FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// One line of a chart.
pub struct Line<'a> {
    /// Legend text.
    pub label: &'a str,
    /// Y values, one per x.
    pub y: &'a [f64],
    /// Colour as RGB.
    pub rgb: (u8, u8, u8),
}

/// A shaded band between two series (e.g. p50..p90).
pub struct Band<'a> {
    /// Legend text.
    pub label: &'a str,
    /// Lower edge.
    pub lower: &'a [f64],
    /// Upper edge.
    pub upper: &'a [f64],
    /// Colour as RGB (drawn translucent).
    pub rgb: (u8, u8, u8),
}

/// A chart: x values shared by every line and band.
pub struct Chart<'a> {
    /// Title on top.
    pub title: &'a str,
    /// X axis label.
    pub x_label: &'a str,
    /// Y axis label.
    pub y_label: &'a str,
    /// X values (hours, steps, a risk level …).
    pub x: &'a [f64],
    /// Lines, drawn over the bands.
    pub lines: Vec<Line<'a>>,
    /// Bands, drawn first.
    pub bands: Vec<Band<'a>>,
}

fn register_font() {
    FONT.call_once(|| {
        // Registration only fails for a malformed font, and this one is compiled in.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT_BYTES);
    });
}

/// Why a chart could not be drawn: the file and the drawing backend's message.
#[derive(Debug, thiserror::Error)]
#[error("drawing {}: {message}", path.display())]
pub struct ChartError {
    /// The PNG being drawn.
    pub path: std::path::PathBuf,
    /// What the backend reported.
    pub message: String,
}

/// Draws `chart` to a PNG of `width` × `height` pixels at `path`. Drawn in memory and written
/// atomically, like every file prescale writes: a failure halfway leaves no half-drawn chart,
/// and an earlier one stays whole until the new one replaces it.
pub fn draw(chart: &Chart<'_>, path: &Path, width: u32, height: u32) -> Result<(), ChartError> {
    let err = |e: &dyn std::fmt::Display| ChartError {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    render(chart, &mut rgb, width, height, &err)?;
    crate::atomic_file::write_atomic(path, |w| {
        use image::ImageEncoder;
        image::codecs::png::PngEncoder::new(w)
            .write_image(&rgb, width, height, image::ColorType::Rgb8)
            .map_err(std::io::Error::other)
    })
    .map_err(|e| err(&e))
}

/// Draws `chart` into `rgb`, `width` × `height` pixels of 3 bytes.
fn render(
    chart: &Chart<'_>,
    rgb: &mut [u8],
    width: u32,
    height: u32,
    err: &dyn Fn(&dyn std::fmt::Display) -> ChartError,
) -> Result<(), ChartError> {
    register_font();
    let finite = |v: &&f64| v.is_finite();
    let ys = chart
        .lines
        .iter()
        .flat_map(|l| l.y.iter())
        .chain(
            chart
                .bands
                .iter()
                .flat_map(|b| b.lower.iter().chain(b.upper.iter())),
        )
        .filter(finite);
    let (mut lo, mut hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if hi <= lo {
        hi = lo + 1.0;
    }
    let pad = (hi - lo) * 0.05;
    let (x0, x1) = match (chart.x.first(), chart.x.last()) {
        (Some(&a), Some(&b)) if b > a => (a, b),
        (Some(&a), _) => (a, a + 1.0),
        _ => (0.0, 1.0),
    };
    let root = BitMapBackend::with_buffer(rgb, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut c = ChartBuilder::on(&root)
        .caption(chart.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, (lo - pad)..(hi + pad))
        .map_err(|e| err(&e))?;
    c.configure_mesh()
        .x_desc(chart.x_label)
        .y_desc(chart.y_label)
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| err(&e))?;
    for b in &chart.bands {
        let color = RGBColor(b.rgb.0, b.rgb.1, b.rgb.2);
        let upper: Vec<(f64, f64)> = chart
            .x
            .iter()
            .copied()
            .zip(b.upper.iter().copied())
            .collect();
        let lower: Vec<(f64, f64)> = chart
            .x
            .iter()
            .copied()
            .zip(b.lower.iter().copied())
            .rev()
            .collect();
        let poly: Vec<(f64, f64)> = upper
            .into_iter()
            .chain(lower)
            .filter(|p| p.1.is_finite())
            .collect();
        c.draw_series(std::iter::once(Polygon::new(
            poly,
            color.mix(0.25).filled(),
        )))
        .map_err(|e| err(&e))?
        .label(b.label)
        .legend(move |(x, y)| {
            Rectangle::new([(x, y - 5), (x + 16, y + 5)], color.mix(0.25).filled())
        });
    }
    for l in &chart.lines {
        let color = RGBColor(l.rgb.0, l.rgb.1, l.rgb.2);
        let pts = chart
            .x
            .iter()
            .copied()
            .zip(l.y.iter().copied())
            .filter(|p| p.1.is_finite());
        c.draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(l.label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// A file-name-safe version of a series key: the key itself where it is safe already, else
/// its safe characters (at most [`MAX_STEM`]) and a hash of the whole key, so two keys that
/// differ only where characters were replaced (`x{i="a:1"}`, `x{i="a_1"}`) never share a
/// chart, and a long key never makes a name the file system refuses.
pub fn file_stem(key: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if !key.is_empty() && key.len() <= MAX_STEM && key.chars().all(safe) {
        return key.to_string();
    }
    let s: String = key
        .chars()
        .map(|c| if safe(c) { c } else { '_' })
        .take(MAX_STEM)
        .collect();
    let s = s.trim_matches('_');
    let s = if s.is_empty() { "series" } else { s };
    // std's hasher with its fixed keys: the same name for the same key run after run.
    let mut h = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(key, &mut h);
    format!("{s}-{:08x}", std::hash::Hasher::finish(&h) as u32)
}

/// Longest stem kept from a key before the hash (file names are at most 255 bytes).
pub const MAX_STEM: usize = 120;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_png() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.png");
        let x: Vec<f64> = (0..50).map(f64::from).collect();
        let y: Vec<f64> = x.iter().map(|v| v.sin()).collect();
        let up: Vec<f64> = y.iter().map(|v| v + 0.5).collect();
        draw(
            &Chart {
                title: "t",
                x_label: "x",
                y_label: "y",
                x: &x,
                lines: vec![Line {
                    label: "sin",
                    y: &y,
                    rgb: (0, 0, 200),
                }],
                bands: vec![Band {
                    label: "band",
                    lower: &y,
                    upper: &up,
                    rgb: (200, 0, 0),
                }],
            },
            &p,
            400,
            300,
        )
        .unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert_eq!(file_stem("nab_cpu-1"), "nab_cpu-1");
        let a = file_stem("cpu{instance=\"a:1\"}");
        assert!(a.starts_with("cpu_instance__a_1-"), "{a}");
        assert_ne!(a, file_stem("cpu{instance=\"a_1\"}"));
        let long = file_stem(&"x{".repeat(500));
        assert!(long.len() < 140, "{long}");
        assert!(file_stem("").starts_with("series-"));
    }
}
