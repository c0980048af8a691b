//! Minimal PNG pictures (no fonts needed): line charts of series and scenes of
//! points and segments. Numbers belong in the printed output, pictures show shape.

use image::{Rgb, RgbImage};
use std::path::Path;

pub const BLUE: Rgb<u8> = Rgb([40, 90, 200]);
pub const RED: Rgb<u8> = Rgb([210, 50, 40]);
pub const GREEN: Rgb<u8> = Rgb([40, 160, 70]);
pub const ORANGE: Rgb<u8> = Rgb([230, 140, 20]);
const BLACK: Rgb<u8> = Rgb([20, 20, 20]);
const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const GREY: Rgb<u8> = Rgb([200, 200, 200]);

fn line(img: &mut RgbImage, (x0, y0): (f64, f64), (x1, y1): (f64, f64), color: Rgb<u8>) {
    let steps = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as usize).max(1);
    for k in 0..=steps {
        let t = k as f64 / steps as f64;
        let (x, y) = (x0 + t * (x1 - x0), y0 + t * (y1 - y0));
        for (dx, dy) in [(0, 0), (1, 0), (0, 1)] {
            let (px, py) = (x.round() as i64 + dx, y.round() as i64 + dy);
            if px >= 0 && py >= 0 && (px as u32) < img.width() && (py as u32) < img.height() {
                img.put_pixel(px as u32, py as u32, color);
            }
        }
    }
}

fn save(img: &RgbImage, path: &Path) -> Result<(), ds_runtime::Error> {
    img.save(path).map_err(|e| ds_runtime::Error::Io { path: path.display().to_string(), source: std::io::Error::other(e) })
}

/// A chart of `(xs, ys, color)` series on shared axes (y on a log scale when
/// `log_y`, non-positive values then skipped), with a frame and grid lines.
pub fn chart(path: &Path, series: &[(&[f64], &[f64], Rgb<u8>)], log_y: bool) -> Result<(), ds_runtime::Error> {
    let (w, h, m) = (640u32, 400u32, 40.0);
    let mut img = RgbImage::from_pixel(w, h, WHITE);
    let fy = |y: f64| if log_y { y.log10() } else { y };
    let points: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|(xs, ys, _)| xs.iter().zip(ys.iter()))
        .filter(|(_, y)| !log_y || **y > 0.0)
        .map(|(x, y)| (*x, fy(*y)))
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let (xmin, xmax) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (ymin, ymax) = points.iter().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let span = |lo: f64, hi: f64| if hi > lo { hi - lo } else { 1.0 };
    let to_px = |x: f64, y: f64| {
        (m + (x - xmin) / span(xmin, xmax) * (w as f64 - 2.0 * m), h as f64 - m - (y - ymin) / span(ymin, ymax) * (h as f64 - 2.0 * m))
    };
    for k in 1..4 {
        let gy = m + k as f64 * (h as f64 - 2.0 * m) / 4.0;
        line(&mut img, (m, gy), (w as f64 - m, gy), GREY);
    }
    line(&mut img, (m, m), (m, h as f64 - m), BLACK);
    line(&mut img, (m, h as f64 - m), (w as f64 - m, h as f64 - m), BLACK);
    for (xs, ys, color) in series {
        let pts: Vec<(f64, f64)> =
            xs.iter().zip(ys.iter()).filter(|(_, y)| !log_y || **y > 0.0).map(|(x, y)| to_px(*x, fy(*y))).collect();
        for pair in pts.windows(2) {
            line(&mut img, pair[0], pair[1], *color);
        }
    }
    save(&img, path)
}

/// A square scene of the unit box: `segments` between points, then the points.
pub fn scene(path: &Path, points: &[(f64, f64)], segments: &[(usize, usize)], wall_x: Option<f64>) -> Result<(), ds_runtime::Error> {
    let s = 400u32;
    let mut img = RgbImage::from_pixel(s, s, WHITE);
    let px = |(x, y): (f64, f64)| (x * s as f64, (1.0 - y) * s as f64);
    if let Some(wx) = wall_x {
        line(&mut img, px((wx, 0.0)), px((wx, 1.0)), GREY);
    }
    for (a, b) in segments {
        line(&mut img, px(points[*a]), px(points[*b]), BLUE);
    }
    for p in points {
        let (cx, cy) = px(*p);
        for dy in -3..=3 {
            line(&mut img, (cx - 3.0, cy + dy as f64), (cx + 3.0, cy + dy as f64), RED);
        }
    }
    save(&img, path)
}
