//! One plot helper for every notebook: interactive in JupyterLab with no network, and still there
//! in the offline HTML book.
//!
//! Why not plotly's own display methods (measured): `Plot::evcxr_display()` sends the
//! `application/vnd.plotly.v1+json` MIME type, which JupyterLab shows only with a plotly extension
//! and nbconvert's HTML export drops; `Plot::notebook_display()` loads plotly.js from a CDN through
//! RequireJS. [`show`] instead sends plain `text/html`: a `div`, and a script that draws into it
//! with `window.Plotly`. The first plot of a kernel session also carries plotly.js itself (the copy
//! the `plotly` crate ships, feature `plotly_embed_js`) in a `<script class="vaelab-plotly-js">`,
//! so nothing is fetched; the book renderer swaps that script for one shared file.
//!
//! Notebooks build plots with [`Figure`], whose methods take plain `&[f64]` slices and are compiled
//! once with the crate. (Building plotly traces inside a cell makes evcxr compile plotly's generic
//! serialisation code for that cell, which costs seconds per cell.)
//!
//! ```no_run
//! use vaelab::plot::Figure;
//! let x = [0.0, 1.0, 2.0];
//! let fig = Figure::new("squares").axes("x", "x²").line("x²", &x, &[0.0, 1.0, 4.0]);
//! fig.show(); // in a notebook cell
//! fig.write_html("squares.html").unwrap(); // a standalone page, works offline
//! ```

pub mod report;
mod slider;

pub use slider::SliderFigure;

use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub use plotly::common::{Line, Marker, Mode, Title};
pub use plotly::layout::{Axis, Layout};
pub use plotly::{Bar, Contour, HeatMap, Histogram, Plot, Scatter};

use plotly::common::DashType;
use plotly::layout::AxisType;

use crate::base::error::{Error, Result};

/// A plot built from plain slices: title, axis labels, and any number of traces.
///
/// Every method is non-generic, so a notebook cell that uses it compiles in a fraction of a second.
/// For anything this does not cover, [`Figure::plot_mut`] gives the underlying plotly [`Plot`].
///
/// ```
/// use vaelab::plot::Figure;
/// let fig = Figure::new("a line").axes("u", "x").line("F⁻¹(u)", &[0.1, 0.5, 0.9], &[-1.28, 0.0, 1.28]);
/// assert_eq!(fig.plot().data().len(), 1);
/// ```
pub struct Figure {
    plot: Plot,
    layout: Layout,
}

impl Figure {
    /// An empty figure with a title.
    pub fn new(title: &str) -> Self {
        let layout = Layout::new().title(Title::with_text(title)).height(420);
        Figure { plot: Plot::new(), layout }
    }

    /// Axis labels.
    pub fn axes(mut self, x_label: &str, y_label: &str) -> Self {
        let layout = self.layout.clone();
        self.layout = layout
            .x_axis(Axis::new().title(Title::with_text(x_label)))
            .y_axis(Axis::new().title(Title::with_text(y_label)));
        self
    }

    /// A logarithmic x axis with a label (replaces the x label set by [`Figure::axes`]).
    pub fn log_x(mut self, x_label: &str) -> Self {
        let layout = self.layout.clone();
        self.layout = layout.x_axis(Axis::new().title(Title::with_text(x_label)).type_(AxisType::Log));
        self
    }

    /// A logarithmic y axis with a label (replaces the y label set by [`Figure::axes`]).
    pub fn log_y(mut self, y_label: &str) -> Self {
        let layout = self.layout.clone();
        self.layout = layout.y_axis(Axis::new().title(Title::with_text(y_label)).type_(AxisType::Log));
        self
    }

    /// A solid line through the points (xᵢ, yᵢ). A line named `""` (a baseline, a guide) has no
    /// legend entry: plotly would show it as a blank one.
    ///
    /// # Panics
    /// If `x` and `y` differ in length (a programmer error in the notebook).
    #[track_caller]
    pub fn line(mut self, name: &str, x: &[f64], y: &[f64]) -> Self {
        assert_eq!(x.len(), y.len(), "Figure::line({name}): x has {} points, y has {}", x.len(), y.len());
        self.plot.add_trace(
            Scatter::new(x.to_vec(), y.to_vec()).name(name).mode(Mode::Lines).show_legend(!name.is_empty()),
        );
        self
    }

    /// A dashed line, e.g. for a bound or a reference value.
    #[track_caller]
    pub fn dashed(mut self, name: &str, x: &[f64], y: &[f64]) -> Self {
        assert_eq!(x.len(), y.len(), "Figure::dashed({name}): x has {} points, y has {}", x.len(), y.len());
        let line = Line::new().dash(DashType::Dash);
        self.plot.add_trace(Scatter::new(x.to_vec(), y.to_vec()).name(name).mode(Mode::Lines).line(line));
        self
    }

    /// Markers at the points (xᵢ, yᵢ).
    #[track_caller]
    pub fn points(mut self, name: &str, x: &[f64], y: &[f64]) -> Self {
        assert_eq!(x.len(), y.len(), "Figure::points({name}): x has {} points, y has {}", x.len(), y.len());
        let marker = Marker::new().size(5).opacity(0.6);
        self.plot
            .add_trace(Scatter::new(x.to_vec(), y.to_vec()).name(name).mode(Mode::Markers).marker(marker));
        self
    }

    /// Markers with symmetric error bars (± `err`), e.g. a Monte-Carlo mean ± 1 standard error.
    #[track_caller]
    pub fn points_with_errors(mut self, name: &str, x: &[f64], y: &[f64], err: &[f64]) -> Self {
        assert!(
            x.len() == y.len() && y.len() == err.len(),
            "Figure::points_with_errors({name}): x, y, err have {}, {}, {} points",
            x.len(),
            y.len(),
            err.len()
        );
        let error = plotly::common::ErrorData::new(plotly::common::ErrorType::Data).array(err.to_vec());
        self.plot.add_trace(
            Scatter::new(x.to_vec(), y.to_vec()).name(name).mode(Mode::LinesMarkers).error_y(error),
        );
        self
    }

    /// Markers only (no line) with symmetric error bars (± `err`), e.g. scattered estimates.
    #[track_caller]
    pub fn markers_with_errors(mut self, name: &str, x: &[f64], y: &[f64], err: &[f64]) -> Self {
        assert!(
            x.len() == y.len() && y.len() == err.len(),
            "Figure::markers_with_errors({name}): x, y, err have {}, {}, {} points",
            x.len(),
            y.len(),
            err.len()
        );
        let error = plotly::common::ErrorData::new(plotly::common::ErrorType::Data).array(err.to_vec());
        self.plot
            .add_trace(Scatter::new(x.to_vec(), y.to_vec()).name(name).mode(Mode::Markers).error_y(error));
        self
    }

    /// Adjacent bars of height `heights[i]` centred at `centres[i]`, e.g. a density histogram from
    /// [`crate::base::stats::density_histogram`] (the page then carries the bins, not the samples).
    #[track_caller]
    pub fn density_bars(mut self, name: &str, centres: &[f64], heights: &[f64]) -> Self {
        assert_eq!(
            centres.len(),
            heights.len(),
            "Figure::density_bars({name}): {} centres, {} heights",
            centres.len(),
            heights.len()
        );
        self.plot.add_trace(Bar::new(centres.to_vec(), heights.to_vec()).name(name).opacity(0.6));
        let layout = self.layout.clone();
        self.layout = layout.bar_gap(0.0);
        self
    }

    /// Vertical bars, one per label.
    #[track_caller]
    pub fn bars(mut self, name: &str, labels: &[String], values: &[f64]) -> Self {
        assert_eq!(
            labels.len(),
            values.len(),
            "Figure::bars({name}): {} labels, {} values",
            labels.len(),
            values.len()
        );
        self.plot.add_trace(Bar::new(labels.to_vec(), values.to_vec()).name(name));
        self
    }

    /// A heat map of `z` (rows drawn top to bottom, as an image).
    pub fn heatmap(mut self, z: &ndarray::Array2<f64>) -> Self {
        // Plotly draws row 0 at the bottom; an image has it at the top.
        let rows: Vec<Vec<f64>> = z.rows().into_iter().rev().map(|r| r.to_vec()).collect();
        self.plot.add_trace(HeatMap::new_z(rows).show_scale(false));
        self
    }

    /// Images as one grey heat map, tiled `cols` per line (values in [0, 1], 1 drawn black, the
    /// same shades in every trace), with image axes ([`Figure::image_axes`]).
    ///
    /// # Shapes
    /// `images`: `N × D` with D = h · w, `shape` = `[h, w]`.
    ///
    /// ```
    /// use vaelab::ndarray::Array2;
    /// use vaelab::plot::Figure;
    /// let fig = Figure::new("two 2 × 2 images").images("digits", Array2::zeros((2, 4)).view(), [2, 2], 2);
    /// assert!(fig.plot().to_json().contains("\"zmax\":1.0"));
    /// ```
    pub fn images(
        mut self,
        name: &str,
        images: ndarray::ArrayView2<f32>,
        shape: [usize; 2],
        cols: usize,
    ) -> Self {
        let (z, _) = report::tile_images(images, shape, cols);
        let trace = HeatMap::new_z(z)
            .name(name)
            .color_scale(plotly::common::ColorScale::Palette(plotly::common::ColorScalePalette::Greys))
            .reverse_scale(true)
            .zmin(0.0)
            .zmax(1.0)
            .show_scale(false);
        self.plot.add_trace(trace);
        self.image_axes()
    }

    /// Axes for images: no ticks, no grid, square pixels.
    pub fn image_axes(mut self) -> Self {
        let layout = self.layout.clone();
        self.layout = layout
            .x_axis(Axis::new().show_tick_labels(false).show_grid(false).zero_line(false))
            .y_axis(Axis::new().show_tick_labels(false).show_grid(false).zero_line(false).scale_anchor("x"));
        self
    }

    /// Contour lines of z over the grid x × y, where `z[[i, j]]` is the value at (`x[j]`, `y[i]`).
    #[track_caller]
    pub fn contour(mut self, name: &str, x: &[f64], y: &[f64], z: &ndarray::Array2<f64>) -> Self {
        assert_eq!(z.dim(), (y.len(), x.len()), "Figure::contour({name}): z must be y.len() × x.len()");
        let rows: Vec<Vec<f64>> = z.rows().into_iter().map(|r| r.to_vec()).collect();
        let trace = Contour::new(x.to_vec(), y.to_vec(), rows)
            .name(name)
            .contours(plotly::contour::Contours::new().coloring(plotly::contour::Coloring::Lines))
            .show_scale(false);
        self.plot.add_trace(trace);
        self
    }

    /// Contour lines of a log-density normalised to its peak, at log p − max log p = −0.5, −2.5,
    /// −4.5 (for a Gaussian: 1, √5 and 3 standard deviations from the mean), drawn in `color`
    /// (a CSS colour name, e.g. `"royalblue"`). `log_density[[i, j]]` is the value at
    /// (`x[j]`, `y[i]`).
    ///
    /// ```text
    /// level ℓ ∈ {−0.5, −2.5, −4.5}:  { z : log p(z) − max log p = ℓ } = { z : Mahalanobis² = −2ℓ }
    /// ```
    ///
    /// # Shapes
    /// `x`: nx, `y`: ny, `log_density`: ny × nx.
    ///
    /// ```
    /// use vaelab::ndarray::Array2;
    /// use vaelab::plot::Figure;
    /// let g = [-1.0, 0.0, 1.0];
    /// let lp = Array2::from_shape_fn((3, 3), |(i, j)| -0.5 * (g[i] * g[i] + g[j] * g[j]) - 7.0);
    /// let fig = Figure::new("N(0, I)").density_contours("p", &g, &g, &lp, "black");
    /// // The peak (−7 at the centre) is subtracted: the centre is 0, a corner −1.
    /// let json = fig.plot().to_json();
    /// assert!(json.contains("[-1.0,-0.5,-1.0],[-0.5,0.0,-0.5]"), "{json}");
    /// ```
    #[track_caller]
    pub fn density_contours(
        mut self,
        name: &str,
        x: &[f64],
        y: &[f64],
        log_density: &ndarray::Array2<f64>,
        color: &str,
    ) -> Self {
        assert_eq!(
            log_density.dim(),
            (y.len(), x.len()),
            "Figure::density_contours({name}): log_density must be y.len() × x.len()"
        );
        let peak = log_density.fold(f64::NEG_INFINITY, |m, &v| m.max(v));
        let rows: Vec<Vec<f64>> =
            log_density.rows().into_iter().map(|r| r.iter().map(|v| v - peak).collect()).collect();
        let contours = plotly::contour::Contours::new()
            .coloring(plotly::contour::Coloring::Lines)
            .start(-4.5)
            .end(-0.5)
            .size(2.0);
        let trace = Contour::new(x.to_vec(), y.to_vec(), rows)
            .name(name)
            .show_scale(false)
            .contours(contours)
            .line(Line::new().color(color.to_string()));
        self.plot.add_trace(trace);
        self
    }

    /// The plotly plot, with the layout applied.
    pub fn plot(&self) -> Plot {
        let mut plot = self.plot.clone();
        plot.set_layout(self.layout.clone());
        plot
    }

    /// The plotly plot, to add what [`Figure`] does not cover.
    pub fn plot_mut(&mut self) -> &mut Plot {
        &mut self.plot
    }

    /// Shows the figure as the output of the current notebook cell (see [`show`]).
    pub fn show(&self) {
        show(&self.plot());
    }

    /// Writes the figure as a standalone offline HTML page (see [`write_html`]).
    pub fn write_html(&self, path: impl AsRef<Path>) -> Result<()> {
        write_html(&self.plot(), path)
    }
}

/// Class of the `<script>` that carries plotly.js; the book renderer looks for it.
pub const PLOTLY_JS_CLASS: &str = "vaelab-plotly-js";
/// Class of each plot's `div`; the browser check counts them.
pub const PLOT_DIV_CLASS: &str = "vaelab-plot";

static JS_SENT: AtomicBool = AtomicBool::new(false);
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The JavaScript files the `plotly` crate embeds: `(plotly.min.js, MathJax tex-svg.js)`.
///
/// The book uses both: plotly.js for plots, MathJax's SVG build (which needs no font files) for
/// the formulas. Both come from the crates.io package, never from a CDN.
pub fn offline_js() -> (&'static str, &'static str) {
    static JS: OnceLock<(String, String)> = OnceLock::new();
    let (plotly_js, mathjax_js) = JS.get_or_init(|| {
        // `offline_js_sources` is `<script ...>PLOTLY</script>\n<script ...>MATHJAX</script>`.
        let sources = Plot::offline_js_sources();
        let mut bodies = sources.split("</script>").filter_map(|chunk| {
            let start = chunk.find("<script")?;
            let open_end = chunk[start..].find('>')? + start + 1;
            Some(chunk[open_end..].to_string())
        });
        let plotly_js = bodies.next().expect("plotly crate ships plotly.js (feature plotly_embed_js)");
        let mathjax_js = bodies.next().expect("plotly crate ships MathJax tex-svg (feature plotly_embed_js)");
        (plotly_js, mathjax_js)
    });
    (plotly_js.as_str(), mathjax_js.as_str())
}

/// The HTML fragment [`show`] sends: a `div` of class [`PLOT_DIV_CLASS`] and the script that draws
/// `plot` into it. With `include_plotly_js`, plotly.js comes first, in a script of class
/// [`PLOTLY_JS_CLASS`].
pub fn html_fragment(plot: &Plot, include_plotly_js: bool) -> String {
    spec_fragment(&plot.to_json(), include_plotly_js)
}

/// [`html_fragment`] for a plot given as its plotly JSON spec (`{"data": …, "layout": …}`), e.g.
/// a [`SliderFigure`]'s.
pub(crate) fn spec_fragment(spec_json: &str, include_plotly_js: bool) -> String {
    let id = format!("{}-{}-{}", PLOT_DIV_CLASS, session_tag(), COUNTER.fetch_add(1, Ordering::Relaxed));
    // `</` inside a script would end it early; JSON allows the escaped form `<\/`.
    let spec = spec_json.replace("</", "<\\/");
    let library = if include_plotly_js {
        format!("<script type=\"text/javascript\" class=\"{PLOTLY_JS_CLASS}\">{}</script>\n", offline_js().0)
    } else {
        String::new()
    };
    format!(
        r#"<div id="{id}" class="{PLOT_DIV_CLASS}" style="width:100%;min-height:420px;"></div>
{library}<script type="text/javascript">
(function () {{
  var el = document.getElementById("{id}");
  var spec = {spec};
  if (typeof window.Plotly === "undefined") {{
    el.textContent = "plotly.js is not loaded in this page: run vaelab::plot::reset() and show the plot again.";
    return;
  }}
  window.Plotly.newPlot(el, spec.data, spec.layout || {{}}, spec.config || {{responsive: true}});
}})();
</script>"#
    )
}

/// Sends HTML fragments as the one output of the current cell: plotly.js first if this kernel
/// session has not sent it yet.
fn display_specs(specs: &[String]) {
    let mut first = !JS_SENT.swap(true, Ordering::Relaxed);
    let mut body = String::new();
    for spec in specs {
        body += &spec_fragment(spec, first);
        body.push('\n');
        first = false;
    }
    println!("EVCXR_BEGIN_CONTENT text/html\n{body}EVCXR_END_CONTENT");
}

/// Shows `plot` as the output of the current notebook cell (evcxr's `text/html` display).
///
/// One display per cell: evcxr keeps only a cell's last display, so several plots in one cell
/// go through [`show_all`].
///
/// The first call in a kernel session also sends plotly.js (about 4.6 MB, once). Outside a
/// notebook this prints the HTML to stdout.
pub fn show(plot: &Plot) {
    show_all(&[plot]);
}

/// Shows several plots, in order, as the one output of the current notebook cell.
///
/// evcxr keeps only the last display a cell sends, so two calls to [`show`] in one cell lose the
/// first plot (and with it plotly.js, if that was the session's first plot). Use this instead.
pub fn show_all(plots: &[&Plot]) {
    display_specs(&plots.iter().map(|p| p.to_json()).collect::<Vec<_>>());
}

/// Makes the next [`show`] send plotly.js again (after clearing the output that carried it).
pub fn reset() {
    JS_SENT.store(false, Ordering::Relaxed);
}

/// Writes `plot` as a standalone HTML page that works offline (plotly.js inlined).
pub fn write_html(plot: &Plot, path: impl AsRef<Path>) -> Result<()> {
    let page = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"/>\n<script type=\"text/javascript\">{}</script>\n</head>\n<body>\n{}\n</body>\n</html>\n",
        offline_js().0,
        html_fragment(plot, false)
    );
    crate::base::io::write_atomically(path.as_ref(), page.as_bytes())
}

/// A tag that differs between kernel sessions, so that div ids of a restarted kernel do not
/// collide with outputs still on the page.
fn session_tag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        format!("{:x}{:x}", std::process::id(), nanos)
    })
}

/// Samples as a density histogram (bars, [`crate::base::stats::density_histogram`]) under the curve of
/// a pdf: the picture of "these samples come from that density". The page carries `bins` bar
/// heights and 400 curve points, not the samples.
///
/// Built here, not in a notebook cell, because evcxr compiles each cell at `-O2`: a cell that
/// builds a plotly plot itself spends seconds compiling plotly's generic serialisation code.
///
/// # Shapes
/// `samples`: (N,) → a plot with `bins` bars and a 400-point curve.
///
/// ```
/// use vaelab::ndarray::array;
/// let p = vaelab::plot::density_over_pdf(&array![0.2, 0.4, 0.6], (0.0, 1.0), 4, &|_| 1.0, "uniform").unwrap();
/// assert!(p.to_json().contains("\"type\":\"bar\""));
/// ```
///
/// # Errors
/// As [`crate::base::stats::density_histogram`].
pub fn density_over_pdf(
    samples: &ndarray::ArrayRef1<f64>,
    (lo, hi): (f64, f64),
    bins: usize,
    pdf: &dyn Fn(f64) -> f64,
    title: &str,
) -> Result<Plot> {
    let (centres, density) = crate::base::stats::density_histogram(samples, lo, hi, bins)?;
    let grid = ndarray::Array1::linspace(lo, hi, 400);
    let pdf_values = grid.mapv(pdf);
    Ok(Figure::new(title)
        .axes("x", "density")
        .density_bars("samples (density histogram)", &centres.to_vec(), &density.to_vec())
        .line("p(x)", &grid.to_vec(), &pdf_values.to_vec())
        .plot())
}

/// Line plots of `(name, x, y)` curves on one pair of axes, e.g. the map u → x = F⁻¹(u). Built
/// in the crate for the reason given at [`density_over_pdf`].
///
/// # Shapes
/// Each curve: `x` (M,), `y` (M,); curves may differ in M.
///
/// ```
/// use vaelab::ndarray::array;
/// let (u, x) = (array![0.25, 0.5, 0.75], array![-1.0, 0.0, 1.0]);
/// let p = vaelab::plot::curves(&[("x = F⁻¹(u)", &u, &x)], "quantiles", ("u", "x")).unwrap();
/// assert!(p.to_json().contains("F⁻¹"));
/// ```
///
/// # Errors
/// [`Error::Shape`] when a curve's `x` and `y` differ in length (named by the curve).
pub fn curves(
    curves: &[(&str, &ndarray::ArrayRef1<f64>, &ndarray::ArrayRef1<f64>)],
    title: &str,
    (x_label, y_label): (&str, &str),
) -> Result<Plot> {
    let mut figure = Figure::new(title).axes(x_label, y_label);
    for &(name, x, y) in curves {
        if x.len() != y.len() {
            return Err(Error::shape(
                format!("curve {name:?}: x vs y"),
                format!("({},)", x.len()),
                format!("({},)", y.len()),
            ));
        }
        figure = figure.line(name, &x.to_vec(), &y.to_vec());
    }
    Ok(figure.plot())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fragment_carries_the_spec_and_the_library_only_when_asked() {
        let mut p = Plot::new();
        p.add_trace(Scatter::new(vec![1.0, 2.0], vec![3.0, 4.0]).name("</script>"));
        let with = html_fragment(&p, true);
        let without = html_fragment(&p, false);
        assert!(with.contains(PLOTLY_JS_CLASS) && !without.contains(PLOTLY_JS_CLASS));
        // The trace name must not close the script early.
        assert_eq!(without.matches("</script>").count(), 1, "{without}");
        assert!(without.contains("<\\/script>"));
        assert!(with.len() > 1_000_000, "plotly.js is inlined: {} bytes", with.len());
    }

    #[test]
    fn an_unnamed_line_has_no_legend_entry_and_a_named_one_has() {
        let json = Figure::new("t")
            .line("", &[0.0, 1.0], &[0.0, 0.0])
            .line("F(x)", &[0.0, 1.0], &[0.0, 1.0])
            .plot()
            .to_json();
        let spec: serde_json::Value = serde_json::from_str(&json).unwrap();
        let shown: Vec<_> =
            spec["data"].as_array().unwrap().iter().map(|t| t["showlegend"].clone()).collect();
        assert_eq!(shown, [serde_json::json!(false), serde_json::json!(true)], "{json}");
    }

    #[test]
    fn offline_js_is_plotly_and_mathjax() {
        let (plotly_js, mathjax_js) = offline_js();
        assert!(plotly_js.contains("Plotly") && plotly_js.len() > 1_000_000);
        assert!(mathjax_js.contains("MathJax") && mathjax_js.len() > 500_000);
        assert!(!plotly_js.contains("<script") && !mathjax_js.contains("<script"));
    }

    #[test]
    fn standalone_page_is_written_atomically_and_offline() {
        let dir = std::env::temp_dir().join(format!("vaelab-plot-test-{}", std::process::id()));
        let path = dir.join("p.html");
        let mut p = Plot::new();
        p.add_trace(Scatter::new(vec![1.0], vec![2.0]));
        write_html(&p, &path).unwrap();
        let page = std::fs::read_to_string(&path).unwrap();
        // Nothing is loaded from elsewhere: no `src=` attribute at all (the page opens offline).
        assert!(!page.contains(" src="), "a standalone page must load nothing");
        assert!(page.contains(PLOT_DIV_CLASS) && page.contains("Plotly.newPlot"));
        assert!(std::fs::read_dir(&dir).unwrap().count() == 1, "no temporary file left behind");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn helpers_carry_bins_and_curves_and_refuse_mismatched_shapes() {
        let x = ndarray::Array1::linspace(0.0, 1.0, 1001);
        let p = density_over_pdf(&x, (0.0, 1.0), 10, &|_| 1.0, "t").unwrap();
        let json = p.to_json();
        assert_eq!(json.matches("\"type\":\"bar\"").count(), 1);
        assert_eq!(json.matches("\"type\":\"scatter\"").count(), 1);
        let (a, b) = (ndarray::array![1.0, 2.0], ndarray::array![1.0]);
        assert!(matches!(curves(&[("c", &a, &b)], "t", ("x", "y")), Err(Error::Shape { .. })));
        assert_eq!(curves(&[("c", &a, &a), ("d", &b, &b)], "t", ("x", "y")).unwrap().data().len(), 2);
    }
}
