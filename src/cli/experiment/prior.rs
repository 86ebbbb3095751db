//! `vaelab experiment prior`: lesson 05's comparison of the fixed prior N(0, I) with a learned
//! mixture-of-Gaussians prior on the same 2-D model (same data, seed and epochs).
//!
//! The experiment is [`crate::lessons::prior::run_experiment`]: the notebook's models (a
//! 784-64-2 Bernoulli VAE on the shipped digits, Adam 1e-3, B = 128, 12 epochs), trained from
//! `--seed` (default 0; `--seed 5` trains the notebook's models), then
//! [`crate::lessons::prior::compare_priors`], the function the notebook calls: test ELBO (S = 10
//! draws per digit), importance-sampled log p(x) (K = 20), ELBO surgery against each model's own
//! prior, and paired differences over the test digits.

use ndarray::Array2;

use crate::base::error::Result;
use crate::engine::data::Mnist10k;
use crate::lessons::prior::{PriorExperimentConfig, run_experiment};
use crate::plot::Figure;

use super::{CommonArgs, Written, write_outputs};

/// Arguments of `vaelab experiment prior`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Epochs for each model (the notebook: 12).
    #[arg(long, default_value_t = 12)]
    pub epochs: usize,
    /// Components of the learned mixture prior (the notebook: 10).
    #[arg(long, default_value_t = 10)]
    pub components: usize,
    /// Importance samples per test digit for log p(x) (the notebook: 20).
    #[arg(long, default_value_t = 20)]
    pub k: usize,
    /// Test digits measured, evenly spaced over the 2,000 (at least 2; the notebook: all 2,000).
    #[arg(long, default_value_t = 2000)]
    pub test: usize,
}

/// Trains both models and writes `prior.json` ([`crate::lessons::prior::PriorComparison`]) and
/// `prior.html` (draws from each model's aggregate posterior, with the learned prior's contours).
///
/// # Errors
/// `InvalidParameter` for zero epochs, components or K, or fewer than 2 test digits (checked
/// before the digits are loaded); `Diverged` from training; `Io` reading the digits or writing.
pub fn run(args: &Args) -> Result<Written> {
    let config = PriorExperimentConfig {
        epochs: args.epochs,
        components: args.components,
        k: args.k,
        n_test: args.test,
        seed: args.common.seed,
        ..PriorExperimentConfig::lesson()
    };
    config.validate()?;
    let digits = Mnist10k::load()?;
    let run = run_experiment(&config, &digits, &mut |_, _| {})?;
    let result = &run.comparison;

    let column = |d: &Array2<f64>, j: usize| d.column(j).to_vec();
    let fixed_plot = Figure::new("N(0, I) prior: draws from q_agg(z)")
        .axes("z₁", "z₂")
        .points(
            &format!("{} draws from q_agg(z)", run.fixed_draws.nrows()),
            &column(&run.fixed_draws, 0),
            &column(&run.fixed_draws, 1),
        )
        .plot();
    let learned_plot = result.learned_prior_plot()?;
    let n_test = result.elbo_difference.samples;
    let mut summary = String::new();
    for m in &result.models {
        summary += &format!(
            "{:16} ELBO {:8.3} ± {:.3}  rate {:6.3}  IS log p(x) (K = {}) {:8.3} ± {:.3}  I(n; z) {:.3} ± {:.3}  KL(q_agg‖p) {:.3} ± {:.3}\n",
            m.name,
            m.elbo.elbo.mean,
            m.elbo.elbo.stderr,
            m.elbo.rate.mean,
            result.k,
            m.is_log_likelihood.mean,
            m.is_log_likelihood.stderr,
            m.surgery.mutual_information.mean,
            m.surgery.mutual_information.stderr,
            m.surgery.marginal_kl.mean,
            m.surgery.marginal_kl.stderr
        );
    }
    summary += &format!(
        "mixture − N(0, I), paired over {n_test} digits: ELBO {:+.3} ± {:.3}, log p(x) {:+.3} ± {:.3}\n",
        result.elbo_difference.mean,
        result.elbo_difference.stderr,
        result.log_likelihood_difference.mean,
        result.log_likelihood_difference.stderr
    );
    write_outputs(
        &args.common.out,
        "prior",
        result,
        "Lesson 05: a fixed N(0, I) prior against a learned mixture prior",
        summary,
        &[fixed_plot, learned_plot],
    )
}
