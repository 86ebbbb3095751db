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

use super::{CommonArgs, Work, Written, write_outputs};

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

fn config(args: &Args) -> PriorExperimentConfig {
    PriorExperimentConfig {
        epochs: args.epochs,
        components: args.components,
        k: args.k,
        n_test: args.test,
        seed: args.common.seed,
        ..PriorExperimentConfig::lesson()
    }
}

/// Multiply-adds of one epoch of the mixture-prior model: the network, and the mixture's
/// log p(z) at K × Z per example.
fn mixture_epoch(config: &PriorExperimentConfig) -> u128 {
    let mixture = (config.components as u128).saturating_mul(config.latent_dim as u128);
    let rows = super::TRAIN_DIGITS as u128;
    Work::epoch(&config.vae_config(config.learned_prior()), super::TRAIN_DIGITS)
        .saturating_add(mixture.saturating_mul(3 * rows))
}

/// The estimated work of [`run`]: both models' epochs, and each model's ELBO and
/// importance-sampling draws on `--test` digits.
///
/// # Errors
/// `InvalidParameter` for zero epochs, components or K, or `--test` outside 2..=2000.
pub fn work(args: &Args) -> Result<Work> {
    let config = config(args);
    config.validate()?;
    if !(2..=super::TEST_DIGITS).contains(&config.n_test) {
        return Err(crate::base::error::Error::invalid(
            "--test",
            config.n_test,
            format!("must be in 2..={} (the test digits)", super::TEST_DIGITS),
        ));
    }
    let fixed_vae = config.vae_config(crate::engine::vae::LatentPrior::StandardNormal);
    let mixture = (config.components as u128).saturating_mul(config.latent_dim as u128);
    let passes = config.n_test.saturating_mul(config.elbo_samples.saturating_add(config.k));
    Ok(Work::new("experiment prior", "--epochs, --components, --test × --k")
        .training(&fixed_vae, 1, config.epochs, super::TRAIN_DIGITS)
        .plus(mixture_epoch(&config).saturating_mul(config.epochs as u128))
        .sampling(&fixed_vae, 2, passes)
        .plus(mixture.saturating_mul(passes as u128)))
}

/// Trains both models and writes `prior.json` ([`crate::lessons::prior::PriorComparison`]) and
/// `prior.html` (draws from each model's aggregate posterior, with the learned prior's contours).
///
/// # Errors
/// `InvalidParameter` for zero epochs, components or K, or fewer than 2 test digits (checked
/// before the digits are loaded); `Diverged` from training; `Io` reading the digits or writing.
pub fn run(args: &Args) -> Result<Written> {
    let mut progress = work(args)?.check()?;
    let config = config(args);
    let digits = Mnist10k::load()?;
    let epoch = mixture_epoch(&config);
    let run = run_experiment(&config, &digits, &mut |_, _| progress.advance(epoch))?;
    progress.finish();
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
