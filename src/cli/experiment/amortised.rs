//! `vaelab experiment amortised`: lesson 03b's encoders on the linear-Gaussian toy and the digit
//! VAE's two gaps ([`crate::lessons::amortised::experiment`]).

use crate::base::error::Result;
use crate::engine::data::Mnist10k;
use crate::lessons::amortised::{DigitConfig, ExperimentConfig, experiment, sweep_table, trace_plot};

use super::{CommonArgs, Work, Written, write_outputs};

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

fn config(args: &Args) -> ExperimentConfig {
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
    config
}

/// The estimated work of [`run`] ([`stage_work`]), and what it holds: the objective trace, the
/// toy data and the widest encoder's weights and activations (f64).
///
/// # Errors
/// None today; a `Result` like every experiment's.
pub fn work(args: &Args) -> Result<Work> {
    Ok(plan(args).2)
}

/// The configuration of `args`, its [`stage_work`] and the [`Work`] they add up to: [`run`] counts
/// its progress in the same stages it checked.
fn plan(args: &Args) -> (ExperimentConfig, Vec<u128>, Work) {
    let config = config(args);
    let stages = stage_work(&config);
    let work = stages.iter().fold(
        Work::new("experiment amortised", "--steps × --train × --hidden-sizes, --digit-epochs"),
        |w, &s| w.plus(s),
    );
    let widest = config.hidden_sizes.iter().copied().max().unwrap_or(0) as u128;
    let points = (config.n_train as u128).saturating_add(config.n_eval as u128);
    let work = work
        .holding(config.steps as u128, std::mem::size_of::<f64>())
        .holding(points.saturating_mul(8), std::mem::size_of::<f64>())
        .holding(
            widest.saturating_mul(points.saturating_add(16)).saturating_mul(4),
            std::mem::size_of::<f64>(),
        );
    (config, stages, work)
}

/// Runs [`experiment`] and writes `amortised.json` (the
/// [`crate::lessons::amortised::ExperimentResult`]) and `amortised.html` (the amortisation gap
/// against training steps).
///
/// # Errors
/// A bad size (`InvalidParameter`), the digits unreadable, `Diverged`, `Io` writing.
pub fn run(args: &Args) -> Result<Written> {
    let (config, stages, work) = plan(args);
    let mut progress = work.check()?;
    let digits = match config.digits {
        Some(_) => Some(Mnist10k::load()?),
        None => None,
    };
    let mut next = stages.iter();
    let result =
        experiment(&config, digits.as_ref(), &mut |_| progress.advance(next.next().copied().unwrap_or(0)))?;
    progress.finish();
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

/// The estimated multiply-adds of each stage of [`experiment`], in the order it reports them:
/// every encoder of the sweep, the two traces, the digits.
///
/// A toy encoder step costs three passes over every training point through the encoder (its
/// parameters and activations) and the exact ELBO of the linear-Gaussian model (D × Z for the
/// mean, D × Z² for the covariance term); the digit part trains a VAE, fits q* per point by
/// `fit_steps` steps of 8 draws, and importance-samples each point.
pub fn stage_work(config: &ExperimentConfig) -> Vec<u128> {
    use crate::lessons::toy::LatentModel;
    let model = crate::lessons::amortised::lesson_model();
    let (d, z) = (model.data_dim() as u128, model.latent_dim() as u128);
    let encoder = |hidden: Option<usize>| -> u128 {
        let per_point = match hidden {
            None => d * 2 * z + 2 * z,
            Some(h) => (h as u128).saturating_mul(d + 2 * z + 2).saturating_add(2 * z),
        };
        let exact_elbo = d * z + d * z * z + d;
        let steps = (config.steps as u128).saturating_mul(config.n_train as u128);
        steps.saturating_mul(3).saturating_mul(per_point.saturating_add(exact_elbo))
    };
    let mut stages = vec![encoder(None)];
    stages.extend(config.hidden_sizes.iter().map(|&h| encoder(Some(h))));
    stages.push(encoder(None));
    stages.push(encoder(Some(1)));
    if let Some(c) = &config.digits {
        let vae = crate::engine::vae::VaeConfig::bernoulli(784, c.hidden.clone(), c.latent_dim);
        let fits = c.fit_steps.saturating_mul(8).saturating_mul(3);
        let draws = fits.saturating_add(c.elbo_samples.saturating_mul(2)).saturating_add(c.is_samples);
        stages.push(
            Work::new("", "").training(&vae, 1, c.epochs, c.n_train).sampling(&vae, c.n_points, draws).total,
        );
    }
    stages
}
