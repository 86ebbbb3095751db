//! `vaelab experiment NAME --out DIR`: each lesson's experiment, rerun outside Jupyter.
//!
//! Every experiment writes two files into `DIR`: `NAME.json` (the configuration and every number
//! the lesson prints) and `NAME.html` (an offline page with the lesson's plots, no network). The
//! notebook and the command call the same library function, so their numbers agree for the same
//! configuration and seed. (Lesson 05: `--seed 5` trains the notebook's models bit for bit, but the
//! Monte-Carlo estimates agree only within their standard errors, because the notebook's
//! evaluation generator has served Steps 2–4 before the experiment draws from it.)
//!
//! | command | lesson | library function |
//! |---|---|---|
//! | `vaelab experiment gradients` | `03a-gradients-of-an-expectation.ipynb` | [`crate::lessons::gradients::run_experiment`] |
//! | `vaelab experiment amortised` | `03b-amortised-inference.ipynb` | [`crate::lessons::amortised::experiment`] |
//! | `vaelab experiment prior` | `05-prior-and-aggregate-posterior.ipynb` | [`crate::lessons::prior::run_experiment`] (the notebook calls [`crate::lessons::prior::measure_fixed_prior`] and [`crate::lessons::prior::compare_priors`]) |
//! | `vaelab experiment minibatch` | `06-minibatch-kl-weight.ipynb` | [`crate::lessons::minibatch::minibatch_experiment`] |
//! | `vaelab experiment rate-distortion` | `07-noisy-channel.ipynb` | [`crate::lessons::channel::rate_distortion`] |
//! | `vaelab experiment minimal-representation` | `08-minimal-representation.ipynb` | [`crate::lessons::representation::train_blob_model`], [`crate::lessons::representation::unit_report`] |
//! | `vaelab experiment collapses` | `09-two-collapses.ipynb` | [`crate::lessons::collapse::collapse_runs`] |
//! | `vaelab experiment cvae` | `10-cvae.ipynb` | [`crate::lessons::conditional::run`] |
//!
//! To add one: a file in this folder with an `Args` struct (flattening [`CommonArgs`]) and a
//! `run(&Args) -> Result<Written>` that ends in [`write_outputs`]; one variant in [`Experiment`].

use std::path::{Path, PathBuf};

use plotly::Plot;
use serde::Serialize;

use crate::base::error::{Error, Result};

pub mod amortised;
pub mod collapses;
pub mod cvae;
pub mod gradients;
pub mod minibatch;
pub mod minimal_representation;
pub mod prior;
pub mod rate_distortion;

/// Arguments every experiment takes.
#[derive(Clone, Debug, clap::Args)]
pub struct CommonArgs {
    /// Output folder (created if missing); receives NAME.json and NAME.html.
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of every random draw of the experiment.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// `vaelab experiment ...`.
#[derive(Clone, Debug, clap::Args)]
pub struct ExperimentArgs {
    /// Which experiment.
    #[command(subcommand)]
    pub experiment: Experiment,
}

/// The experiments, one per lesson that has one.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum Experiment {
    /// Lesson 03a (gradients of an expectation): variance of the score-function and
    /// reparameterisation gradients of E[Σ zⱼ²] against the dimension and the number of draws.
    Gradients(gradients::Args),
    /// Lesson 03b (amortised inference): encoders of growing capacity on the linear-Gaussian toy,
    /// their approximation and amortisation gaps; the same two gaps on a small digit VAE.
    Amortised(amortised::Args),
    /// Lesson 05 (prior): the same 2-D model with N(0, I) and with a learned mixture prior; ELBO,
    /// IS log-likelihood and ELBO surgery against each model's own prior.
    Prior(prior::Args),
    /// Lesson 06 (mini-batch): noise of the two terms' batch estimates and gradients against B;
    /// training with per-example, uniform 1/M and Blundell's per-batch KL weights.
    Minibatch(minibatch::Args),
    /// Lesson 07 (noisy channel): β-sweep on 8 Gaussians of known entropy; rate, distortion,
    /// H − D ≤ R, channel noise per unit.
    RateDistortion(rate_distortion::Args),
    /// Lesson 09 (two collapses): β-sweep on digits (rate, active units, KL(q_agg ‖ p), IS
    /// log-likelihood, prior samples), independent pixels at β = 1, KL warm-up and free bits.
    Collapses(collapses::Args),
    /// Lesson 10 (CVAE): a VAE, a CVAE with P(z|c) = N(0, I) and one with a learned P(z|c) on the
    /// digits; ELBO, KL, IS log P(x|c) and log P(x), class grids.
    Cvae(cvae::Args),
    /// Lesson 08 (minimal representation): one model per latent size on blob images with known
    /// factors; active units, KL per unit, traversals; the same on the digits.
    MinimalRepresentation(minimal_representation::Args),
}

/// What an experiment wrote, and a few lines for the terminal.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    /// `DIR/NAME.json`.
    pub json: PathBuf,
    /// `DIR/NAME.html`.
    pub html: PathBuf,
    /// A short human-readable summary of the results.
    pub summary: String,
}

/// Runs the chosen experiment.
///
/// # Errors
/// Whatever the experiment's configuration check or training returns; `Io` if the outputs cannot
/// be written.
pub fn run(args: &ExperimentArgs) -> Result<Written> {
    match &args.experiment {
        Experiment::Gradients(a) => gradients::run(a),
        Experiment::Amortised(a) => amortised::run(a),
        Experiment::Prior(a) => prior::run(a),
        Experiment::Minibatch(a) => minibatch::run(a),
        Experiment::RateDistortion(a) => rate_distortion::run(a),
        Experiment::Collapses(a) => collapses::run(a),
        Experiment::Cvae(a) => cvae::run(a),
        Experiment::MinimalRepresentation(a) => minimal_representation::run(a),
    }
}

/// Writes `result` as pretty JSON to `out/name.json` and an offline page with `plots` to
/// `out/name.html` (heading `heading`, `summary` as its text).
///
/// # Errors
/// `Io` if the folder or a file cannot be written; `Format` if `result` does not serialise (a
/// non-finite float serialises as `null`, never as an error).
pub fn write_outputs<T: Serialize>(
    out: &Path,
    name: &str,
    result: &T,
    heading: &str,
    summary: String,
    plots: &[Plot],
) -> Result<Written> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let json = out.join(format!("{name}.json"));
    let body = serde_json::to_string_pretty(result).map_err(|e| {
        Error::format(json.display().to_string(), format!("cannot serialise the result: {e}"))
    })?;
    crate::base::io::write_atomically(&json, (body + "\n").as_bytes())?;
    let html = out.join(format!("{name}.html"));
    crate::plot::report::write_page(&html, heading, &summary, plots)?;
    Ok(Written { json, html, summary })
}
