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
//! ```no_run
//! use vaelab::plot::{self, Plot, Scatter};
//! let mut p = Plot::new();
//! p.add_trace(Scatter::new(vec![0.0, 1.0, 2.0], vec![0.0, 1.0, 4.0]));
//! plot::show(&p); // in a notebook cell
//! plot::write_html(&p, "squares.html").unwrap(); // a standalone page, works offline
//! ```

use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub use plotly::common::{Line, Marker, Mode, Title};
pub use plotly::layout::{Axis, Layout};
pub use plotly::{Bar, Contour, HeatMap, Histogram, Plot, Scatter};

use crate::error::{Error, Result};

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
    let id = format!("{}-{}-{}", PLOT_DIV_CLASS, session_tag(), COUNTER.fetch_add(1, Ordering::Relaxed));
    // `</` inside a script would end it early; JSON allows the escaped form `<\/`.
    let spec = plot.to_json().replace("</", "<\\/");
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

/// Shows `plot` as the output of the current notebook cell (evcxr's `text/html` display).
///
/// The first call in a kernel session also sends plotly.js (about 4.6 MB, once). Outside a
/// notebook this prints the HTML to stdout.
pub fn show(plot: &Plot) {
    let first = !JS_SENT.swap(true, Ordering::Relaxed);
    println!("EVCXR_BEGIN_CONTENT text/html\n{}\nEVCXR_END_CONTENT", html_fragment(plot, first));
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
    write_atomically(path.as_ref(), page.as_bytes())
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a reader
/// never sees half a file.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let file_name =
        path.file_name().ok_or_else(|| Error::format(path.display().to_string(), "not a file path"))?;
    let tmp = dir.join(format!(".{}.tmp{}", file_name.to_string_lossy(), std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
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

/// Samples as a density histogram (bars, [`crate::stats::density_histogram`]) under the curve of
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
/// As [`crate::stats::density_histogram`].
pub fn density_over_pdf(
    samples: &ndarray::ArrayRef1<f64>,
    (lo, hi): (f64, f64),
    bins: usize,
    pdf: &dyn Fn(f64) -> f64,
    title: &str,
) -> Result<Plot> {
    let (centres, density) = crate::stats::density_histogram(samples, lo, hi, bins)?;
    let grid = ndarray::Array1::linspace(lo, hi, 400);
    let mut p = Plot::new();
    p.add_trace(
        Bar::new(centres.to_vec(), density.to_vec()).name("samples (density histogram)").opacity(0.6),
    );
    p.add_trace(Scatter::new(grid.to_vec(), grid.mapv(pdf).to_vec()).mode(Mode::Lines).name("p(x)"));
    p.set_layout(
        Layout::new()
            .title(title)
            .bar_gap(0.0)
            .x_axis(Axis::new().title("x"))
            .y_axis(Axis::new().title("density")),
    );
    Ok(p)
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
    let mut p = Plot::new();
    for &(name, x, y) in curves {
        if x.len() != y.len() {
            return Err(Error::shape(
                format!("curve {name:?}: x vs y"),
                format!("({},)", x.len()),
                format!("({},)", y.len()),
            ));
        }
        p.add_trace(Scatter::new(x.to_vec(), y.to_vec()).mode(Mode::Lines).name(name));
    }
    p.set_layout(
        Layout::new().title(title).x_axis(Axis::new().title(x_label)).y_axis(Axis::new().title(y_label)),
    );
    Ok(p)
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
