//! `metrics.png`: loss components and accuracy per epoch, train (solid) and valid (dashed).
//!
//! Drawn into an RGB buffer with a built-in 5x7 bitmap font and encoded with the `png` crate,
//! so a run folder gets its plot with no font files or plotting stack installed.

use crate::{EpochRecord, TrainError};

const WIDTH: usize = 1100;
const HEIGHT: usize = 460;
const SCALE: usize = 2;
const BG: [u8; 3] = [255, 255, 255];
const AXIS: [u8; 3] = [60, 60, 60];
const GRID: [u8; 3] = [225, 225, 225];
const PALETTE: [[u8; 3]; 8] = [
    [31, 119, 180],
    [255, 127, 14],
    [44, 160, 44],
    [214, 39, 40],
    [148, 103, 189],
    [140, 86, 75],
    [227, 119, 194],
    [23, 190, 207],
];

/// 5x7 glyphs, rows top to bottom, bit 4 the leftmost pixel.
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        ' ' => [0; 7],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        '-' => [0, 0, 0, 0x1F, 0, 0, 0],
        '/' => [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
        '_' => [0, 0, 0, 0, 0, 0, 0x1F],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        ':' => [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        ',' => [0, 0, 0, 0, 0x0C, 0x04, 0x08],
        '+' => [0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0],
        '=' => [0, 0, 0x1F, 0, 0x1F, 0, 0],
        _ => [0x0E, 0x11, 0x01, 0x02, 0x04, 0, 0x04],
    }
}

/// An RGB image being drawn.
struct Canvas {
    pixels: Vec<u8>,
}

impl Canvas {
    fn new() -> Self {
        Self {
            pixels: BG.repeat(WIDTH * HEIGHT),
        }
    }

    fn set(&mut self, x: i64, y: i64, color: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < WIDTH && (y as usize) < HEIGHT {
            let i = 3 * (y as usize * WIDTH + x as usize);
            self.pixels[i..i + 3].copy_from_slice(&color);
        }
    }

    fn rect(&mut self, x0: i64, y0: i64, w: i64, h: i64, color: [u8; 3]) {
        for y in y0..y0 + h {
            for x in x0..x0 + w {
                self.set(x, y, color);
            }
        }
    }

    /// A 2-px line; `dashed` leaves gaps every 6 px.
    fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), color: [u8; 3], dashed: bool) {
        let steps = (x1 - x0).abs().max((y1 - y0).abs()).ceil().max(1.0) as usize;
        for i in 0..=steps {
            if dashed && (i / 6) % 2 == 1 {
                continue;
            }
            let t = i as f64 / steps as f64;
            let (x, y) = (x0 + t * (x1 - x0), y0 + t * (y1 - y0));
            self.rect(x.round() as i64, y.round() as i64, 2, 2, color);
        }
    }

    /// Text with its top-left corner at (x, y); returns the width drawn.
    fn text(&mut self, x: i64, y: i64, text: &str, color: [u8; 3]) -> i64 {
        let advance = (6 * SCALE) as i64;
        for (i, c) in text.chars().enumerate() {
            let rows = glyph(c);
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        self.rect(
                            x + i as i64 * advance + (col * SCALE) as i64,
                            y + (r * SCALE) as i64,
                            SCALE as i64,
                            SCALE as i64,
                            color,
                        );
                    }
                }
            }
        }
        text.chars().count() as i64 * advance
    }
}

/// One plotted series: a name, its values per epoch, and its style.
struct Series {
    name: String,
    points: Vec<(usize, f64)>,
    color: [u8; 3],
    dashed: bool,
}

fn tick_label(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Draws a panel of `series` in the box `(x, y, w, h)` with `title`.
fn panel(
    canvas: &mut Canvas,
    (x, y, w, h): (i64, i64, i64, i64),
    title: &str,
    series: &[Series],
    epochs: usize,
) {
    let values: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|v| v.is_finite())
        .collect();
    canvas.text(x, y - 26, title, AXIS);
    let (lo, hi) = match (
        values.iter().copied().reduce(f64::min),
        values.iter().copied().reduce(f64::max),
    ) {
        (Some(lo), Some(hi)) if hi > lo => (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)),
        (Some(v), _) => (v - 0.5, v + 0.5),
        _ => (0.0, 1.0),
    };
    let (px, py, pw, ph) = (x + 80, y, w - 90, h - 40);
    for i in 0..=4 {
        let v = lo + (hi - lo) * i as f64 / 4.0;
        let yy = py + ph - (ph as f64 * i as f64 / 4.0) as i64;
        canvas.rect(px, yy, pw, 1, GRID);
        canvas.text(x, yy - 7, &tick_label(v), AXIS);
    }
    canvas.rect(px, py, 2, ph, AXIS);
    canvas.rect(px, py + ph, pw, 2, AXIS);
    let span = epochs.max(2) - 1;
    let xpos = |e: usize| px as f64 + pw as f64 * e as f64 / span as f64;
    let ypos = |v: f64| (py + ph) as f64 - ph as f64 * (v - lo) / (hi - lo);
    let every = epochs.div_ceil(10).max(1);
    for e in (0..epochs).step_by(every) {
        let label = (e + 1).to_string();
        canvas.text(xpos(e) as i64 - 5, py + ph + 8, &label, AXIS);
    }
    for s in series {
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter(|p| p.1.is_finite())
            .map(|&(e, v)| (xpos(e), ypos(v)))
            .collect();
        for pair in pts.windows(2) {
            canvas.line(pair[0], pair[1], s.color, s.dashed);
        }
        for &(xx, yy) in &pts {
            canvas.rect(xx as i64 - 2, yy as i64 - 2, 5, 5, s.color);
        }
    }
    // Legend under the title, right-aligned names in series colours.
    let mut lx = px + 10;
    let mut ly = py + 6;
    for s in series {
        let label = format!("{}{}", s.name, if s.dashed { " (valid)" } else { "" });
        let width = (label.chars().count() * 6 * SCALE) as i64 + 30;
        if lx + width > px + pw {
            lx = px + 10;
            ly += 18;
        }
        canvas.line(
            (lx as f64, ly as f64 + 6.0),
            (lx as f64 + 16.0, ly as f64 + 6.0),
            s.color,
            s.dashed,
        );
        canvas.text(lx + 22, ly, &label, s.color);
        lx += width;
    }
}

/// Renders the loss components (left) and accuracies (right) of `records` as a PNG.
pub fn render_png(records: &[EpochRecord]) -> Result<Vec<u8>, TrainError> {
    let mut canvas = Canvas::new();
    let epochs = records.iter().map(|r| r.epoch + 1).max().unwrap_or(0);
    let series_of = |is_loss: bool| -> Vec<Series> {
        let mut names: Vec<String> = Vec::new();
        for r in records {
            for (k, _) in &r.train {
                let loss = !matches!(k.as_str(), "Accuracy" | "Top5");
                if loss == is_loss && !names.contains(k) {
                    names.push(k.clone());
                }
            }
        }
        let mut out = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let short = name.rsplit('/').next().unwrap_or(name).to_string();
            for (dashed, pick) in [(false, true), (true, false)] {
                let points = records
                    .iter()
                    .filter_map(|r| {
                        let side = if pick { &r.train } else { &r.valid };
                        side.iter()
                            .find(|(k, _)| k == name)
                            .map(|(_, v)| (r.epoch, *v))
                    })
                    .collect();
                out.push(Series {
                    name: short.clone(),
                    points,
                    color,
                    dashed,
                });
            }
        }
        out
    };
    let half = (WIDTH / 2) as i64;
    panel(
        &mut canvas,
        (10, 40, half - 20, HEIGHT as i64 - 60),
        "loss per epoch",
        &series_of(true),
        epochs,
    );
    panel(
        &mut canvas,
        (half + 10, 40, half - 20, HEIGHT as i64 - 60),
        "accuracy per epoch",
        &series_of(false),
        epochs,
    );
    let mut png_bytes = Vec::new();
    let encode_err = |e: png::EncodingError| TrainError::Checkpoint {
        path: "metrics.png".into(),
        message: format!("cannot encode the plot: {e}"),
    };
    {
        let mut encoder = png::Encoder::new(&mut png_bytes, WIDTH as u32, HEIGHT as u32);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(encode_err)?;
        writer
            .write_image_data(&canvas.pixels)
            .map_err(encode_err)?;
    }
    Ok(png_bytes)
}
