//! `vaelab experiment minibatch`: lesson 06's noise measurement and KL-weight comparison
//! ([`crate::lessons::minibatch::minibatch_experiment`]).

use crate::base::error::Result;
use crate::engine::data::Mnist10k;
use crate::lessons::minibatch::{
    KlWeightConfig, MinibatchConfig, coefficients_plot, minibatch_experiment, runs_table,
};

use super::{CommonArgs, Work, Written, write_outputs};

/// Arguments of `vaelab experiment minibatch`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Batch sizes of the comparison, each trained with every scheme (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "16,128")]
    pub batches: Vec<usize>,
    /// Epochs per training run.
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    /// Training digits (a seeded subset of the 8,000).
    #[arg(long, default_value_t = 2000)]
    pub train: usize,
    /// Test digits.
    #[arg(long, default_value_t = 1000)]
    pub test: usize,
    /// Training digits on which the noise of the two terms is measured.
    #[arg(long, default_value_t = 1024)]
    pub noise_n: usize,
    /// Random batches per batch size for the sampled variances.
    #[arg(long, default_value_t = 400)]
    pub noise_repeats: usize,
    /// Epochs of the model whose noise is measured.
    #[arg(long, default_value_t = 3)]
    pub noise_epochs: usize,
}

/// Runs [`minibatch_experiment`] on the shipped digits and writes `minibatch.json` (the
/// [`crate::lessons::minibatch::MinibatchResult`]) and `minibatch.html` (the coefficients of an epoch at the
/// smallest batch size, the variance of each term's batch mean, the relative noise of each term
/// and gradient).
///
/// # Errors
/// A bad size (`InvalidParameter`), the digits unreadable, `Diverged` from training, `Io` writing.
pub fn run(args: &Args) -> Result<Written> {
    let mut progress = work(args)?.check()?;
    let config = config(args);
    let epoch = Work::epoch(&config.training.vae_config(), config.training.n_train);
    let digits = Mnist10k::load()?;
    let result = minibatch_experiment(&config, &digits, &mut |_, _| progress.advance(epoch))?;
    progress.finish();
    let smallest = config.batch_sizes.iter().copied().min().expect("checked non-empty");
    let m = crate::lessons::minibatch::batches_per_epoch(args.train, smallest)?;
    let summary =
        format!("{}\n{}\n{}", result.noise.table(), result.noise.gradient_table(), runs_table(&result.runs));
    write_outputs(
        &args.common.out,
        "minibatch",
        &result,
        "Lesson 06: mini-batch noise of the two terms and the KL weight per batch",
        summary,
        &[coefficients_plot(m)?, result.noise.variance_plot(), result.noise.relative_noise_plot()],
    )
}

fn config(args: &Args) -> MinibatchConfig {
    let mut training = KlWeightConfig::small(args.epochs, args.common.seed);
    training.n_train = args.train;
    training.n_test = args.test;
    MinibatchConfig {
        training,
        batch_sizes: args.batches.clone(),
        noise_n: args.noise_n,
        noise_repeats: args.noise_repeats,
        noise_epochs: args.noise_epochs,
    }
}

/// The estimated work of [`run`]: every (batch size, KL weight) run's epochs and test ELBO, the
/// noise model's epochs, the noise population's per-example gradients, and `--noise-repeats`
/// random batches of every size 1, 2, 4, … N of both terms (about 2N index draws a repeat per
/// term, each batch's mean kept until its variance is taken).
///
/// # Errors
/// `InvalidParameter` for a bad size.
pub fn work(args: &Args) -> Result<Work> {
    let config = config(args);
    config.training.validate()?;
    let vae = config.training.vae_config();
    let runs = config.batch_sizes.len().saturating_mul(crate::engine::vae::KlBatchWeights::ALL.len());
    let repeats = config.noise_repeats as u128;
    Ok(Work::new(
        "experiment minibatch",
        "--batches × --epochs × --train, --noise-epochs, --noise-repeats × --noise-n",
    )
    .training(&vae, runs, config.training.epochs, config.training.n_train)
    .sampling(&vae, runs, config.training.n_test.saturating_mul(config.training.eval_samples))
    .training(&vae, 1, config.noise_epochs, config.training.n_train)
    .training(&vae, 1, 1, config.noise_n)
    .drawing(4u128.saturating_mul(config.noise_n as u128).saturating_mul(repeats))
    .holding(2u128.saturating_mul(repeats), std::mem::size_of::<f64>()))
}
