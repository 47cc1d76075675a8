//! PNG charts of a comparison, drawn with plotters: throughput against connections and the
//! latency distribution, treehouse beside Dovecot.

use super::measure::PERCENTILES;
use super::report::WorkloadSummary;
use super::{ServerKind, Workload};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};
use std::path::Path;
use std::sync::OnceLock;

/// Width and height of each chart in pixels.
pub const CHART_SIZE_PX: (u32, u32) = (1200, 800);
/// File name of the throughput chart.
pub const THROUGHPUT_FILE: &str = "compare-throughput.png";
/// File name of the latency chart.
pub const LATENCY_FILE: &str = "compare-latency.png";

/// Loads the chart font once; every chart's text uses it.
fn ensure_font(font_path: &Path) -> Result<(), String> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let bytes = std::fs::read(font_path)
                .map_err(|e| format!("font {}: {e}", font_path.display()))?;
            // The font lives for the rest of the process, as plotters requires.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| format!("font {}: not a usable TrueType font", font_path.display()))
        })
        .clone()
}

fn color(kind: ServerKind) -> RGBColor {
    match kind {
        ServerKind::Treehouse => RGBColor(0x1b, 0x7a, 0x3d),
        ServerKind::Dovecot => RGBColor(0xc2, 0x41, 0x0c),
    }
}

/// A log-scale range around `values` with some room above and below.
pub fn log_bounds(values: &[f64]) -> (f64, f64) {
    let positive: Vec<f64> = values.iter().copied().filter(|v| *v > 0.0).collect();
    let lo = positive.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = positive.iter().copied().fold(0.0, f64::max);
    if !lo.is_finite() || hi <= 0.0 {
        return (0.1, 10.0);
    }
    (lo / 2.0, hi * 2.0)
}

/// A log-axis label: only at 1, 2 and 5 times a power of ten, so labels never crowd.
pub fn log_axis_label(value: f64) -> String {
    if value <= 0.0 {
        return String::new();
    }
    let mantissa = value / 10f64.powf(value.log10().floor());
    if [1.0, 2.0, 5.0, 10.0]
        .iter()
        .any(|m| (mantissa - m).abs() < 1e-6)
    {
        axis_number(value)
    } else {
        String::new()
    }
}

/// A number as an axis label: no decimals from 10 up, two significant ones below.
pub fn axis_number(value: f64) -> String {
    if value >= 10.0 {
        format!("{value:.0}")
    } else if value >= 1.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// The label of category `x` (an index drawn as a float), or "" between categories.
fn category_label(x: f64, labels: &[String]) -> String {
    let index = x.round();
    if (x - index).abs() > 1e-6 || index < 0.0 {
        return String::new();
    }
    labels.get(index as usize).cloned().unwrap_or_default()
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// One panel: categories on x, a log scale on y, a line per server.
fn panel(
    area: &Area<'_>,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    categories: &[String],
    lines: &[(ServerKind, Vec<Option<f64>>)],
) -> Result<(), String> {
    let values: Vec<f64> = lines
        .iter()
        .flat_map(|(_, v)| v.iter().flatten().copied())
        .collect();
    let (lo, hi) = log_bounds(&values);
    let n = categories.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.4..(n - 0.6), (lo..hi).log_scale())
        .map_err(|e| e.to_string())?;
    let x_label = |x: &f64| category_label(*x, categories);
    let y_label = |y: &f64| log_axis_label(*y);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .x_labels(categories.len() * 4 + 1)
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(|e| e.to_string())?;
    for (kind, values) in lines {
        let c = color(*kind);
        let points: Vec<(f64, f64)> = values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.filter(|v| *v > 0.0).map(|v| (i as f64, v)))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), c.stroke_width(3)))
            .map_err(|e| e.to_string())?
            .label(kind.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], c.stroke_width(3)));
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 5, c.filled())))
            .map_err(|e| e.to_string())?;
        let value_style = TextStyle::from(("sans-serif", 14)).color(&c);
        chart
            .draw_series(points.iter().map(|&(x, y)| {
                // The higher line's values go above its points, the others' below.
                let highest = lines
                    .iter()
                    .filter_map(|(_, v)| v.get(x as usize).copied().flatten())
                    .all(|other| other <= y);
                let (dy, vpos) = if highest {
                    (-9, VPos::Bottom)
                } else {
                    (9, VPos::Top)
                };
                let style = value_style.pos(Pos::new(HPos::Center, vpos));
                EmptyElement::at((x, y)) + Text::new(axis_number(y), (0, dy), style)
            }))
            .map_err(|e| e.to_string())?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

/// A chart panel's title, y-axis description and the workloads it shows.
type Family = (&'static str, &'static str, fn(&Workload) -> bool);

/// Throughput against connections: LMTP 4 KiB, LMTP 64 KiB and the IMAP mix, both servers.
pub fn throughput(path: &Path, font: &Path, summaries: &[WorkloadSummary]) -> Result<(), String> {
    ensure_font(font)?;
    let root = BitMapBackend::new(path, CHART_SIZE_PX).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (top, bottom) = root.split_vertically(60);
    top.titled(
        "treehouse and Dovecot, same disk, same load (medians over rounds)",
        ("sans-serif", 26),
    )
    .map_err(|e| e.to_string())?;
    let panels = bottom.split_evenly((1, 3));
    let families: [Family; 3] = [
        (
            "LMTP 4 KiB",
            "durable deliveries/s",
            |w| matches!(w, Workload::Lmtp { size_bytes, .. } if *size_bytes < 64 << 10),
        ),
        (
            "LMTP 64 KiB",
            "durable deliveries/s",
            |w| matches!(w, Workload::Lmtp { size_bytes, .. } if *size_bytes >= 64 << 10),
        ),
        ("IMAP command mix", "checked commands/s", |w| {
            matches!(w, Workload::Imap { .. })
        }),
    ];
    for (area, (title, y_desc, wanted)) in panels.iter().zip(families) {
        let rows: Vec<&WorkloadSummary> =
            summaries.iter().filter(|s| wanted(&s.workload)).collect();
        let categories: Vec<String> = rows
            .iter()
            .map(|s| s.workload.connections().to_string())
            .collect();
        let lines: Vec<(ServerKind, Vec<Option<f64>>)> = ServerKind::BOTH
            .iter()
            .map(|&k| (k, rows.iter().map(|s| s.of(k).ops_per_s).collect()))
            .collect();
        panel(area, title, "connections", y_desc, &categories, &lines)?;
    }
    root.present().map_err(|e| e.to_string())
}

/// Latency percentiles of every workload, both servers, one panel per workload.
pub fn latency(path: &Path, font: &Path, summaries: &[WorkloadSummary]) -> Result<(), String> {
    ensure_font(font)?;
    let root = BitMapBackend::new(path, CHART_SIZE_PX).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (top, bottom) = root.split_vertically(60);
    top.titled(
        "Latency distribution, ms (medians over rounds; LMTP until the durable reply)",
        ("sans-serif", 26),
    )
    .map_err(|e| e.to_string())?;
    let columns = summaries.len().div_ceil(2).max(1);
    let panels = bottom.split_evenly((2, columns));
    let categories: Vec<String> = PERCENTILES.iter().map(|p| format!("p{p}")).collect();
    for (area, s) in panels.iter().zip(summaries) {
        let lines: Vec<(ServerKind, Vec<Option<f64>>)> = ServerKind::BOTH
            .iter()
            .map(|&k| (k, s.of(k).latency_ms.clone()))
            .collect();
        panel(
            area,
            &s.workload.name(),
            "percentile",
            "ms",
            &categories,
            &lines,
        )?;
    }
    root.present().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::report::ServerFigures;
    use super::*;

    fn summary(workload: Workload, treehouse: f64, dovecot: f64) -> WorkloadSummary {
        let figures = |ops: f64| ServerFigures {
            ops_per_s: Some(ops),
            latency_ms: PERCENTILES.iter().map(|p| Some(1000.0 / ops * p)).collect(),
            ..ServerFigures::default()
        };
        WorkloadSummary {
            workload,
            treehouse: figures(treehouse),
            dovecot: figures(dovecot),
        }
    }

    /// Width and height of a PNG file, from its IHDR chunk.
    fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
        if bytes.get(..8)? != b"\x89PNG\r\n\x1a\n" || bytes.get(12..16)? != b"IHDR" {
            return None;
        }
        let be = |at: usize| Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
        Some((be(16)?, be(20)?))
    }

    #[test]
    fn charts_are_written_as_png() {
        let font = Path::new(super::super::FONT_PATH);
        assert!(
            font.exists(),
            "{} is missing: install Debian's fonts-dejavu-core (scripts/test does)",
            font.display()
        );
        let summaries: Vec<WorkloadSummary> = [
            (
                Workload::Lmtp {
                    size_bytes: 4 << 10,
                    connections: 1,
                },
                900.0,
                100.0,
            ),
            (
                Workload::Lmtp {
                    size_bytes: 4 << 10,
                    connections: 32,
                },
                9000.0,
                700.0,
            ),
            (Workload::Imap { connections: 32 }, 12000.0, 4000.0),
        ]
        .into_iter()
        .map(|(w, t, d)| summary(w, t, d))
        .collect();
        let dir = std::env::temp_dir().join(format!("treehouse-charts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary folder");
        for (file, draw) in [
            (
                "t.png",
                throughput as fn(&Path, &Path, &[WorkloadSummary]) -> Result<(), String>,
            ),
            ("l.png", latency),
        ] {
            let path = dir.join(file);
            draw(&path, font, &summaries).expect("drawn");
            let bytes = std::fs::read(&path).expect("written");
            assert_eq!(png_size(&bytes), Some(CHART_SIZE_PX), "{file}");
        }
        std::fs::remove_dir_all(&dir).expect("removed");
    }

    #[test]
    fn log_bounds_leave_room_and_survive_empty_input() {
        assert_eq!(log_bounds(&[10.0, 1000.0, 0.0]), (5.0, 2000.0));
        assert_eq!(log_bounds(&[]), (0.1, 10.0));
    }

    #[test]
    fn labels_only_on_categories() {
        let labels = ["1".to_owned(), "32".to_owned()];
        assert_eq!(category_label(0.0, &labels), "1");
        assert_eq!(category_label(1.0, &labels), "32");
        assert_eq!(category_label(0.5, &labels), "");
        assert_eq!(category_label(-0.25, &labels), "");
        assert_eq!(category_label(2.0, &labels), "");
        assert_eq!(axis_number(12345.6), "12346");
        assert_eq!(axis_number(2.25), "2.2");
        assert_eq!(axis_number(0.125), "0.12");
        assert_eq!(log_axis_label(200.0), "200");
        assert_eq!(log_axis_label(0.5), "0.50");
        assert_eq!(log_axis_label(300.0), "");
        assert_eq!(log_axis_label(0.0), "");
    }
}
