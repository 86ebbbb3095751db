//! `vaelab experiment rate-distortion`: lesson 07's β-sweep ([`crate::lessons::channel::rate_distortion`]).

use crate::base::error::Result;
use crate::lessons::channel::{RateDistortionConfig, rate_distortion};

use super::{CommonArgs, Work, Written, write_outputs};

/// Arguments of `vaelab experiment rate-distortion`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The β values, one model each (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.3,1,2,3")]
    pub betas: Vec<f64>,
    /// Epochs per model (the notebook uses 100).
    #[arg(long, default_value_t = 100)]
    pub epochs: usize,
}

/// Runs the sweep of [`RateDistortionConfig::small`] and writes `rate-distortion.json` (the
/// [`crate::lessons::channel::RateDistortion`]) and `rate-distortion.html` (the R–D plot, the channel noise
/// and the rate per unit).
///
/// # Errors
/// A bad β or epoch count (`InvalidParameter`), `Diverged` from training, `Io` writing.
pub fn run(args: &Args) -> Result<Written> {
    let mut progress = work(args)?.check()?;
    let config = RateDistortionConfig::small(args.betas.clone(), args.epochs, args.common.seed);
    let epoch = Work::epoch(&config.vae_config(), config.n_train);
    let result = rate_distortion(&config, &mut |_, _| progress.advance(epoch))?;
    progress.finish();
    let (sigma, kl) = result.channel_noise_plots();
    let summary = format!(
        "H (data entropy) = {:.4} nats; D at R = 0 = {:.4} nats\n{}",
        result.entropy,
        config.distortion_at_zero_rate(),
        result.table()
    );
    write_outputs(
        &args.common.out,
        "rate-distortion",
        &result,
        "Lesson 07: rate vs distortion on 8 Gaussians",
        summary,
        &[result.rate_distortion_plot(), sigma, kl],
    )
}

/// The estimated work of [`run`]: `--epochs` per β on the training points, and the ELBO draws
/// on the test points.
///
/// # Errors
/// `InvalidParameter` for an empty or bad β list or zero epochs.
pub fn work(args: &Args) -> Result<Work> {
    let config = RateDistortionConfig::small(args.betas.clone(), args.epochs, args.common.seed);
    config.validate()?;
    let vae = config.vae_config();
    Ok(Work::new("experiment rate-distortion", "--betas × --epochs")
        .training(&vae, config.betas.len(), config.epochs, config.n_train)
        .sampling(&vae, config.betas.len(), config.n_test.saturating_mul(config.eval_samples)))
}
