//! `vaelab experiment amortised`: lesson 03b's encoders on the linear-Gaussian toy and the digit
//! VAE's two gaps ([`crate::lessons::amortised::experiment`]).

use crate::base::error::Result;
use crate::engine::data::Mnist10k;
use crate::lessons::amortised::{DigitConfig, ExperimentConfig, experiment, sweep_table, trace_plot};

use super::{CommonArgs, Written, write_outputs};

/// Arguments of `vaelab experiment amortised`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Widths of the one-layer tanh encoders (comma-separated; the linear encoder always runs).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,32")]
    pub hidden_sizes: Vec<usize>,
    /// Training steps of every encoder (full-batch Adam).
    #[arg(long, default_value_t = 3000)]
    pub steps: usize,
    /// Training points drawn from the model.
    #[arg(long, default_value_t = 256)]
    pub train: usize,
    /// Held-out points the gaps are measured on.
    #[arg(long, default_value_t = 256)]
    pub eval: usize,
    /// Test digits on which the digit VAE's gaps are measured (0: skip the digit part).
    #[arg(long, default_value_t = 12)]
    pub digit_points: usize,
    /// Epochs of the digit VAE.
    #[arg(long, default_value_t = 3)]
    pub digit_epochs: usize,
}

/// Runs [`experiment`] and writes `amortised.json` (the
/// [`crate::lessons::amortised::ExperimentResult`]) and `amortised.html` (the amortisation gap
/// against training steps).
///
/// # Errors
/// A bad size (`InvalidParameter`), the digits unreadable, `Diverged`, `Io` writing.
pub fn run(args: &Args) -> Result<Written> {
    let mut config = ExperimentConfig::lesson(args.common.seed);
    config.hidden_sizes = args.hidden_sizes.clone();
    config.steps = args.steps;
    config.n_train = args.train;
    config.n_eval = args.eval;
    config.digits = (args.digit_points > 0).then(|| DigitConfig {
        n_points: args.digit_points,
        epochs: args.digit_epochs,
        seed: args.common.seed,
        ..DigitConfig::small()
    });
    let digits = match config.digits {
        Some(_) => Some(Mnist10k::load()?),
        None => None,
    };
    let result = experiment(&config, digits.as_ref())?;
    let mut summary = format!(
        "approximation gap of the diagonal family {:.5} nats (every x); floor of a one-unit encoder {:.5}\n{}",
        result.approximation_gap,
        result.line_floor,
        sweep_table(&result.sweep)
    );
    if let Some(d) = &result.digits {
        summary += &format!(
            "digit VAE ({} test digits): approximation gap {:.3} ± {:.3}, amortisation gap {:.3} ± {:.3} nats",
            d.config.n_points,
            d.approximation.mean,
            d.approximation.stderr,
            d.amortisation.gap.mean,
            d.amortisation.gap.stderr
        );
    }
    write_outputs(
        &args.common.out,
        "amortised",
        &result,
        "Lesson 03b: the approximation and the amortisation gap",
        summary,
        &[trace_plot(&result.traces, result.approximation_gap, result.line_floor)],
    )
}
