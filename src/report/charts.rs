//! The bar charts and histograms, and the frame every chart is drawn in: plotters' SVG
//! backend writing plotters' SVG backend into strings and inlined in the page.
//!
//! Every chart takes aggregates only, so its size is bounded by the number of bars, bins or
//! points given, never by the number of customers. Category labels are drawn by hand at the
//! pixel position of their bar, which keeps long segment names aligned. A chart that cannot
//! be drawn becomes a short message instead of an error.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::html;

pub type R = Result<(), Box<dyn std::error::Error>>;
pub type Root<'a> = DrawingArea<SVGBackend<'a>, Shift>;

pub const BLUE: RGBColor = RGBColor(0, 114, 178);
pub const SKY: RGBColor = RGBColor(86, 180, 233);
pub const ORANGE: RGBColor = RGBColor(230, 159, 0);
pub const GREEN: RGBColor = RGBColor(0, 158, 115);
pub const RED: RGBColor = RGBColor(213, 94, 0);
pub const GREY: RGBColor = RGBColor(140, 150, 160);
pub const INK: RGBColor = RGBColor(31, 41, 51);
pub const LIGHT: RGBColor = RGBColor(226, 230, 236);
/// Width of a chart that spans the page; `HALF` fits two side by side.
pub const WIDTH: u32 = 900;
pub const HALF: u32 = 520;

/// One horizontal bar.
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub color: RGBColor,
}

pub fn text(size: f64, color: &RGBColor, h: HPos, v: VPos) -> TextStyle<'_> {
    TextStyle::from(("sans-serif", size).into_font())
        .color(color)
        .pos(Pos::new(h, v))
}

pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

pub fn finite_max(values: impl Iterator<Item = f64>) -> f64 {
    let m = values.filter(|v| v.is_finite()).fold(0.0, f64::max);
    if m > 0.0 { m } else { 1.0 }
}

pub fn fin(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

/// Draws into a fresh SVG and returns it with a class, role and aria-label, without the
/// `xmlns` attribute (inline SVG in HTML needs none, and the page carries no URL).
pub fn svg(label: &str, w: u32, h: u32, draw: impl FnOnce(&Root) -> R) -> String {
    let mut buf = String::new();
    let res = {
        let root = SVGBackend::with_string(&mut buf, (w, h)).into_drawing_area();
        let r = root
            .fill(&WHITE)
            .map_err(Into::into)
            .and_then(|_| draw(&root));
        r.and_then(|_| root.present().map_err(Into::into))
    };
    if let Err(e) = res {
        return html::empty(&format!("The chart “{label}” could not be drawn: {e}"));
    }
    let body = buf.find('>').map(|i| &buf[i + 1..]).unwrap_or("");
    format!(
        "<svg class=\"chart\" role=\"img\" aria-label=\"{l}\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\"><title>{l}</title>{body}",
        l = html::esc(label)
    )
}

/// Horizontal bars, first item on top, value written at the end of each bar.
pub fn hbars(label: &str, width: u32, bars: &[Bar], fmt: &dyn Fn(f64) -> String) -> String {
    let n = bars.len().max(1);
    let longest = bars.iter().map(|b| b.label.chars().count()).max();
    let label_w = (longest.unwrap_or(4).min(28) as u32) * 8 + 18;
    let h = 50 + 26 * n as u32;
    let max = finite_max(bars.iter().map(|b| b.value)) * 1.22;
    svg(label, width, h, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(10)
            .margin_right(24)
            .x_label_area_size(26)
            .y_label_area_size(label_w)
            .build_cartesian_2d(0f64..max, 0f64..n as f64)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_labels(5)
            .x_label_formatter(&|v| html::short(*v))
            .light_line_style(TRANSPARENT)
            .bold_line_style(LIGHT)
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 15))
            .draw()?;
        for (i, b) in bars.iter().enumerate() {
            let y = (n - 1 - i) as f64;
            let v = fin(b.value).max(0.0);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, y + 0.18), (v, y + 0.82)],
                b.color.filled(),
            )))?;
            let (px, py) = chart.backend_coord(&(v, y + 0.5));
            let s = text(16.0, &INK, HPos::Left, VPos::Center);
            root.draw(&Text::new(fmt(b.value), (px + 5, py), s))?;
            let (lx, _) = chart.backend_coord(&(0.0, y));
            let s = text(16.0, &INK, HPos::Right, VPos::Center);
            root.draw(&Text::new(clip(&b.label, 28), (lx - 8, py), s))?;
        }
        Ok(())
    })
}

/// Vertical bars grouped by category, one colour per series, with a legend.
pub fn grouped(label: &str, cats: &[String], series: &[(&str, Vec<f64>, RGBColor)]) -> String {
    let n = cats.len().max(1);
    let m = series.len().max(1);
    let max = finite_max(series.iter().flat_map(|s| s.1.iter().copied())) * 1.2;
    svg(label, WIDTH, 320, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..n as f64, 0f64..max)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_labels(6)
            .y_label_formatter(&|v| html::short(*v))
            .light_line_style(TRANSPARENT)
            .bold_line_style(LIGHT)
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 15))
            .draw()?;
        let width = 0.7 / m as f64;
        for (j, (name, values, color)) in series.iter().enumerate() {
            let color = *color;
            chart
                .draw_series(values.iter().enumerate().map(|(k, v)| {
                    let x0 = k as f64 + 0.15 + j as f64 * width;
                    Rectangle::new([(x0, 0.0), (x0 + width * 0.92, fin(*v))], color.filled())
                }))?
                .label(*name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled())
                });
        }
        for (k, c) in cats.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(k as f64 + 0.5, 0.0));
            let s = text(16.0, &INK, HPos::Center, VPos::Top);
            root.draw(&Text::new(clip(c, 14), (px, py + 6), s))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(LIGHT)
            .label_font(("sans-serif", 16))
            .draw()?;
        Ok(())
    })
}

/// A histogram of pre-binned counts (from, to, count).
pub fn histogram(
    label: &str,
    what: &str,
    bins: &[(f64, f64, u64)],
    xfmt: &dyn Fn(f64) -> String,
) -> String {
    let lo = bins
        .iter()
        .map(|b| b.0)
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    let hi = bins
        .iter()
        .map(|b| b.1)
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let max = finite_max(bins.iter().map(|b| b.2 as f64)) * 1.1;
    svg(label, HALF, 300, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .margin_right(20)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(lo..hi, 0f64..max)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(6)
            .x_label_formatter(&|v| xfmt(*v))
            .x_desc(what)
            .y_desc("customers")
            .y_labels(5)
            .y_label_formatter(&|v| html::short(*v))
            .light_line_style(TRANSPARENT)
            .bold_line_style(LIGHT)
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 15))
            .draw()?;
        chart.draw_series(
            bins.iter()
                .filter(|b| b.0.is_finite() && b.1.is_finite())
                .map(|b| {
                    let mut r =
                        Rectangle::new([(b.0, 0.0), (b.1, b.2 as f64)], BLUE.mix(0.85).filled());
                    r.set_margin(0, 0, 1, 1);
                    r
                }),
        )?;
        Ok(())
    })
}
