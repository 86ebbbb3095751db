//! Figures with a slider: every step's traces are computed in Rust and sent with the page; moving
//! the slider shows one step's traces and hides the others (plotly.js `restyle` of the traces'
//! `visible` flags). Nothing goes back to the kernel, so a slider works the same in JupyterLab,
//! in the offline book and in a standalone page.
//!
//! ```
//! use vaelab::plot::Figure;
//! let mus = [-1.0, 0.0, 1.0];
//! let mut fig = Figure::new("ELBO as Q's mean moves").axes("μ", "nats")
//!     .dashed("log P(x)", &[-1.0, 1.0], &[-2.0, -2.0])
//!     .slider("μ of Q");
//! for &mu in &mus {
//!     let elbo = -2.0 - 0.5 * mu * mu;
//!     fig = fig.step(&format!("{mu:+.1}"), Figure::new("").points("ELBO", &[mu], &[elbo]));
//! }
//! assert_eq!(fig.step_count(), 3);
//! assert!(fig.to_json().contains("\"sliders\""));
//! ```

use std::path::Path;

use serde_json::{Value, json};

use crate::base::error::Result;
use crate::plot::{Figure, display_specs, offline_js, spec_fragment};

/// A [`Figure`] whose fixed traces are always drawn and whose steps are chosen with a slider;
/// made by [`Figure::slider`], filled with [`SliderFigure::step`].
pub struct SliderFigure {
    base: Figure,
    label: String,
    /// Panels after the first ([`SliderFigure::panel`]): each one's axes, title and fixed traces.
    panels: Vec<Panel>,
    /// Panels side by side (false) or one above the other (true).
    stacked: bool,
    /// Each step's label and traces, each trace already on its panel's axes.
    steps: Vec<(String, Vec<Value>)>,
}

/// One more pair of axes of a [`SliderFigure`]: its x and y axis layouts, its title, and the
/// traces drawn on it at every step.
struct Panel {
    x_axis: Value,
    y_axis: Value,
    title: String,
    fixed: Vec<Value>,
}

/// The slider's height below the plot, in pixels (plotly draws it inside the figure's height).
const SLIDER_HEIGHT: usize = 90;

impl Figure {
    /// Turns the figure into a [`SliderFigure`]: the traces it has so far stay drawn at every step;
    /// `label` names what the slider moves (shown as `label = <step label>`).
    pub fn slider(self, label: &str) -> SliderFigure {
        SliderFigure {
            base: self,
            label: label.to_string(),
            panels: Vec::new(),
            stacked: false,
            steps: Vec::new(),
        }
    }
}

impl SliderFigure {
    /// Adds a step: its label on the slider, and the traces drawn at that step, built as a
    /// [`Figure`] of their own (its title and axes are not used). The first step is shown first.
    /// With several panels, these traces go on the first; see [`SliderFigure::step_panels`].
    pub fn step(self, label: &str, traces: Figure) -> Self {
        self.step_panels(label, vec![traces])
    }

    /// Adds a step whose traces are on several panels: `panels[k]`'s traces go on panel k (0 the
    /// figure the slider was made from, then the panels of [`SliderFigure::panel`] in order).
    /// Panels beyond those the figure has are dropped.
    pub fn step_panels(mut self, label: &str, panels: Vec<Figure>) -> Self {
        let mut data = Vec::new();
        for (k, traces) in panels.iter().enumerate().take(1 + self.panels.len()) {
            data.extend(traces_of(traces).into_iter().map(|t| on_panel(t, k)));
        }
        self.steps.push((label.to_string(), data));
        self
    }

    /// Adds a panel (a pair of axes) to the right of the others, or below them after
    /// [`SliderFigure::stacked`]: `fixed`'s axis labels and types, its title above the panel,
    /// and its traces drawn at every step. Steps put traces on it with
    /// [`SliderFigure::step_panels`].
    pub fn panel(mut self, fixed: Figure) -> Self {
        let k = 1 + self.panels.len();
        let spec = spec_of(&fixed.plot());
        let layout = &spec["layout"];
        self.panels.push(Panel {
            x_axis: layout.get("xaxis").cloned().unwrap_or_else(|| json!({})),
            y_axis: layout.get("yaxis").cloned().unwrap_or_else(|| json!({})),
            title: layout["title"]["text"].as_str().unwrap_or("").to_string(),
            fixed: traces_of(&fixed).into_iter().map(|t| on_panel(t, k)).collect(),
        });
        self
    }

    /// Lays the panels out one above the other (the first at the top), each as tall as a plain
    /// figure is, instead of side by side.
    pub fn stacked(mut self) -> Self {
        self.stacked = true;
        self
    }

    /// How many steps the slider has.
    pub fn step_count(&self) -> usize {
        self.steps.len()
    }

    /// The plotly spec: the fixed traces (of every panel), then every step's traces (visible only
    /// in step 0), a slider whose step k makes the fixed traces and step k's visible, and axis
    /// ranges fixed to the extent of all steps (linear axes, per panel), so the axes stay put while
    /// the slider moves. Bars overlay (a step's bars over a panel's fixed ones).
    pub fn spec(&self) -> Value {
        let mut spec = spec_of(&self.base.plot());
        let mut fixed: Vec<Value> = spec.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
        fixed.extend(self.panels.iter().flat_map(|p| p.fixed.iter().cloned()));
        let mut data = fixed.clone();
        // owner[i]: None for a fixed trace, Some(k) for a trace of step k.
        let mut owner: Vec<Option<usize>> = vec![None; fixed.len()];
        for (k, (_, traces)) in self.steps.iter().enumerate() {
            for t in traces {
                let mut t = t.clone();
                t["visible"] = json!(k == 0);
                data.push(t);
                owner.push(Some(k));
            }
        }
        let steps: Vec<Value> = self
            .steps
            .iter()
            .enumerate()
            .map(|(k, (label, _))| {
                let visible: Vec<bool> = owner.iter().map(|o| o.is_none_or(|s| s == k)).collect();
                json!({ "label": label, "method": "restyle", "args": [{ "visible": visible }] })
            })
            .collect();
        let layout = &mut spec["layout"];
        let count = 1 + self.panels.len();
        for (k, panel) in self.panels.iter().enumerate() {
            let n = k + 2;
            layout[format!("xaxis{n}")] = panel.x_axis.clone();
            layout[format!("yaxis{n}")] = panel.y_axis.clone();
        }
        let mut annotations = Vec::new();
        for k in 0..count {
            let (xa, ya) = axis_keys(k);
            if count > 1 {
                let (x_dom, y_dom) = domains(k, count, self.stacked);
                layout[xa.as_str()]["domain"] = json!(x_dom);
                layout[xa.as_str()]["anchor"] = json!(axis_ref('y', k));
                layout[ya.as_str()]["domain"] = json!(y_dom);
                layout[ya.as_str()]["anchor"] = json!(axis_ref('x', k));
                if layout[ya.as_str()]["scaleanchor"].is_string() {
                    layout[ya.as_str()]["scaleanchor"] = json!(axis_ref('x', k));
                }
                if let Some(title) = self.panels.get(k.wrapping_sub(1)).map(|p| p.title.as_str())
                    && !title.is_empty()
                {
                    annotations.push(json!({
                        "text": title, "showarrow": false, "xref": "paper", "yref": "paper",
                        "x": 0.5 * (x_dom[0] + x_dom[1]), "y": y_dom[1],
                        "xanchor": "center", "yanchor": "bottom",
                    }));
                }
            }
            let on_k: Vec<Value> = data.iter().filter(|t| panel_of(t) == k).cloned().collect();
            for (axis, key) in [(xa.as_str(), "x"), (ya.as_str(), "y")] {
                let log = layout[axis]["type"].as_str() == Some("log");
                if let (false, Some((lo, hi))) = (log, extent(&on_k, key)) {
                    let pad = if hi > lo { 0.05 * (hi - lo) } else { 0.5 * lo.abs().max(1.0) };
                    layout[axis]["range"] = json!([lo - pad, hi + pad]);
                    layout[axis]["autorange"] = json!(false);
                }
            }
        }
        if !annotations.is_empty() {
            layout["annotations"] = Value::Array(annotations);
        }
        if data.iter().any(|t| t["type"] == "bar") {
            layout["barmode"] = json!("overlay");
        }
        if !self.steps.is_empty() {
            let rows = if self.stacked { count } else { 1 };
            let base = layout["height"].as_u64().unwrap_or(420) as usize;
            let height = if rows > 1 { rows * PANEL_HEIGHT + 100 } else { base } + SLIDER_HEIGHT;
            layout["height"] = json!(height);
            layout["sliders"] = json!([{
                "active": 0,
                "currentvalue": { "prefix": format!("{} = ", self.label) },
                "pad": { "t": 40 },
                "steps": steps,
            }]);
        }
        spec["data"] = Value::Array(data);
        spec
    }

    /// The spec as JSON text.
    pub fn to_json(&self) -> String {
        self.spec().to_string()
    }

    /// Shows the figure as the output of the current notebook cell (see [`crate::plot::show`]).
    pub fn show(&self) {
        display_specs(&[self.to_json()]);
    }

    /// Writes the figure as a standalone offline HTML page (plotly.js inlined).
    pub fn write_html(&self, path: impl AsRef<Path>) -> Result<()> {
        let page = format!(
            "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"/>\n<script type=\"text/javascript\">{}</script>\n</head>\n<body>\n{}\n</body>\n</html>\n",
            offline_js().0,
            spec_fragment(&self.to_json(), false)
        );
        crate::base::io::write_atomically(path.as_ref(), page.as_bytes())
    }
}

/// The height of each panel of a stacked figure, in pixels.
const PANEL_HEIGHT: usize = 300;

/// A plot's spec as JSON (`{"data": …, "layout": …}`).
fn spec_of(plot: &plotly::Plot) -> Value {
    serde_json::from_str(&plot.to_json()).unwrap_or_else(|_| json!({}))
}

/// The traces of a figure as JSON.
fn traces_of(fig: &Figure) -> Vec<Value> {
    spec_of(&fig.plot).get("data").and_then(Value::as_array).cloned().unwrap_or_default()
}

/// `"x"`, `"x2"`, … : the name a trace uses for panel k's axis (`letter` x or y).
fn axis_ref(letter: char, k: usize) -> String {
    if k == 0 { letter.to_string() } else { format!("{letter}{}", k + 1) }
}

/// The layout keys of panel k's axes: `("xaxis", "yaxis")`, `("xaxis2", "yaxis2")`, …
fn axis_keys(k: usize) -> (String, String) {
    let n = if k == 0 { String::new() } else { (k + 1).to_string() };
    (format!("xaxis{n}"), format!("yaxis{n}"))
}

/// The trace moved to panel k's axes.
fn on_panel(mut trace: Value, k: usize) -> Value {
    if k > 0 {
        trace["xaxis"] = json!(axis_ref('x', k));
        trace["yaxis"] = json!(axis_ref('y', k));
    }
    trace
}

/// The panel a trace is drawn on (0 when it names no axis).
fn panel_of(trace: &Value) -> usize {
    trace["xaxis"]
        .as_str()
        .and_then(|a| a.strip_prefix('x'))
        .and_then(|n| n.parse::<usize>().ok())
        .map_or(0, |n| n - 1)
}

/// The x and y domains (fractions of the figure) of panel k of `count`: side by side, equal
/// widths with a gap; or stacked, panel 0 at the top.
fn domains(k: usize, count: usize, stacked: bool) -> ([f64; 2], [f64; 2]) {
    let gap = if stacked { 0.12 } else { 0.08 };
    let size = (1.0 - gap * (count - 1) as f64) / count as f64;
    let start = k as f64 * (size + gap);
    if stacked {
        ([0.0, 1.0], [1.0 - start - size, 1.0 - start])
    } else {
        ([start, start + size], [0.0, 1.0])
    }
}

/// The smallest and largest finite number in every trace's `key` array (`"x"` or `"y"`); None
/// when there is none (e.g. bar charts with string labels on x).
fn extent(data: &[Value], key: &str) -> Option<(f64, f64)> {
    let values = data.iter().filter_map(|t| t.get(key)?.as_array()).flatten().filter_map(Value::as_f64);
    values.filter(|v| v.is_finite()).fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn three_steps() -> SliderFigure {
        let mut fig = Figure::new("t").axes("μ", "nats").dashed("flat", &[0.0, 2.0], &[1.0, 1.0]).slider("μ");
        for k in 0..3 {
            let x = k as f64;
            fig = fig.step(
                &format!("{k}"),
                Figure::new("").points("a", &[x], &[x * x]).line("b", &[x, x], &[0.0, 4.0]),
            );
        }
        fig
    }

    #[test]
    fn each_step_shows_the_fixed_traces_and_its_own() {
        let spec = three_steps().spec();
        let data = spec["data"].as_array().unwrap();
        assert_eq!(data.len(), 1 + 3 * 2);
        let steps = spec["layout"]["sliders"][0]["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 3);
        for (k, step) in steps.iter().enumerate() {
            let visible: Vec<bool> =
                step["args"][0]["visible"].as_array().unwrap().iter().map(|v| v.as_bool().unwrap()).collect();
            let expected: Vec<bool> = (0..7).map(|i| i == 0 || (i - 1) / 2 == k).collect();
            assert_eq!(visible, expected, "step {k}");
            assert_eq!(step["label"], json!(k.to_string()));
        }
        // Before the slider moves, step 0 is what is drawn.
        let initial: Vec<bool> =
            data.iter().map(|t| t.get("visible").and_then(Value::as_bool).unwrap_or(true)).collect();
        assert_eq!(initial, vec![true, true, true, false, false, false, false]);
    }

    #[test]
    fn axes_hold_every_step() {
        let spec = three_steps().spec();
        // x spans 0..2 over all steps, y 0..4: 5% padding each side.
        assert_eq!(spec["layout"]["xaxis"]["range"], json!([-0.1, 2.1]));
        assert_eq!(spec["layout"]["yaxis"]["range"], json!([-0.2, 4.2]));
        assert_eq!(spec["layout"]["xaxis"]["title"]["text"], json!("μ"));
    }

    #[test]
    fn no_steps_is_a_plain_figure() {
        let spec = Figure::new("t").line("a", &[0.0, 1.0], &[0.0, 1.0]).slider("s").spec();
        assert!(spec["layout"].get("sliders").is_none());
        assert_eq!(spec["data"].as_array().unwrap().len(), 1);
    }
}
