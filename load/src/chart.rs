//! The PNG: for a ramp, throughput and latency against offered load (our
//! version of the seed report's cliff picture); for any other run, throughput,
//! p99 and the proxy's RSS over time (the soak's curve).

use std::path::Path;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::report::Report;

const SIZE: (u32, u32) = (1200, 900);

/// Makes the font at `font` the chart's "sans-serif" (plotters needs one to draw text).
pub fn use_font(font: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(font).map_err(|e| anyhow::anyhow!("font {}: {e}", font.display()))?;
    // plotters keeps fonts for the life of the process; one font is loaded once per run.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("{} is not a font", font.display()))
}

pub fn draw(report: &Report, path: &Path) -> anyhow::Result<()> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    if report.steps.is_empty() { timeline(report, &root) } else { cliff(report, &root) }?;
    root.present()?;
    Ok(())
}

/// A timeline panel: its title, its unit and its points.
type Panel<'a> = (&'a str, &'a str, Vec<(f64, f64)>);

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

fn max_of(values: impl Iterator<Item = f64>) -> f64 {
    values.fold(0.0, f64::max).max(1.0) * 1.1
}

fn cliff(report: &Report, root: &Area) -> anyhow::Result<()> {
    let steps = &report.steps;
    let (top, bottom) = root.split_vertically(SIZE.1 / 2);
    let x_max = max_of(steps.iter().map(|s| s.offered));
    let y_max = max_of(steps.iter().map(|s| s.offered.max(s.ok_per_sec)));
    let mut chart = ChartBuilder::on(&top)
        .caption(format!("{}: answered vs offered load", report.label), ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart.configure_mesh().x_desc("offered requests/s").y_desc("requests/s").draw()?;
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (x_max, x_max)], BLACK.mix(0.3)))?
        .label("offered")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.3)));
    let ok: Vec<(f64, f64)> = steps.iter().map(|s| (s.offered, s.ok_per_sec)).collect();
    chart
        .draw_series(LineSeries::new(ok.clone(), BLUE.stroke_width(3)))?
        .label("answered 2xx/s")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE.stroke_width(3)));
    chart.draw_series(ok.iter().map(|p| Circle::new(*p, 4, BLUE.filled())))?;
    let shed: Vec<(f64, f64)> = steps.iter().map(|s| (s.offered, s.shed_per_sec)).collect();
    chart
        .draw_series(LineSeries::new(shed, RED.stroke_width(2)))?
        .label("503/s (shed, Retry-After)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.stroke_width(2)));
    let failed: Vec<(f64, f64)> = steps.iter().map(|s| (s.offered, s.errors_per_sec)).collect();
    chart
        .draw_series(LineSeries::new(failed, BLACK.stroke_width(2)))?
        .label("other errors/s (timeouts, 5xx)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.stroke_width(2)));
    chart.configure_series_labels().position(SeriesLabelPosition::UpperLeft).border_style(BLACK).draw()?;

    let l_max = max_of(steps.iter().map(|s| s.p99_ms.max(250.0)));
    let mut chart = ChartBuilder::on(&bottom)
        .caption("admitted latency vs offered load", ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..l_max)?;
    chart.configure_mesh().x_desc("offered requests/s").y_desc("ms").draw()?;
    for (name, color, values) in [
        ("p50", GREEN, steps.iter().map(|s| (s.offered, s.p50_ms)).collect::<Vec<_>>()),
        ("p99", MAGENTA, steps.iter().map(|s| (s.offered, s.p99_ms)).collect()),
    ] {
        chart
            .draw_series(LineSeries::new(values, color.stroke_width(3)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(3)));
    }
    chart
        .draw_series(LineSeries::new([(0.0, 250.0), (x_max, 250.0)], RED.mix(0.5)))?
        .label("250 ms target")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED.mix(0.5)));
    chart.configure_series_labels().position(SeriesLabelPosition::UpperLeft).border_style(BLACK).draw()?;
    Ok(())
}

fn timeline(report: &Report, root: &Area) -> anyhow::Result<()> {
    let samples = &report.samples;
    let panels = root.split_evenly((3, 1));
    let t_max = samples.last().map_or(1.0, |s| s.t_secs).max(1.0);
    let series: [Panel; 3] = [
        ("answered 2xx/s", "requests/s", samples.iter().map(|s| (s.t_secs, s.ok_per_sec)).collect()),
        ("p99 of each period", "ms", samples.iter().map(|s| (s.t_secs, s.p99_ms)).collect()),
        ("proxy RSS", "MiB", samples.iter().filter_map(|s| Some((s.t_secs, s.proxy_rss_mib?))).collect()),
    ];
    for (panel, (name, unit, values)) in panels.iter().zip(series) {
        let y_max = max_of(values.iter().map(|v| v.1));
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("{}: {name}", report.label), ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..t_max, 0.0..y_max)?;
        chart.configure_mesh().x_desc("seconds").y_desc(unit).draw()?;
        chart.draw_series(LineSeries::new(values, BLUE.stroke_width(2)))?;
    }
    Ok(())
}
