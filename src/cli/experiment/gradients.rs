//! `vaelab experiment gradients`: lesson 03a's variances of the score-function and
//! reparameterisation gradients against the dimension and the number of draws
//! ([`crate::lessons::gradients::run_experiment`]).

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::base::error::Result;
use crate::lessons::gradients::{
    GradientConfig, dimension_plot, dimension_table, run_experiment, sample_count_plot, sample_count_table,
};

use super::{CommonArgs, Work, Written, write_outputs};

/// Arguments of `vaelab experiment gradients`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Dimensions Z of q = N(μ1, σ²I) (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16,32")]
    pub dims: Vec<usize>,
    /// Draws per dimension for the single-draw variances.
    #[arg(long, default_value_t = 20_000)]
    pub draws: usize,
    /// Draws N per averaged gradient (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64,256")]
    pub sample_counts: Vec<usize>,
    /// Independent averages per N.
    #[arg(long, default_value_t = 2000)]
    pub repeats: usize,
}

/// Runs [`run_experiment`] with f(z) = z², μ = 0.5, σ = 0.8 (the lesson's case) and writes
/// `gradients.json` (the [`crate::lessons::gradients::GradientsResult`]) and `gradients.html` (variance
/// against Z, variance against N).
///
/// # Errors
/// A bad size (`InvalidParameter`), `Io` writing.
pub fn run(args: &Args) -> Result<Written> {
    work(args)?;
    let config = config(args);
    let mut rng = StdRng::seed_from_u64(args.common.seed);
    let result = run_experiment(&config, &mut rng)?;
    let summary = format!(
        "∂/∂μ₁ E[Σⱼ zⱼ²] under N(μ = {}, σ = {}) per coordinate: gradient (mean ± SE of {} draws) and variance of one draw\n{}\nvariance of the N-draw average over {} repeats (Z = {})\n{}",
        config.mean,
        config.sigma,
        config.draws,
        dimension_table(&result.by_dimension),
        config.repeats,
        config.count_dim,
        sample_count_table(&result.by_sample_count)
    );
    write_outputs(
        &args.common.out,
        "gradients",
        &result,
        "Lesson 03a: score-function and reparameterisation gradients",
        summary,
        &[dimension_plot(&result.by_dimension), sample_count_plot(&result.by_sample_count)],
    )
}

fn config(args: &Args) -> GradientConfig {
    GradientConfig {
        dims: args.dims.clone(),
        draws: args.draws,
        sample_counts: args.sample_counts.clone(),
        repeats: args.repeats,
        ..GradientConfig::default()
    }
}

/// The guard of [`run`]: the configuration's own check, which bounds the random numbers it draws
/// ([`crate::lessons::gradients::MAX_NUMBERS`]: seconds of work, no estimate needed).
///
/// # Errors
/// As [`GradientConfig::validate`].
pub fn work(args: &Args) -> Result<Work> {
    config(args).validate()?;
    Ok(Work::new("experiment gradients", "--dims × --draws, --sample-counts × --repeats"))
}
