//! Charts drawn by the hub as SVG on the server (no chart library, no script, no internet):
//! a daily trend line with an optional target line, and an hour × weekday heat map.
//!
//! The SVG carries only numbers and fixed markup (labels are in the page's HTML, from the
//! catalogue), so nothing from outside needs escaping here. Each drawn point is a
//! `<circle class="pt">` and each heat-map cell a `<rect class="cell">`, so a test can count
//! them. Pure: no I/O.

use std::fmt::Write;

const WIDTH: f64 = 300.0;
const HEIGHT: f64 = 90.0;
const PAD: f64 = 6.0;

/// A daily trend: one point per day with a value (days without one leave a gap), and a dashed
/// target line at `target` when the business has one. The y axis runs from 0 to the largest
/// of the values and the target (times 1.1).
pub fn trend(values: &[Option<f64>], target: Option<f64>) -> String {
    let top = values
        .iter()
        .flatten()
        .copied()
        .chain(target)
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        * 1.1;
    let top = if top > 0.0 { top } else { 1.0 };
    let n = values.len().max(1);
    let x = |i: usize| {
        if n == 1 {
            WIDTH / 2.0
        } else {
            PAD + (WIDTH - 2.0 * PAD) * i as f64 / (n - 1) as f64
        }
    };
    let y = |v: f64| HEIGHT - PAD - (HEIGHT - 2.0 * PAD) * (v.clamp(0.0, top) / top);
    let points = values
        .iter()
        .filter(|v| v.is_some_and(f64::is_finite))
        .count();
    let mut svg = format!(
        r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="none" data-points="{points}" role="img">"#
    );
    let _ = write!(
        svg,
        r#"<line class="axis" x1="{PAD}" y1="{b:.1}" x2="{r:.1}" y2="{b:.1}"/>"#,
        b = HEIGHT - PAD,
        r = WIDTH - PAD
    );
    if let Some(t) = target.filter(|t| t.is_finite()) {
        let _ = write!(
            svg,
            r#"<line class="target" x1="{PAD}" y1="{ty:.1}" x2="{r:.1}" y2="{ty:.1}" data-target="{t}"/>"#,
            ty = y(t),
            r = WIDTH - PAD
        );
    }
    // One polyline per run of consecutive days with a value.
    let mut run: Vec<String> = Vec::new();
    let flush = |run: &mut Vec<String>, svg: &mut String| {
        if run.len() > 1 {
            let _ = write!(
                svg,
                r#"<polyline class="line" points="{}"/>"#,
                run.join(" ")
            );
        }
        run.clear();
    };
    for (i, v) in values.iter().enumerate() {
        match v.filter(|v| v.is_finite()) {
            Some(v) => run.push(format!("{:.1},{:.1}", x(i), y(v))),
            None => flush(&mut run, &mut svg),
        }
    }
    flush(&mut run, &mut svg);
    for (i, v) in values.iter().enumerate() {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            let _ = write!(
                svg,
                r#"<circle class="pt" cx="{:.1}" cy="{:.1}" r="2.5" data-value="{v}"/>"#,
                x(i),
                y(v)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Handovers by weekday (rows, Monday first) × hour (columns): one cell each, darker for more.
pub fn heat_map(grid: &[Vec<i64>]) -> String {
    let max = grid.iter().flatten().copied().max().unwrap_or(0).max(1);
    let (cell, left, top) = (12.0, 4.0, 4.0);
    let mut svg = format!(
        r#"<svg class="heat" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" data-cells="{cells}" role="img">"#,
        w = left + 24.0 * cell + 4.0,
        h = top + 7.0 * cell + 4.0,
        cells = grid.iter().map(Vec::len).sum::<usize>()
    );
    for (d, row) in grid.iter().enumerate() {
        for (h, count) in row.iter().enumerate() {
            let level = *count as f64 / max as f64;
            let _ = write!(
                svg,
                r#"<rect class="cell" x="{:.0}" y="{:.0}" width="{w:.0}" height="{w:.0}" fill-opacity="{:.2}" data-day="{d}" data-hour="{h}" data-count="{count}"/>"#,
                left + h as f64 * cell,
                top + d as f64 * cell,
                0.08 + 0.92 * level,
                w = cell - 1.0
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trend_draws_one_point_per_day_with_a_value_and_its_target() {
        let svg = trend(&[Some(0.1), None, Some(0.02), Some(0.0)], Some(0.05));
        assert_eq!(svg.matches(r#"class="pt""#).count(), 3);
        assert!(svg.contains(r#"data-points="3""#));
        assert!(svg.contains(r#"class="target""#));
        // The gap splits the line: one run of one point (no line), one of two.
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(!trend(&[Some(1.0)], None).contains("target"));
    }

    #[test]
    fn a_heat_map_has_a_cell_per_weekday_and_hour() {
        let mut grid = vec![vec![0i64; 24]; 7];
        grid[2][9] = 4;
        let svg = heat_map(&grid);
        assert_eq!(svg.matches(r#"class="cell""#).count(), 168);
        assert!(svg.contains(r#"data-day="2" data-hour="9" data-count="4""#));
    }
}
