//! Pictures, through plotters with an embedded font (DejaVu Sans): charts with
//! a title, labelled axes, tick values, a legend and a log scale where the
//! values span decades; scenes of circles, segments and polygons, animated as
//! a GIF with a few PNG stills. Numbers belong in the printed output.

use crate::RunError;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Series colors, in order.
pub const COLORS: [RGBColor; 6] =
    [RGBColor(40, 90, 200), RGBColor(210, 50, 40), RGBColor(40, 160, 70), RGBColor(230, 140, 20), RGBColor(130, 60, 170), RGBColor(20, 20, 20)];
pub const BLUE: RGBColor = COLORS[0];
pub const RED: RGBColor = COLORS[1];
pub const GREEN: RGBColor = COLORS[2];
pub const ORANGE: RGBColor = COLORS[3];
pub const GREY: RGBColor = RGBColor(150, 150, 150);
const FONT: &str = "sans-serif";

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).unwrap_or_else(|_| panic!("DejaVu Sans is a valid font"));
    });
}

fn failed<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> RunError + '_ {
    move |e| RunError::Plot { path: path.to_path_buf(), message: e.to_string() }
}

/// One line of a chart, with an optional band (low, high) around it.
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    pub xs: Vec<f64>,
    pub ys: Vec<f64>,
    pub color: RGBColor,
    pub band: Option<(Vec<f64>, Vec<f64>)>,
}

impl Series {
    pub fn new(label: impl Into<String>, xs: Vec<f64>, ys: Vec<f64>, color: RGBColor) -> Series {
        Series { label: label.into(), xs, ys, color, band: None }
    }
}

/// How the y axis is scaled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    Linear,
    Log,
    /// Log where every value is positive and they span more than two decades.
    Auto,
}

/// A line chart.
#[derive(Clone, Debug)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub scale: Scale,
}

impl Chart {
    fn log_y(&self) -> bool {
        let ys = || self.series.iter().flat_map(|s| s.ys.iter().chain(s.band.iter().flat_map(|(lo, hi)| lo.iter().chain(hi)))).filter(|y| y.is_finite());
        match self.scale {
            Scale::Linear => false,
            Scale::Log => true,
            Scale::Auto => {
                let (lo, hi) = ys().fold((f64::MAX, f64::MIN), |(a, b), &y| (a.min(y), b.max(y)));
                lo > 0.0 && hi / lo > 100.0
            }
        }
    }
}

/// The loss against the iteration, titled `title`.
pub fn loss_curve(path: &Path, title: &str, losses: &[f64]) -> Result<PathBuf, RunError> {
    let xs = (0..losses.len()).map(|i| i as f64).collect();
    let chart = Chart {
        title: title.into(),
        x_label: "iteration".into(),
        y_label: "loss".into(),
        series: vec![Series::new("loss", xs, losses.to_vec(), BLUE)],
        scale: Scale::Auto,
    };
    draw_chart(path, &chart)?;
    Ok(path.to_path_buf())
}

/// Draws `chart` as a PNG at `path` (non-finite points, and non-positive ones
/// on a log scale, are left out).
pub fn draw_chart(path: &Path, chart: &Chart) -> Result<(), RunError> {
    draw_panels(path, std::slice::from_ref(chart))
}

/// Draws `charts` side by side as one PNG at `path`.
pub fn draw_panels(path: &Path, charts: &[Chart]) -> Result<(), RunError> {
    register_font();
    let root = BitMapBackend::new(path, (800 * charts.len().max(1) as u32, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(failed(path))?;
    for (chart, area) in charts.iter().zip(root.split_evenly((1, charts.len().max(1)))) {
        draw_on(&area, chart, path)?;
    }
    root.present().map_err(failed(path))
}

fn draw_on(root: &DrawingArea<BitMapBackend<'_>, Shift>, chart: &Chart, path: &Path) -> Result<(), RunError> {
    let log_y = chart.log_y();
    let keep = |y: f64| y.is_finite() && (!log_y || y > 0.0);
    let points = chart.series.iter().flat_map(|s| {
        let band = s.band.iter().flat_map(|(lo, hi)| s.xs.iter().zip(lo).chain(s.xs.iter().zip(hi)));
        s.xs.iter().zip(&s.ys).chain(band).filter(|(x, y)| x.is_finite() && keep(**y)).map(|(x, y)| (*x, *y)).collect::<Vec<_>>()
    });
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in points {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, if log_y { 0.1 } else { 0.0 }, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    if y1 <= y0 {
        let pad = if y0 == 0.0 { 1.0 } else { y0.abs() * 0.1 };
        (y0, y1) = (y0 - if log_y { 0.0 } else { pad }, y1 + pad);
    }
    let mut builder = ChartBuilder::on(root);
    builder.caption(&chart.title, (FONT, 22)).margin(15).x_label_area_size(45).y_label_area_size(75);
    if log_y {
        let mut c = builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale()).map_err(failed(path))?;
        c.configure_mesh().x_desc(&chart.x_label).y_desc(&chart.y_label).y_label_formatter(&|y| format!("{y:.0e}")).draw().map_err(failed(path))?;
        draw_series(&mut c, chart, keep, path)
    } else {
        let mut c = builder.build_cartesian_2d(x0..x1, y0..y1).map_err(failed(path))?;
        c.configure_mesh().x_desc(&chart.x_label).y_desc(&chart.y_label).draw().map_err(failed(path))?;
        draw_series(&mut c, chart, keep, path)
    }
}

fn draw_series<'a, Y>(
    c: &mut ChartContext<'a, BitMapBackend<'a>, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    chart: &Chart,
    keep: impl Fn(f64) -> bool,
    path: &Path,
) -> Result<(), RunError>
where
    Y: Ranged<ValueType = f64>,
{
    for s in &chart.series {
        if let Some((lo, hi)) = &s.band {
            let edge = |ys: &[f64]| s.xs.iter().zip(ys).filter(|(_, y)| keep(**y)).map(|(x, y)| (*x, *y)).collect::<Vec<_>>();
            let mut outline = edge(lo);
            outline.extend(edge(hi).into_iter().rev());
            c.draw_series(std::iter::once(Polygon::new(outline, s.color.mix(0.2)))).map_err(failed(path))?;
        }
        let points: Vec<(f64, f64)> = s.xs.iter().zip(&s.ys).filter(|(_, y)| keep(**y)).map(|(x, y)| (*x, *y)).collect();
        let color = s.color;
        c.draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(failed(path))?
            .label(&s.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    if chart.series.len() > 1 {
        c.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK).label_font((FONT, 15)).draw().map_err(failed(path))?;
    }
    Ok(())
}

/// Something drawn in a scene, in the scene's coordinates.
#[derive(Clone, Debug)]
pub enum Shape {
    Circle { center: (f64, f64), radius: f64, color: RGBColor },
    Segment { from: (f64, f64), to: (f64, f64), color: RGBColor, width: u32 },
    Polygon { points: Vec<(f64, f64)>, color: RGBColor },
}

/// Frames of a scene over a fixed view.
#[derive(Clone, Debug)]
pub struct Animation {
    pub title: String,
    pub x_range: (f64, f64),
    pub y_range: (f64, f64),
    pub frames: Vec<Vec<Shape>>,
}

fn draw_frame(area: &DrawingArea<BitMapBackend<'_>, Shift>, anim: &Animation, k: usize, path: &Path) -> Result<(), RunError> {
    area.fill(&WHITE).map_err(failed(path))?;
    let title = format!("{} (frame {}/{})", anim.title, k + 1, anim.frames.len());
    let mut c = ChartBuilder::on(area)
        .caption(title, (FONT, 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(40)
        .build_cartesian_2d(anim.x_range.0..anim.x_range.1, anim.y_range.0..anim.y_range.1)
        .map_err(failed(path))?;
    c.configure_mesh().light_line_style(WHITE).draw().map_err(failed(path))?;
    let px_per_unit = c.plotting_area().dim_in_pixel().0 as f64 / (anim.x_range.1 - anim.x_range.0);
    for shape in &anim.frames[k] {
        match shape {
            Shape::Circle { center, radius, color } => {
                let r = ((radius * px_per_unit).round() as i32).max(1);
                c.draw_series(std::iter::once(Circle::new(*center, r, color.filled())))
            }
            Shape::Segment { from, to, color, width } => c.draw_series(std::iter::once(PathElement::new(vec![*from, *to], color.stroke_width(*width)))),
            Shape::Polygon { points, color } => c.draw_series(std::iter::once(Polygon::new(points.clone(), color.mix(0.8).filled()))),
        }
        .map_err(failed(path))?;
    }
    Ok(())
}

/// Writes `DIR/NAME.gif` (every frame, `delay_ms` apart) and `stills` PNG
/// frames spread over the run, the last included; returns the files written.
pub fn animate(dir: &Path, name: &str, anim: &Animation, delay_ms: u32, stills: usize) -> Result<Vec<PathBuf>, RunError> {
    register_font();
    let size = (520, (520.0 * (anim.y_range.1 - anim.y_range.0) / (anim.x_range.1 - anim.x_range.0)).clamp(200.0, 900.0) as u32);
    let gif = dir.join(format!("{name}.gif"));
    {
        let root = BitMapBackend::gif(&gif, size, delay_ms).map_err(failed(&gif))?.into_drawing_area();
        for k in 0..anim.frames.len() {
            draw_frame(&root, anim, k, &gif)?;
            root.present().map_err(failed(&gif))?;
        }
    }
    let mut written = vec![gif];
    let n = anim.frames.len();
    let mut picks: Vec<usize> = (0..stills).map(|s| if stills > 1 { s * (n.saturating_sub(1)) / (stills - 1) } else { n.saturating_sub(1) }).collect();
    picks.dedup();
    for k in picks.into_iter().filter(|&k| k < n) {
        let png = dir.join(format!("{name}_{k:04}.png"));
        {
            let root = BitMapBackend::new(&png, size).into_drawing_area();
            draw_frame(&root, anim, k, &png)?;
            root.present().map_err(failed(&png))?;
        }
        written.push(png);
    }
    Ok(written)
}
