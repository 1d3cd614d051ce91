//! The curve charts: lapse alerts over time, the 80/20 curve and the uplift intervals.
//!
//! Split from `charts.rs` (bars and histograms) to keep files short; both share its frame,
//! palette and text helpers. Each takes at most a few hundred points.

use chrono::{Duration, NaiveDate};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use crate::report::charts::{
    BLUE, GREEN, GREY, INK, LIGHT, ORANGE, R, RED, Root, SKY, WIDTH, clip, fin, finite_max, svg,
    text,
};
use crate::report::html;

/// Lines over dates, with vertical markers (date, text) such as segment alerts.
pub fn lines(
    label: &str,
    dates: &[NaiveDate],
    series: &[(&str, Vec<f64>, RGBColor)],
    marks: &[(NaiveDate, String)],
) -> String {
    let Some(&first) = dates.first() else {
        return html::empty("No runs to draw yet.");
    };
    let day = |d: &NaiveDate| (*d - first).num_days() as f64;
    let span = dates.iter().map(day).fold(1.0, f64::max);
    let max = finite_max(series.iter().flat_map(|s| s.1.iter().copied())) * 1.25;
    let in_range: Vec<_> = marks
        .iter()
        .filter(|m| (0.0..=span).contains(&day(&m.0)))
        .collect();
    svg(label, WIDTH, 340, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .margin_top(36)
            .margin_right(24)
            .x_label_area_size(28)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5..span + 0.5, 0f64..max)?;
        let fmt_day = |v: &f64| {
            (first + Duration::days(v.round() as i64))
                .format("%d %b")
                .to_string()
        };
        chart
            .configure_mesh()
            .x_labels(8)
            .x_label_formatter(&fmt_day)
            .y_labels(6)
            .y_label_formatter(&|v| html::short(*v))
            .light_line_style(TRANSPARENT)
            .bold_line_style(LIGHT)
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 15))
            .draw()?;
        // Marks are named on the chart only when few enough not to overlap.
        for (d, what) in &in_range {
            let x = day(d);
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x, 0.0), (x, max * 0.93)],
                RED.stroke_width(2),
            )))?;
            if in_range.len() <= 4 {
                let (px, py) = chart.backend_coord(&(x, max * 0.93));
                let s = text(14.0, &RED, HPos::Center, VPos::Bottom);
                root.draw(&Text::new(clip(what, 22), (px, py - 2), s))?;
            }
        }
        // The legend sits above the plot so it never hides a line or a mark.
        let mut legend: Vec<(String, RGBColor)> =
            series.iter().map(|s| (s.0.to_string(), s.2)).collect();
        if !in_range.is_empty() {
            legend.push(("week with a segment alert".into(), RED));
        }
        legend_above(root, legend)?;
        for (_, values, color) in series {
            let color = *color;
            let pts: Vec<(f64, f64)> = dates
                .iter()
                .zip(values)
                .map(|(d, v)| (day(d), fin(*v)))
                .collect();
            chart.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?;
            if pts.len() <= 90 {
                chart.draw_series(pts.iter().map(|p| Circle::new(*p, 2, color.filled())))?;
            }
        }
        Ok(())
    })
}

/// A legend in one row above the plot: a short line of each colour and its name.
fn legend_above(root: &Root, legend: Vec<(String, RGBColor)>) -> R {
    let mut x = 70;
    for (name, color) in legend {
        root.draw(&PathElement::new(
            vec![(x, 16), (x + 18, 16)],
            color.stroke_width(3),
        ))?;
        let s = text(16.0, &INK, HPos::Left, VPos::Center);
        root.draw(&Text::new(name.clone(), (x + 24, 16), s))?;
        x += 24 + name.chars().count() as i32 * 8 + 24;
    }
    Ok(())
}

/// Revenue share reached at a customer share, by linear interpolation of the curve.
pub fn share_at(points: &[(f64, f64)], x: f64) -> Option<f64> {
    let mut prev: Option<(f64, f64)> = None;
    for &(px, py) in points {
        if px >= x {
            return Some(match prev {
                Some((qx, qy)) if px > qx => qy + (py - qy) * (x - qx) / (px - qx),
                _ => py,
            });
        }
        prev = Some((px, py));
    }
    prev.map(|p| p.1)
}

/// The 80/20 curve with the grade bands shaded and named, and the top-20% point marked.
pub fn pareto(label: &str, points: &[(f64, f64)], grades: &[(String, f64)]) -> String {
    let tints = [
        BLUE.mix(0.16),
        SKY.mix(0.14),
        ORANGE.mix(0.12),
        GREY.mix(0.12),
    ];
    svg(label, WIDTH, 360, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(14)
            .margin_right(24)
            .x_label_area_size(46)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..1f64, 0f64..1.08f64)?;
        let mut start = 0.0;
        for (i, (grade, end)) in grades.iter().enumerate() {
            let end = fin(*end).clamp(start, 1.0);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(start, 0.0), (end, 1.08)],
                tints[i % tints.len()].filled(),
            )))?;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(end, 0.0), (end, 1.08)],
                GREY.stroke_width(1),
            )))?;
            let (px, py) = chart.backend_coord(&((start + end) / 2.0, 1.06));
            let s = text(16.0, &INK, HPos::Center, VPos::Top);
            root.draw(&Text::new(format!("Grade {}", clip(grade, 6)), (px, py), s))?;
            start = end;
        }
        chart
            .configure_mesh()
            .x_labels(11)
            .y_labels(6)
            .x_label_formatter(&|v| format!("{:.0}%", v * 100.0))
            .y_label_formatter(&|v| format!("{:.0}%", v * 100.0))
            .x_desc("share of customers, best first")
            .y_desc("share of revenue")
            .light_line_style(TRANSPARENT)
            .bold_line_style(LIGHT)
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 15))
            .draw()?;
        chart.draw_series(LineSeries::new(
            vec![(0.0, 0.0), (1.0, 1.0)],
            GREY.stroke_width(1),
        ))?;
        let pts: Vec<(f64, f64)> = points.iter().map(|p| (fin(p.0), fin(p.1))).collect();
        chart.draw_series(LineSeries::new(pts.clone(), BLUE.stroke_width(3)))?;
        if let Some(y) = share_at(&pts, 0.2) {
            chart.draw_series(std::iter::once(Circle::new((0.2, y), 5, RED.filled())))?;
            let (px, py) = chart.backend_coord(&(0.2, y));
            let s = text(16.0, &RED, HPos::Left, VPos::Top);
            let msg = format!("top 20% → {:.0}% of revenue", y * 100.0);
            root.draw(&Text::new(msg, (px + 8, py + 4), s))?;
        }
        Ok(())
    })
}

/// Uplift per campaign as a point with its 95% interval, around a zero line.
/// Rows are (campaign, uplift, ci_low, ci_high), all fractions.
pub fn uplift(label: &str, rows: &[(String, f64, f64, f64)]) -> String {
    let n = rows.len().max(1);
    let lo = rows.iter().map(|r| fin(r.2)).fold(0.0, f64::min);
    let hi = rows.iter().map(|r| fin(r.3)).fold(0.0, f64::max);
    let pad = ((hi - lo) * 0.12).max(0.005);
    let longest = rows.iter().map(|r| r.0.chars().count()).max();
    let label_w = (longest.unwrap_or(4).min(28) as u32) * 8 + 18;
    svg(label, WIDTH, 60 + 34 * n as u32, |root| {
        let mut chart = ChartBuilder::on(root)
            .margin(12)
            .margin_right(28)
            .x_label_area_size(28)
            .y_label_area_size(label_w)
            .build_cartesian_2d(lo - pad..hi + pad, 0f64..n as f64)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_labels(7)
            .x_label_formatter(&|v| {
                if v.abs() < 1e-9 {
                    "0 = no effect".into()
                } else {
                    format!("{:+.1} pp", v * 100.0)
                }
            })
            .light_line_style(TRANSPARENT)
            .bold_line_style(LIGHT)
            .label_style(("sans-serif", 15))
            .axis_desc_style(("sans-serif", 15))
            .draw()?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(0.0, 0.0), (0.0, n as f64)],
            INK.stroke_width(1),
        )))?;
        for (i, (name, u, l, h)) in rows.iter().enumerate() {
            let y = (n - 1 - i) as f64 + 0.5;
            let (u, l, h) = (fin(*u), fin(*l), fin(*h));
            let color = if l > 0.0 {
                GREEN
            } else if h < 0.0 {
                RED
            } else {
                GREY
            };
            let style = color.stroke_width(2);
            chart.draw_series([
                PathElement::new(vec![(l, y), (h, y)], style),
                PathElement::new(vec![(l, y - 0.18), (l, y + 0.18)], style),
                PathElement::new(vec![(h, y - 0.18), (h, y + 0.18)], style),
            ])?;
            chart.draw_series(std::iter::once(Circle::new((u, y), 5, color.filled())))?;
            let (lx, py) = chart.backend_coord(&(lo - pad, y));
            let s = text(16.0, &INK, HPos::Right, VPos::Center);
            root.draw(&Text::new(clip(name, 28), (lx - 8, py), s))?;
        }
        Ok(())
    })
}
