//! A small SVG chart of the run: requests per second (bars) and their p99 latency (a
//! line), second by second, with the phase boundary marked.

use std::fmt::Write as _;

use crate::tally::Second;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 60.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 40.0;

/// The chart of `seconds`, with a line at `boundary` (seconds) if given.
pub fn svg(title: &str, seconds: &[Second], boundary: Option<u64>) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let span = seconds.len().max(1) as f64;
    let most_requests = seconds.iter().map(|s| s.requests).max().unwrap_or(0).max(1) as f64;
    let most_p99 = seconds.iter().map(|s| s.p99_ms).max().unwrap_or(0).max(1) as f64;
    let x = |at: f64| LEFT + at / span * plot_w;
    let bar_w = (plot_w / span).max(1.0);
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="11">
<title>{title}</title>
<rect width="100%" height="100%" fill="#fff"/>
<text x="{LEFT}" y="18" font-size="13" font-weight="bold">{title}</text>
"##,
        title = escape(title)
    );
    for second in seconds {
        let h = second.requests as f64 / most_requests * plot_h;
        let _ = writeln!(
            out,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#9cc3a5"/>"##,
            x(second.at as f64),
            TOP + plot_h - h,
            bar_w,
            h
        );
    }
    let points: Vec<String> = seconds
        .iter()
        .filter(|s| s.requests > 0)
        .map(|s| {
            format!(
                "{:.1},{:.1}",
                x(s.at as f64) + bar_w / 2.0,
                TOP + plot_h - s.p99_ms as f64 / most_p99 * plot_h
            )
        })
        .collect();
    let _ = writeln!(
        out,
        r##"<polyline points="{}" fill="none" stroke="#b00020" stroke-width="1.5"/>"##,
        points.join(" ")
    );
    if let Some(at) = boundary {
        let bx = x(at as f64);
        let _ = writeln!(
            out,
            r##"<line x1="{bx:.1}" y1="{TOP}" x2="{bx:.1}" y2="{:.1}" stroke="#555" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.1}" fill="#555">anonymous | mixed</text>"##,
            TOP + plot_h,
            bx + 4.0,
            TOP + 12.0
        );
    }
    let bottom = TOP + plot_h;
    let _ = write!(
        out,
        r##"<line x1="{LEFT}" y1="{bottom}" x2="{:.1}" y2="{bottom}" stroke="#333"/>
<text x="{LEFT}" y="{:.1}">0 s</text><text x="{:.1}" y="{:.1}" text-anchor="end">{} s</text>
<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#2f6f3e">{most_requests:.0} req/s</text>
<text x="{:.1}" y="{:.1}" fill="#b00020">{most_p99:.0} ms p99</text>
<text x="{LEFT}" y="{:.1}" fill="#2f6f3e">bars: requests answered per second</text>
<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#b00020">line: their p99 latency</text>
</svg>
"##,
        LEFT + plot_w,
        bottom + 14.0,
        LEFT + plot_w,
        bottom + 14.0,
        seconds.len(),
        LEFT - 4.0,
        TOP + 10.0,
        LEFT + plot_w + 4.0,
        TOP + 10.0,
        bottom + 30.0,
        LEFT + plot_w,
        bottom + 30.0,
    );
    out
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_draws_a_bar_per_second_and_a_p99_point_per_busy_second() {
        let seconds = [
            Second {
                at: 0,
                requests: 10,
                p99_ms: 5,
            },
            Second {
                at: 1,
                requests: 0,
                p99_ms: 0,
            },
            Second {
                at: 2,
                requests: 20,
                p99_ms: 9,
            },
        ];
        let chart = svg("run <1>", &seconds, Some(1));
        assert_eq!(chart.matches("<rect x=").count(), 3);
        let line = chart
            .lines()
            .find(|l| l.starts_with("<polyline"))
            .expect("a p99 line");
        assert_eq!(line.matches(',').count(), 2, "{line}");
        assert!(chart.contains("run &lt;1&gt;"));
        assert!(chart.contains("anonymous | mixed"));
        assert!(chart.contains("20 req/s") && chart.contains("9 ms p99"));
    }
}
