//! The figures of notebooks 02 and 03, built here so that a notebook cell only passes numbers
//! (plotly's generic builders are slow to compile in every evcxr cell).

use plotly::common::{ErrorData, ErrorType};
use plotly::contour::{Coloring, Contours};
use plotly::layout::AxisType;

use crate::plot::{Axis, Contour, Layout, Line, Mode, Plot, Scatter};

/// One curve or point cloud: y against x, with optional ± error bars.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// x values.
    pub x: Vec<f64>,
    /// y values.
    pub y: Vec<f64>,
    /// Half-widths of the error bars (same length as y), if any.
    pub error: Option<Vec<f64>>,
    /// Markers only (a scatter). Otherwise lines with markers, or plain lines beyond 50 points.
    pub markers_only: bool,
}

impl Series {
    /// A line through (x, y).
    pub fn line(name: &str, x: Vec<f64>, y: Vec<f64>) -> Series {
        Series { name: name.into(), x, y, ..Series::default() }
    }

    /// Adds error bars of half-width `error`.
    pub fn with_error(mut self, error: Vec<f64>) -> Series {
        self.error = Some(error);
        self
    }

    /// Shows markers only.
    pub fn markers(mut self) -> Series {
        self.markers_only = true;
        self
    }
}

/// A plot of several series; `log_x` / `log_y` put those axes on a log scale.
///
/// # Panics
/// If a series has x and y (or error bars) of different lengths.
///
/// ```
/// use vaelab::bounds::figure::{Series, series_plot};
/// let p = series_plot("t", "x", "y", false, false, &[Series::line("a", vec![0.0, 1.0], vec![1.0, 2.0])]);
/// assert!(p.to_json().contains("\"name\":\"a\""));
/// ```
#[track_caller]
pub fn series_plot(
    title: &str,
    x_title: &str,
    y_title: &str,
    log_x: bool,
    log_y: bool,
    series: &[Series],
) -> Plot {
    let mut plot = Plot::new();
    for s in series {
        assert!(
            s.x.len() == s.y.len(),
            "series_plot: series {:?} has {} x and {} y",
            s.name,
            s.x.len(),
            s.y.len()
        );
        let mut trace = Scatter::new(s.x.clone(), s.y.clone()).name(&s.name).mode(
            match (s.markers_only, s.x.len() > 50) {
                (true, _) => Mode::Markers,
                (false, true) => Mode::Lines, // a dense curve
                (false, false) => Mode::LinesMarkers,
            },
        );
        if let Some(e) = &s.error {
            assert!(
                e.len() == s.y.len(),
                "series_plot: series {:?} has {} error bars for {} points",
                s.name,
                e.len(),
                s.y.len()
            );
            trace = trace.error_y(ErrorData::new(ErrorType::Data).array(e.clone()));
        }
        plot.add_trace(trace);
    }
    let axis = |title: &str, log: bool| {
        let a = Axis::new().title(title);
        if log { a.type_(AxisType::Log) } else { a }
    };
    plot.set_layout(Layout::new().title(title).x_axis(axis(x_title, log_x)).y_axis(axis(y_title, log_y)));
    plot
}

/// Contour lines of several log-densities on one grid, each normalised to its peak, at
/// log-density − peak = −0.5, −2.5, −4.5 (1, √5 and 3 standard deviations for a Gaussian).
///
/// # Shapes
/// `gx`: nx, `gy`: ny; each `log_density` is ny × nx as rows of y (`z[j][i]` at (`gx[i]`, `gy[j]`)).
///
/// # Panics
/// If a grid of values does not match `gx` and `gy`.
#[track_caller]
pub fn contour_plot(title: &str, gx: &[f64], gy: &[f64], densities: &[(&str, Vec<Vec<f64>>, &str)]) -> Plot {
    let mut plot = Plot::new();
    for (name, z, color) in densities {
        assert!(
            z.len() == gy.len() && z.iter().all(|r| r.len() == gx.len()),
            "contour_plot: {name} is not {} × {}",
            gy.len(),
            gx.len()
        );
        let peak = z.iter().flatten().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let rel: Vec<Vec<f64>> = z.iter().map(|r| r.iter().map(|v| v - peak).collect()).collect();
        plot.add_trace(
            Contour::new(gx.to_vec(), gy.to_vec(), rel)
                .name(name)
                .show_scale(false)
                .contours(Contours::new().coloring(Coloring::Lines).start(-4.5).end(-0.5).size(2.0))
                .line(Line::new().color(color.to_string())),
        );
    }
    plot.set_layout(
        Layout::new().title(title).x_axis(Axis::new().title("z₁")).y_axis(Axis::new().title("z₂")),
    );
    plot
}
