//! Formatting: percentiles, markdown tables and the SVG chart.

use std::fmt::Write;

use hdrhistogram::Histogram;

/// The percentiles every latency table shows.
pub const PERCENTILES: [(f64, &str); 4] =
    [(50.0, "p50"), (90.0, "p90"), (99.0, "p99"), (99.9, "p99.9")];

/// A percentile of a nanosecond histogram, in microseconds (NaN when empty).
pub fn us(h: &Histogram<u64>, p: f64) -> f64 {
    if h.is_empty() {
        f64::NAN
    } else {
        h.value_at_percentile(p) as f64 / 1000.0
    }
}

/// A microsecond figure for a table: `87.3`, `1,204`.
pub fn fmt_us(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else if v.abs() >= 1000.0 {
        group(v.round() as i64)
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A signed difference in microseconds: `+12.5`, `-3.0`.
pub fn fmt_delta(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else if v >= 0.0 {
        format!("+{}", fmt_us(v))
    } else {
        format!("-{}", fmt_us(-v))
    }
}

/// Thousands separators: `12,345`.
pub fn group(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// A ratio: `0.93×`.
pub fn fmt_ratio(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        "n/a".into()
    } else {
        format!("{v:.2}×")
    }
}

/// Bytes as MiB with one decimal.
pub fn mib(b: f64) -> String {
    format!("{:.1} MiB", b / (1024.0 * 1024.0))
}

/// A markdown table.
#[derive(Debug, Default)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| (*s).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "| {} |", self.header.join(" | "));
        let _ = writeln!(
            s,
            "|{}",
            self.header
                .iter()
                .enumerate()
                .map(|(i, _)| if i == 0 { "---|" } else { "---:|" })
                .collect::<String>()
        );
        for r in &self.rows {
            let _ = writeln!(s, "| {} |", r.join(" | "));
        }
        s
    }
}

/// One system's bars in the chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub values: Vec<f64>,
}

const COLORS: [&str; 6] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#b07aa1",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A grouped bar chart (one group per category, one bar per series) on a log10 axis.
pub fn bar_chart_svg(title: &str, unit: &str, categories: &[&str], series: &[Series]) -> String {
    let (w, h) = (760.0_f64, 420.0_f64);
    let (left, right, top, bottom) = (72.0, 16.0, 64.0, 48.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let finite: Vec<f64> = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let vmin = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let vmax = finite.iter().copied().fold(0.0, f64::max);
    let (lo, hi) = if finite.is_empty() {
        (0.0, 1.0)
    } else {
        (
            vmin.log10().floor(),
            vmax.log10().ceil().max(vmin.log10().floor() + 1.0),
        )
    };
    let y = |v: f64| top + ph - (v.log10() - lo) / (hi - lo) * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        w / 2.0,
        esc(title)
    );
    // Grid: every decade, with 2 and 5 in between.
    let mut d = lo as i32;
    while f64::from(d) <= hi {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powi(d);
            if v.log10() > hi + 1e-9 {
                break;
            }
            let yy = y(v);
            let (stroke, label) = if m == 1.0 {
                ("#bbb", true)
            } else {
                ("#e6e6e6", false)
            };
            let _ = writeln!(
                s,
                r#"<line x1="{left}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="{stroke}"/>"#,
                left + pw
            );
            if label || hi - lo <= 2.0 {
                let _ = writeln!(
                    s,
                    r##"<text x="{}" y="{:.1}" text-anchor="end" fill="#444">{}</text>"##,
                    left - 6.0,
                    yy + 4.0,
                    fmt_us(v)
                );
            }
        }
        d += 1;
    }
    let _ = writeln!(
        s,
        r##"<text x="16" y="{:.1}" transform="rotate(-90 16 {:.1})" text-anchor="middle" fill="#444">{} (log scale)</text>"##,
        top + ph / 2.0,
        top + ph / 2.0,
        esc(unit)
    );
    let gw = pw / categories.len().max(1) as f64;
    let bw = gw * 0.8 / series.len().max(1) as f64;
    for (ci, cat) in categories.iter().enumerate() {
        let gx = left + gw * ci as f64 + gw * 0.1;
        for (si, ser) in series.iter().enumerate() {
            let v = ser.values.get(ci).copied().unwrap_or(f64::NAN);
            if !(v.is_finite() && v > 0.0) {
                continue;
            }
            let x = gx + bw * si as f64;
            let yy = y(v).min(top + ph);
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{yy:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {} {}</title></rect>"#,
                bw - 2.0,
                top + ph - yy,
                COLORS[si % COLORS.len()],
                esc(&ser.name),
                fmt_us(v),
                esc(unit)
            );
            let _ = writeln!(
                s,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="9" fill="#222">{}</text>"##,
                x + (bw - 2.0) / 2.0,
                yy - 3.0,
                fmt_us(v)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            left + gw * (ci as f64 + 0.5),
            top + ph + 20.0,
            esc(cat)
        );
    }
    let _ = writeln!(
        s,
        r##"<line x1="{left}" x2="{left}" y1="{top}" y2="{}" stroke="#444"/><line x1="{left}" x2="{}" y1="{}" y2="{}" stroke="#444"/>"##,
        top + ph,
        left + pw,
        top + ph,
        top + ph
    );
    // Legend.
    let mut lx = left;
    for (si, ser) in series.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<rect x="{lx:.1}" y="36" width="12" height="12" fill="{}"/><text x="{:.1}" y="46">{}</text>"#,
            COLORS[si % COLORS.len()],
            lx + 16.0,
            esc(&ser.name)
        );
        lx += 24.0 + 7.5 * ser.name.len() as f64;
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(group(1234567), "1,234,567");
        assert_eq!(fmt_us(87.34), "87.3");
        assert_eq!(fmt_us(1204.4), "1,204");
        assert_eq!(fmt_delta(-3.0), "-3.0");
    }

    #[test]
    fn chart_is_well_formed() {
        let svg = bar_chart_svg(
            "t",
            "µs",
            &["p50", "p99"],
            &[
                Series {
                    name: "a".into(),
                    values: vec![50.0, 900.0],
                },
                Series {
                    name: "b".into(),
                    values: vec![f64::NAN, 1200.0],
                },
            ],
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<rect x=").count(), 3 + 2);
    }
}
