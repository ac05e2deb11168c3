//! The CronJob page's chart of run durations: one bar per run, oldest on the left, coloured by
//! how it ended, with the CronJob's maximum run time drawn across, so that a run growing towards
//! its limit shows before the alert fires. Only the geometry is worked out here; the template
//! (web/templates/cronjob.html) writes it as inline SVG, escaping every text, and the
//! stylesheet colours it: no script, nothing fetched.

use super::board::duration_words;

/// The drawing's size in SVG units; the stylesheet scales it to the page's width.
pub const WIDTH: f64 = 640.0;
pub const HEIGHT: f64 = 180.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 20.0;
/// Fewer runs than this still get bars of this share of the width: one run is not a wall.
const LEAST_SLOTS: usize = 12;
/// A run without a duration (lost, or ended with nothing known) is a stub this high.
const STUB: f64 = 3.0;

/// What the chart is drawn from, one per run, oldest first.
pub struct Sample {
    pub duration_seconds: Option<f64>,
    /// The CSS class of the run's outcome (`run-failure`, ...).
    pub class: &'static str,
    /// What pointing at the bar says.
    pub title: String,
}

#[derive(Debug, PartialEq)]
pub struct Bar {
    pub x: String,
    pub y: String,
    pub width: String,
    pub height: String,
    pub class: &'static str,
    pub title: String,
}

/// A horizontal line across the plot and its words.
#[derive(Debug, PartialEq)]
pub struct Rule {
    pub y: String,
    pub label: String,
}

#[derive(Debug, PartialEq)]
pub struct Chart {
    pub bars: Vec<Bar>,
    /// The maximum run time, when the CronJob has one.
    pub limit: Option<Rule>,
    /// The scale: its top and its bottom (zero).
    pub top: Rule,
    pub baseline: Rule,
    pub left: String,
    pub right: String,
    /// One sentence for those who cannot see the drawing.
    pub description: String,
}

pub fn chart(samples: &[Sample], max_run_seconds: Option<f64>) -> Chart {
    let longest = samples.iter().filter_map(|s| s.duration_seconds).fold(0.0_f64, f64::max);
    // The scale reaches past both the longest run and the limit, so that both show.
    let top = (longest.max(max_run_seconds.unwrap_or(0.0)) * 1.1).max(1.0);
    let plot_height = HEIGHT - TOP - BOTTOM;
    let y_of = |seconds: f64| TOP + plot_height * (1.0 - (seconds / top).clamp(0.0, 1.0));
    let slots = samples.len().max(LEAST_SLOTS);
    let slot = (WIDTH - LEFT - RIGHT) / slots as f64;
    // The newest run at the right edge, as on a time axis, however few runs there are.
    let first = (slots - samples.len()) as f64;
    let bars = samples
        .iter()
        .enumerate()
        .map(|(i, sample)| {
            let height = sample.duration_seconds.map_or(STUB, |d| (plot_height - (y_of(d) - TOP)).max(STUB));
            Bar {
                x: number(LEFT + slot * (first + i as f64) + slot * 0.15),
                y: number(TOP + plot_height - height),
                width: number(slot * 0.7),
                height: number(height),
                class: sample.class,
                title: sample.title.clone(),
            }
        })
        .collect();
    let limit = max_run_seconds
        .map(|max| Rule { y: number(y_of(max)), label: format!("maximum run time {}", duration_words(max)) });
    let description = match max_run_seconds {
        Some(max) => format!(
            "Durations of the last {} runs, the longest {}, against a maximum run time of {}.",
            samples.len(),
            duration_words(longest),
            duration_words(max)
        ),
        None => format!("Durations of the last {} runs, the longest {}.", samples.len(), duration_words(longest)),
    };
    Chart {
        bars,
        limit,
        top: Rule { y: number(TOP), label: duration_words(top) },
        baseline: Rule { y: number(TOP + plot_height), label: "0".into() },
        left: number(LEFT),
        right: number(WIDTH - RIGHT),
        description,
    }
}

/// An SVG coordinate: a tenth of a unit is finer than any screen shows it.
fn number(value: f64) -> String {
    format!("{:.1}", value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(duration: Option<f64>, class: &'static str) -> Sample {
        Sample { duration_seconds: duration, class, title: String::new() }
    }

    fn height(bar: &Bar) -> f64 {
        bar.height.parse().unwrap()
    }

    #[test]
    fn bars_are_as_tall_as_their_runs_and_the_limit_is_drawn_across() {
        let samples = [sample(Some(60.0), "run-success"), sample(Some(120.0), "run-failure"), sample(None, "run-lost")];
        let chart = chart(&samples, Some(300.0));
        let heights: Vec<f64> = chart.bars.iter().map(height).collect();
        assert!((heights[1] / heights[0] - 2.0).abs() < 0.01, "twice as long, twice as tall: {heights:?}");
        assert_eq!(heights[2], STUB, "a run without a duration still shows");
        let limit: f64 = chart.limit.as_ref().unwrap().y.parse().unwrap();
        let bottom: f64 = chart.baseline.y.parse().unwrap();
        // 300 s on a scale topped at 330 s.
        assert!((bottom - limit - (HEIGHT - TOP - BOTTOM) / 1.1).abs() < 0.1, "{limit} {bottom}");
        assert_eq!(chart.limit.unwrap().label, "maximum run time 5m");
        assert_eq!(chart.top.label, "5m 30s");
        let xs: Vec<f64> = chart.bars.iter().map(|b| b.x.parse().unwrap()).collect();
        assert!(xs.windows(2).all(|w| w[0] < w[1]), "oldest on the left: {xs:?}");
    }

    #[test]
    fn a_run_past_the_limit_stays_within_the_drawing() {
        let chart = chart(&[sample(Some(7200.0), "run-running")], Some(3600.0));
        let bar = &chart.bars[0];
        let y: f64 = bar.y.parse().unwrap();
        assert!(y >= TOP && y + height(bar) <= HEIGHT - BOTTOM + 0.1, "{bar:?}");
        assert!(chart.description.contains("the longest 2h") && chart.description.contains("1h"));
    }

    #[test]
    fn no_runs_make_an_empty_but_sound_chart() {
        let chart = chart(&[], None);
        assert!(chart.bars.is_empty() && chart.limit.is_none());
        assert_eq!(chart.top.label, "1s");
    }
}
