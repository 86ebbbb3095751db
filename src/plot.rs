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
}
