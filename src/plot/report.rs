//! Plots of a trained VAE: image grids (reconstructions, prior samples) and learning curves, and
//! the offline HTML page the `train` command writes.

use std::path::Path;

use ndarray::ArrayView2;
use plotly::common::{ColorScale, ColorScalePalette, Mode, Title};
use plotly::layout::{Axis, Layout};
use plotly::{HeatMap, Plot, Scatter};

use crate::base::error::Result;
use crate::engine::train::EpochMetrics;

/// Side lengths `[h, w]` of the images of a `d`-pixel data set: a square if `d` is a perfect
/// square (28 × 28 for 784), else one row `[1, d]`.
pub fn image_shape(d: usize) -> [usize; 2] {
    let s = (d as f64).sqrt().round() as usize;
    if s * s == d { [s, s] } else { [1, d] }
}

/// A heatmap of `images` (one per row, values in [0, 1]) tiled `cols` per line, first image at
/// the top left.
///
/// # Shapes
/// `images`: `N × D` with D = h · w.
pub fn image_grid(images: ArrayView2<f32>, shape: [usize; 2], cols: usize, title: &str) -> Plot {
    let (z, rows) = tile_images(images, shape, cols);
    let h = shape[0];
    let trace = HeatMap::new_z(z)
        .color_scale(ColorScale::Palette(ColorScalePalette::Greys))
        .reverse_scale(true)
        .show_scale(false);
    let mut plot = Plot::new();
    plot.add_trace(trace);
    plot.set_layout(
        Layout::new()
            .title(Title::with_text(title))
            .x_axis(Axis::new().show_tick_labels(false).show_grid(false))
            .y_axis(Axis::new().show_tick_labels(false).show_grid(false).scale_anchor("x"))
            .height(120 + 30 * rows * h / 10),
    );
    plot
}

/// `images` tiled `cols` per line with a one-pixel gap (NaN, drawn blank), as heat-map rows in
/// plotly's order (the last image row first); and the number of image rows.
///
/// # Shapes
/// `images`: `N × D` with D = h · w; returns ⌈N/cols⌉·(h + 1) rows of `cols`·(w + 1) values.
pub(crate) fn tile_images(images: ArrayView2<f32>, shape: [usize; 2], cols: usize) -> (Vec<Vec<f64>>, usize) {
    let [h, w] = shape;
    let n = images.nrows();
    let cols = cols.clamp(1, n.max(1));
    let rows = n.div_ceil(cols);
    let (gap, height, width) = (1, rows * (h + 1), cols * (w + 1));
    let mut z = vec![vec![f64::NAN; width]; height];
    for (i, img) in images.outer_iter().enumerate() {
        let (r0, c0) = ((i / cols) * (h + gap), (i % cols) * (w + gap));
        for y in 0..h {
            for x in 0..w {
                z[r0 + y][c0 + x] = img[y * w + x] as f64;
            }
        }
    }
    z.reverse(); // plotly draws row 0 at the bottom
    (z, rows)
}

/// Train and test ELBO per epoch (nats per example).
pub fn learning_curves(history: &[EpochMetrics]) -> Plot {
    let epochs: Vec<usize> = history.iter().map(|m| m.epoch).collect();
    let mut plot = Plot::new();
    plot.add_trace(
        Scatter::new(epochs.clone(), history.iter().map(|m| m.train_elbo).collect())
            .mode(Mode::LinesMarkers)
            .name("train ELBO (dynamic binarisation)"),
    );
    if history.iter().all(|m| m.test.is_some()) {
        let test: Vec<f64> = history.iter().map(|m| m.test.expect("checked").elbo.mean).collect();
        plot.add_trace(Scatter::new(epochs, test).mode(Mode::LinesMarkers).name("test ELBO"));
    }
    plot.set_layout(
        Layout::new()
            .title(Title::with_text("Learning curves"))
            .x_axis(Axis::new().title(Title::with_text("epoch")))
            .y_axis(Axis::new().title(Title::with_text("ELBO (nats per example)"))),
    );
    plot
}

/// Writes an offline HTML page holding `plots` in order, under a heading and a text paragraph.
///
/// # Errors
/// `Io` if the file cannot be written.
pub fn write_page(path: impl AsRef<Path>, heading: &str, text: &str, plots: &[Plot]) -> Result<()> {
    let body: String =
        plots.iter().map(|p| crate::plot::html_fragment(p, false)).collect::<Vec<_>>().join("\n");
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;");
    let page = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"/><title>{}</title>\n<script type=\"text/javascript\">{}</script>\n</head>\n<body>\n<h1>{}</h1>\n<pre>{}</pre>\n{}\n</body>\n</html>\n",
        escape(heading),
        crate::plot::offline_js().0,
        escape(heading),
        escape(text),
        body
    );
    crate::base::io::write_atomically(path.as_ref(), page.as_bytes())
}
