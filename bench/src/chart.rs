//! The chart: one horizontal bar per row, greenlet's cost over the best peer's (one more for a row
//! with a floor: greenlet's cost over the floor's), on a log scale, growing from the line at 1×
//! (left: greenlet does better; right: it does worse). Drawn with plotters' SVG backend only,
//! which needs no font files: the SVG names a font family and the viewer renders the text.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::model::Row;
use crate::report::Report;
use crate::stats::fmt_sig;

/// Pixels per bar.
const ROW_HEIGHT: u32 = 34;
/// Green: greenlet does at least as well as the best peer.
const BETTER: RGBColor = RGBColor(46, 139, 87);
/// Amber: greenlet is behind the best peer.
const WORSE: RGBColor = RGBColor(214, 120, 28);

/// Writes the chart of `report`'s ratios to `path`.
pub fn write_svg(report: &Report, path: &Path) -> Result<(), String> {
    let bars: Vec<(String, f64, String)> = report
        .rows
        .iter()
        .flat_map(|row| {
            let peer = row
                .ratio
                .map(|r| (label(row), r.cost, r.best_peer.name().to_string()));
            let floor = row.floor_ratio.map(|f| {
                (
                    format!("{} (floor)", label(row)),
                    f,
                    "the floor".to_string(),
                )
            });
            peer.into_iter().chain(floor)
        })
        .collect();
    let height = 150 + ROW_HEIGHT * bars.len().max(1) as u32;
    let root = SVGBackend::new(path, (1100, height)).into_drawing_area();
    draw(&root, report, &bars).map_err(|e| format!("chart: {e}"))?;
    let missing = report.rows.iter().filter(|r| r.ratio.is_none()).count();
    if missing > 0 && !bars.is_empty() {
        let text = format!(
            "{missing} row(s) without both a greenlet and a peer figure are not drawn: see report.md"
        );
        root.draw(&Text::new(
            text,
            (16, height as i32 - 18),
            ("sans-serif", 12).into_font().color(&RGBColor(90, 90, 90)),
        ))
        .map_err(|e| format!("chart: {e}"))?;
    }
    root.present().map_err(|e| format!("chart: {e}"))
}

/// Row labels short enough for the axis.
fn label(row: &Row) -> String {
    let case = row.case.split(" (").next().unwrap_or(&row.case);
    let case = case
        .replace("redis-benchmark ", "")
        .replace(", two coroutines", "")
        .replace("hello keep-alive, ", "");
    format!("{case} [{}]", row.unit)
}

type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn draw(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    report: &Report,
    bars: &[(String, f64, String)],
) -> DrawResult {
    area.fill(&WHITE)?;
    let title = format!(
        "greenlet cost ÷ best peer, or ÷ the floor (log scale; < 1× = greenlet better) — {}, {} cores",
        report.machine.cpu, report.machine.cores
    );
    if bars.is_empty() {
        area.draw(&Text::new(
            "no row has both a greenlet figure and a peer figure".to_string(),
            (40, 60),
            ("sans-serif", 18).into_font(),
        ))?;
        area.draw(&Text::new(title, (40, 20), ("sans-serif", 16).into_font()))?;
        return Ok(());
    }
    let lo = bars.iter().map(|b| b.1).fold(1.0f64, f64::min) / 2.0;
    // Room on the right for the label of the longest bar.
    let hi = bars.iter().map(|b| b.1).fold(1.0f64, f64::max) * 6.0;
    let n = bars.len() as i32;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(16)
        .x_label_area_size(36)
        .y_label_area_size(430)
        // Integer ranges are inclusive in plotters: 0..n-1 is n segments.
        .build_cartesian_2d((lo..hi).log_scale(), (0..n - 1).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(bars.len())
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => bars
                .get((n - 1 - *i) as usize)
                .map_or(String::new(), |b| b.0.clone()),
            _ => String::new(),
        })
        .x_desc("× the best peer's cost (or the floor's)")
        .x_label_formatter(&|v| format!("{}×", trim_zeros(&fmt_sig(*v))))
        .label_style(("sans-serif", 13))
        .draw()?;
    // Top row first: row i is drawn in segment n-1-i.
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, cost, _))| {
        let seg = n - 1 - i as i32;
        let color = if *cost <= 1.0 { BETTER } else { WORSE };
        let mut bar = Rectangle::new(
            [
                (1.0, SegmentValue::Exact(seg)),
                (*cost, SegmentValue::Exact(seg + 1)),
            ],
            color.filled(),
        );
        bar.set_margin(5, 5, 0, 0);
        bar
    }))?;
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, cost, peer))| {
        let seg = n - 1 - i as i32;
        Text::new(
            format!("{}× vs {peer}", trim_zeros(&fmt_sig(*cost))),
            (cost.max(1.0) * 1.06, SegmentValue::CenterOf(seg)),
            TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Left, VPos::Center)),
        )
    }))?;
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(1.0, SegmentValue::Exact(0)), (1.0, SegmentValue::Last)],
        BLACK.stroke_width(2),
    )))?;
    Ok(())
}

/// `1.00` → `1`, `2.50` → `2.5`, `120` → `120`.
fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}
