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
    steps: Vec<(String, Vec<Value>)>,
}

/// The slider's height below the plot, in pixels (plotly draws it inside the figure's height).
const SLIDER_HEIGHT: usize = 90;

impl Figure {
    /// Turns the figure into a [`SliderFigure`]: the traces it has so far stay drawn at every step;
    /// `label` names what the slider moves (shown as `label = <step label>`).
    pub fn slider(self, label: &str) -> SliderFigure {
        SliderFigure { base: self, label: label.to_string(), steps: Vec::new() }
    }
}

impl SliderFigure {
    /// Adds a step: its label on the slider, and the traces drawn at that step, built as a
    /// [`Figure`] of their own (its title and axes are not used). The first step is shown first.
    pub fn step(mut self, label: &str, traces: Figure) -> Self {
        let data = serde_json::from_str::<Value>(&traces.plot.to_json())
            .ok()
            .and_then(|spec| spec.get("data").and_then(Value::as_array).cloned())
            .unwrap_or_default();
        self.steps.push((label.to_string(), data));
        self
    }

    /// How many steps the slider has.
    pub fn step_count(&self) -> usize {
        self.steps.len()
    }

    /// The plotly spec: the fixed traces, then every step's traces (visible only in step 0), a
    /// slider whose step k makes the fixed traces and step k's visible, and axis ranges fixed to
    /// the extent of all steps (linear axes), so the axes stay put while the slider moves.
    pub fn spec(&self) -> Value {
        let mut spec: Value = serde_json::from_str(&self.base.plot().to_json()).unwrap_or_else(|_| json!({}));
        let fixed: Vec<Value> = spec.get("data").and_then(Value::as_array).cloned().unwrap_or_default();
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
        for (axis, key) in [("xaxis", "x"), ("yaxis", "y")] {
            let log = layout[axis]["type"].as_str() == Some("log");
            if let (false, Some((lo, hi))) = (log, extent(&data, key)) {
                let pad = if hi > lo { 0.05 * (hi - lo) } else { 0.5 * lo.abs().max(1.0) };
                layout[axis]["range"] = json!([lo - pad, hi + pad]);
                layout[axis]["autorange"] = json!(false);
            }
        }
        if !self.steps.is_empty() {
            let height = layout["height"].as_u64().unwrap_or(420) as usize + SLIDER_HEIGHT;
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
