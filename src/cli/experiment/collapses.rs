//! `vaelab experiment collapses`: lesson 09's two collapses ([`crate::lessons::collapse::collapse_runs`]).

use crate::base::error::Result;
use crate::engine::data::Mnist10k;
use crate::lessons::collapse::{CollapseConfig, CollapseData, Collapses, Variant, collapse_runs};

use super::{CommonArgs, Work, Written, write_outputs};

/// Arguments of `vaelab experiment collapses`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The β values of the sweep on digits, one model each (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "0.01,0.1,1,4,16")]
    pub betas: Vec<f64>,
    /// Epochs per model (the notebook uses 10).
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Training digits (evenly spaced over the 8,000).
    #[arg(long, default_value_t = 2000)]
    pub n_train: usize,
    /// Test digits (evenly spaced over the 2,000).
    #[arg(long, default_value_t = 500)]
    pub n_test: usize,
    /// Test digits given the importance-sampled log-likelihood (at most n_test).
    #[arg(long, default_value_t = 200)]
    pub n_is: usize,
    /// K, importance samples per test digit.
    #[arg(long, default_value_t = 50)]
    pub k: usize,
    /// β of the remedies (constant, KL warm-up over half the steps, free bits).
    #[arg(long, default_value_t = 16.0)]
    pub remedy_beta: f64,
    /// Free bits λ, nats per latent unit.
    #[arg(long, default_value_t = 0.5)]
    pub free_bits: f64,
}

impl Args {
    fn config(&self, data: CollapseData) -> CollapseConfig {
        CollapseConfig {
            n_train: self.n_train,
            n_test: self.n_test,
            n_is: self.n_is,
            k: self.k,
            ..CollapseConfig::small(data, self.epochs, self.common.seed)
        }
    }
}

/// The remedies of lesson 09 at β: constant, KL warm-up over the first half of training, free bits
/// λ.
pub fn remedy_variants(config: &CollapseConfig, beta: f64, lambda: f64) -> Vec<Variant> {
    let half = (config.epochs * config.steps_per_epoch()).div_ceil(2).max(1);
    vec![Variant::constant(beta), Variant::warmup(beta, half), Variant::free_bits(beta, lambda)]
}

/// The three runs of the lesson, in JSON.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CollapsesResult {
    /// β sweep on the digits.
    pub sweep: Collapses,
    /// β = 1 on independent-pixel data: the strong-decoder collapse.
    pub independent_pixels: Collapses,
    /// Constant, warm-up and free bits at `remedy_beta`.
    pub remedies: Collapses,
}

/// The estimated work of [`run`]: every run of the sweep, independent pixels and the remedies
/// trains `--epochs` on `--n-train` digits and evaluates the test digits and `--n-is × --k`
/// importance draws.
///
/// # Errors
/// None today; a `Result` like every experiment's.
pub fn work(args: &Args) -> Result<Work> {
    let config = args.config(CollapseData::Digits);
    let vae = config.vae_config(784);
    // The sweep, independent pixels at β = 1, and the three remedies.
    let runs = args.betas.len().saturating_add(1 + 3);
    let passes = config.n_test.saturating_mul(1 + config.surgery_samples);
    Ok(Work::new("experiment collapses", "--betas × --epochs × --n-train, --n-is × --k")
        .training(&vae, runs, config.epochs, config.n_train)
        .sampling(&vae, runs, passes)
        .sampling(&vae, runs, config.n_is.saturating_mul(config.k)))
}

/// Runs the β sweep on digits, β = 1 on independent pixels and the remedies, and writes
/// `collapses.json` and `collapses.html` (the three plots against β and the image grids).
///
/// # Errors
/// A bad β or budget (`InvalidParameter`), `Diverged` from training, `Io` reading the digits or
/// writing.
pub fn run(args: &Args) -> Result<Written> {
    let mut progress = work(args)?.check()?;
    let sweep_config = args.config(CollapseData::Digits);
    let variants: Vec<Variant> = args.betas.iter().map(|&b| Variant::constant(b)).collect();
    let epoch = Work::epoch(&sweep_config.vae_config(784), sweep_config.n_train);
    let digits = Mnist10k::load()?;
    let sweep = collapse_runs(&digits, &sweep_config, &variants, &mut |_, _| progress.advance(epoch))?;
    let independent_pixels = collapse_runs(
        &digits,
        &args.config(CollapseData::IndependentPixels),
        &[Variant::constant(1.0)],
        &mut |_, _| progress.advance(epoch),
    )?;
    let remedies = collapse_runs(
        &digits,
        &sweep_config,
        &remedy_variants(&sweep_config, args.remedy_beta, args.free_bits),
        &mut |_, _| progress.advance(epoch),
    )?;
    progress.finish();
    let summary = format!(
        "D₀ (best distortion without z) = {:.2} nats; log N = {:.2}\n\nβ sweep on digits:\n{}\nβ = 1 on independent pixels (exact mean log p*(x) = {:.2}):\n{}\nremedies:\n{}",
        sweep.distortion_at_zero_rate,
        sweep.log_n,
        sweep.table(),
        independent_pixels.exact_log_likelihood.map_or(f64::NAN, |e| e.mean),
        independent_pixels.table(),
        remedies.table()
    );
    let plots = [
        sweep.rate_plot(),
        sweep.likelihood_plot(),
        sweep.distance_plot(),
        sweep.sample_grid(8),
        sweep.reconstruction_grid(),
        independent_pixels.sample_grid(8),
        remedies.sample_grid(8),
    ];
    let result = CollapsesResult { sweep, independent_pixels, remedies };
    write_outputs(&args.common.out, "collapses", &result, "Lesson 09: the two collapses", summary, &plots)
}
