//! `--plot FILE.svg`: the drill at a glance. Top: pktgen's received (and sent) rate over time,
//! with a vertical line at each step, coloured by kind. Middle: each removal's latency, and its
//! grace period when l2fwd reports it, on the same time axis. Bottom: the longest loop gap of
//! any l2fwd worker in each loop-gap window (100 ms, and cut at every step; when l2fwd keeps
//! them), drawn as a step line over each window's span.

use crate::run::Outcome;
use anyhow::{anyhow, Result};
use plotters::prelude::*;
use std::path::Path;

fn kind_color(kind: &str) -> RGBColor {
    match kind {
        "remove" => RGBColor(214, 39, 40),
        "add" => RGBColor(44, 160, 44),
        "fault" => RGBColor(255, 127, 14),
        "rate" => RGBColor(148, 103, 189),
        "exec" => RGBColor(140, 86, 75),
        _ => RGBColor(127, 127, 127),
    }
}

/// Draws `o` into the SVG file `path`; `title` heads it.
pub fn plot(path: &Path, o: &Outcome, title: &str) -> Result<()> {
    draw(path, o, title).map_err(|e| anyhow!("cannot draw {}: {e}", path.display()))
}

fn draw(path: &Path, o: &Outcome, title: &str) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (1200, 860)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 20))?;
    let (top, rest) = root.split_vertically(430);
    let (mid, bottom) = rest.split_vertically(230);

    let t_end = o
        .series
        .iter()
        .map(|p| p.t_ms)
        .chain(o.steps.iter().map(|s| s.end_ms))
        .fold(o.steps_end_ms, f64::max)
        / 1e3;
    let t_start = o.series.iter().map(|p| p.t_ms).fold(0.0, f64::min).min(0.0) / 1e3;
    let x = t_start..(t_end * 1.02).max(t_start + 1.0);

    // The rate.
    let max_pps = o
        .series
        .iter()
        .map(|p| p.rx_pps.max(p.tx_pps))
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.15;
    let mut chart = ChartBuilder::on(&top)
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(80)
        .build_cartesian_2d(x.clone(), 0f64..max_pps)?;
    chart
        .configure_mesh()
        .y_desc(format!("packets/s ({})", o.series_source))
        .x_desc("seconds since traffic flowed")
        .draw()?;
    let mut kinds: Vec<&str> = o.steps.iter().map(|s| s.kind).collect();
    kinds.sort();
    kinds.dedup();
    for kind in kinds {
        let c = kind_color(kind);
        chart
            .draw_series(o.steps.iter().filter(|s| s.kind == kind).map(|s| {
                let t = s.start_ms / 1e3;
                PathElement::new(vec![(t, 0.0), (t, max_pps)], c.mix(0.5).stroke_width(1))
            }))?
            .label(format!("step: {kind}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    if o.steps.len() <= 40 {
        chart.draw_series(o.steps.iter().map(|s| {
            Text::new(
                format!("{}", s.index),
                (s.start_ms / 1e3, max_pps * 0.97),
                ("sans-serif", 11).into_font().color(&kind_color(s.kind)),
            )
        }))?;
    }
    let tx: Vec<(f64, f64)> = o.series.iter().map(|p| (p.t_ms / 1e3, p.tx_pps)).collect();
    let rx: Vec<(f64, f64)> = o.series.iter().map(|p| (p.t_ms / 1e3, p.rx_pps)).collect();
    chart
        .draw_series(LineSeries::new(tx, BLUE.mix(0.4).stroke_width(1)))?
        .label("tx pps")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLUE.mix(0.4)));
    chart
        .draw_series(LineSeries::new(rx, BLACK.stroke_width(2)))?
        .label("rx pps")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;

    // Removal latencies.
    let max_us = o
        .removals
        .iter()
        .map(|r| r.latency_us)
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.15;
    let mut chart = ChartBuilder::on(&mid)
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(80)
        .build_cartesian_2d(x.clone(), 0f64..max_us)?;
    chart
        .configure_mesh()
        .y_desc("removal latency, us")
        .draw()?;
    let red = kind_color("remove");
    chart
        .draw_series(
            o.removals
                .iter()
                .map(|r| Circle::new((r.t_ms / 1e3, r.latency_us), 3, red.filled())),
        )?
        .label(format!("removal latency ({} removals)", o.removals.len()))
        .legend(move |(x, y)| Circle::new((x + 9, y), 3, red.filled()));
    if o.removals.iter().any(|r| r.grace_us.is_some()) {
        chart
            .draw_series(o.removals.iter().filter_map(|r| {
                r.grace_us
                    .map(|g| Cross::new((r.t_ms / 1e3, g), 3, BLUE.stroke_width(1)))
            }))?
            .label("of which grace period")
            .legend(|(x, y)| Cross::new((x + 9, y), 3, BLUE.stroke_width(1)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;

    // Worker loop gaps.
    let max_gap = o
        .worker_gaps
        .iter()
        .map(|g| g.max_loop_gap_us)
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.15;
    let mut chart = ChartBuilder::on(&bottom)
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(80)
        .build_cartesian_2d(x, 0f64..max_gap)?;
    chart
        .configure_mesh()
        .y_desc("longest loop gap per window, us")
        .draw()?;
    if o.worker_gaps.is_empty() {
        chart.draw_series(std::iter::once(Text::new(
            "l2fwd reports no loop gaps",
            (0.0, max_gap / 2.0),
            ("sans-serif", 14),
        )))?;
    } else {
        // A step line: each window's value held over its span.
        chart.draw_series(LineSeries::new(
            o.worker_gaps.iter().flat_map(|g| {
                [
                    (g.start_ms / 1e3, g.max_loop_gap_us),
                    (g.end_ms / 1e3, g.max_loop_gap_us),
                ]
            }),
            RGBColor(23, 190, 207).stroke_width(2),
        ))?;
    }
    root.present()?;
    Ok(())
}
