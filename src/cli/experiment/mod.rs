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
//! To add one: a file in this folder with an `Args` struct (flattening [`CommonArgs`]), a
//! `work(&Args) -> Result<Work>` that estimates the run from its arguments alone (before any data
//! is loaded; see [`Work`]), and a `run(&Args) -> Result<Written>` that first checks that estimate
//! ([`Work::check`]: the budget and the progress reporter) and ends in [`write_outputs`]; then one
//! variant in [`Experiment`] with its arm in [`run`] and in [`work`] (the estimate alone), a row in
//! the table above, and its name in the tests' `NAMES` (defaults well within the budget).

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

/// The shipped digits' training rows ([`crate::engine::data::Mnist10k`]), for estimates made before
/// the file is read.
pub const TRAIN_DIGITS: usize = crate::engine::data::Mnist10k::TRAIN_PER_CLASS * crate::engine::data::CLASSES;

/// The shipped digits' test rows, the sum of [`crate::engine::data::Mnist10k::TEST_COUNTS`]: the
/// bound of `--test` (`experiment prior`) and `--digit-test` (`experiment minimal-representation`),
/// checked before the file is read.
pub const TEST_DIGITS: usize = {
    let (counts, mut sum, mut c) = (crate::engine::data::Mnist10k::TEST_COUNTS, 0, 0);
    while c < counts.len() {
        sum += counts[c];
        c += 1;
    }
    sum
};

/// An experiment's estimated arithmetic, checked against [`crate::base::budget::MAX_WORK`] before
/// any data is loaded or model trained, and the progress reporter it is counted into.
///
/// The unit is one multiply-add of the dense products, with every activation counted once more
/// for the element-wise work. Training one example costs three passes (forward, ∂input, ∂weight):
/// `3 (P + A)` for a VAE with P parameters and A activations per example; one importance-sampling
/// or ELBO draw costs one pass, `P + A`. Every sum is in `u128` and saturates, so no user-given
/// size can overflow it.
#[derive(Clone, Debug, PartialEq)]
pub struct Work {
    what: &'static str,
    /// The arguments that size the work, in the user's terms (`--betas × --epochs`).
    sized_by: &'static str,
    /// Multiply-adds.
    pub total: u128,
    /// Bytes held at once beyond the models and the digits (per-epoch metrics, per-repeat
    /// estimates, grids).
    pub memory: u128,
    /// Random draws outside the networks (index sampling), checked against
    /// [`crate::base::budget::MAX_DRAWS`].
    pub draws: u128,
}

impl Work {
    /// No work yet for experiment `what` (`experiment collapses`), sized by the arguments
    /// `sized_by`.
    pub fn new(what: &'static str, sized_by: &'static str) -> Work {
        Work { what, sized_by, total: 0, memory: 0, draws: 0 }
    }

    /// Adds `madds` multiply-adds.
    pub fn plus(mut self, madds: u128) -> Work {
        self.total = self.total.saturating_add(madds);
        self
    }

    /// Adds `draws` random draws (each also counted as one multiply-add).
    pub fn drawing(mut self, draws: u128) -> Work {
        self.draws = self.draws.saturating_add(draws);
        self.plus(draws)
    }

    /// Adds `count` values of `bytes_each` held at once.
    pub fn holding(mut self, count: u128, bytes_each: usize) -> Work {
        self.memory = self.memory.saturating_add(count.saturating_mul(bytes_each as u128));
        self
    }

    /// What one training example costs per pass beyond its products, in multiply-adds: batching,
    /// the draw of ε, the loss, the optimiser's share. Fitted to two runs on the Xeon the README
    /// names: the default `experiment rate-distortion` (a 2-32-2 model, 10⁶ examples, 2.5 s) spends
    /// about 2.4 µs an example, the time of about 3·10⁴ multiply-adds at the 1.2·10¹⁰ a second the
    /// default `experiment collapses` reaches (1.3·10¹¹ in 12.7 s).
    pub const EXAMPLE_FLOOR: u128 = 10_000;

    /// One pass of one example through `vae`: P + A.
    pub fn vae_pass(vae: &crate::engine::vae::VaeConfig) -> u128 {
        let activations = [vae.data_dim as u128, 2 * vae.latent_dim as u128]
            .into_iter()
            .chain(vae.hidden_dims.iter().map(|&h| 2 * h as u128))
            .fold(0u128, u128::saturating_add);
        vae.parameter_count().saturating_add(activations)
    }

    /// One epoch of `examples` examples through `vae`: 3 (P + A + [`Work::EXAMPLE_FLOOR`]) per
    /// example.
    pub fn epoch(vae: &crate::engine::vae::VaeConfig, examples: usize) -> u128 {
        let pass = Work::vae_pass(vae).saturating_add(Work::EXAMPLE_FLOOR);
        pass.saturating_mul(3).saturating_mul(examples as u128)
    }

    /// Adds `models × epochs` epochs of `examples` examples through `vae`.
    pub fn training(
        self,
        vae: &crate::engine::vae::VaeConfig,
        models: usize,
        epochs: usize,
        examples: usize,
    ) -> Work {
        let epochs = (models as u128).saturating_mul(epochs as u128);
        self.plus(Work::epoch(vae, examples).saturating_mul(epochs))
            .holding(epochs, std::mem::size_of::<crate::engine::train::EpochMetrics>())
    }

    /// Adds `points × draws` passes through `vae` (importance sampling, ELBO draws).
    pub fn sampling(self, vae: &crate::engine::vae::VaeConfig, points: usize, draws: usize) -> Work {
        let passes = (points as u128).saturating_mul(draws as u128);
        self.plus(Work::vae_pass(vae).saturating_mul(passes))
    }

    /// Refuses the experiment when its work exceeds [`crate::base::budget::MAX_WORK`], its draws
    /// [`crate::base::budget::MAX_DRAWS`], or what it holds the memory available; otherwise its progress reporter
    /// ([`crate::cli::Progress::work`]).
    ///
    /// # Errors
    /// `TooLarge` naming the experiment, the arguments that size it and the estimate.
    pub fn check(&self) -> Result<crate::cli::Progress> {
        self.ensure()?;
        Ok(crate::cli::Progress::work(self.what, self.total))
    }

    /// [`Work::check`] without a progress reporter (for commands that show their own).
    ///
    /// # Errors
    /// As [`Work::check`].
    pub fn ensure(&self) -> Result<()> {
        let what = format!("{} ({})", self.what, self.sized_by);
        crate::base::budget::ensure_work(&what, self.total)?;
        crate::base::budget::ensure_draws(&what, self.draws)?;
        crate::base::budget::ensure_memory(&what, self.memory)
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

/// The estimated work of the chosen experiment, without running it.
///
/// # Errors
/// As the experiment's `work`.
pub fn work(args: &ExperimentArgs) -> Result<Work> {
    match &args.experiment {
        Experiment::Gradients(a) => gradients::work(a),
        Experiment::Amortised(a) => amortised::work(a),
        Experiment::Prior(a) => prior::work(a),
        Experiment::Minibatch(a) => minibatch::work(a),
        Experiment::RateDistortion(a) => rate_distortion::work(a),
        Experiment::Collapses(a) => collapses::work(a),
        Experiment::Cvae(a) => cvae::work(a),
        Experiment::MinimalRepresentation(a) => minimal_representation::work(a),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::base::budget::MAX_WORK;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> ExperimentArgs {
        let argv = [&["vaelab", "experiment"], args, &["--out", "unused"]].concat();
        match Cli::try_parse_from(argv).expect("valid arguments").command {
            Command::Experiment(a) => a,
            _ => unreachable!("an experiment was parsed"),
        }
    }

    const NAMES: [&str; 8] = [
        "gradients",
        "amortised",
        "prior",
        "minibatch",
        "rate-distortion",
        "collapses",
        "cvae",
        "minimal-representation",
    ];

    #[test]
    fn the_digit_counts_are_the_shipped_split() {
        // 8,000 / 2,000 of the 10,000 shipped digits (`shared/anchors/README.md`).
        assert_eq!((TRAIN_DIGITS, TEST_DIGITS), (8000, 2000));
        let all: usize = crate::engine::data::Mnist10k::CLASS_COUNTS.iter().sum();
        assert_eq!(TRAIN_DIGITS + TEST_DIGITS, all);
    }

    #[test]
    fn every_default_experiment_is_well_within_the_work_budget() {
        for name in NAMES {
            let w = work(&parse(&[name])).expect("defaults are valid");
            // The lessons' runs take seconds to a minute: at least 20× below the budget, and
            // above the progress threshold only where the run takes long enough to report.
            assert!(w.total > 0 && w.total * 20 < MAX_WORK, "{name}: {:.2e}", w.total as f64);
            assert!(w.check().is_ok(), "{name}");
        }
    }

    #[test]
    fn absurd_sizes_are_refused_before_any_work_in_one_line() {
        let cases: &[&[&str]] = &[
            &["amortised", "--steps", "1000000000000", "--digit-points", "0"],
            &["amortised", "--train", "1000000000"],
            &["amortised", "--hidden-sizes", "100000000"],
            &["amortised", "--eval", "18446744073709551615"],
            &["amortised", "--digit-epochs", "100000"],
            &["prior", "--epochs", "1000000"],
            &["prior", "--k", "1000000000"],
            &["minibatch", "--epochs", "18446744073709551615"],
            &["minibatch", "--noise-repeats", "1000000000"],
            &["minibatch", "--noise-epochs", "100000"],
            &["rate-distortion", "--epochs", "1000000000"],
            &["collapses", "--epochs", "1000000"],
            &["cvae", "--epochs", "1000000"],
            &["minimal-representation", "--epochs", "100000000"],
            &["minimal-representation", "--digit-latent", "100000000"],
        ];
        for case in cases {
            let e = work(&parse(case)).and_then(|w| w.check().map(|_| ())).expect_err("refused");
            let message = e.to_string();
            assert!(matches!(e, Error::TooLarge { .. }), "{case:?}: {message}");
            assert!(message.starts_with(&format!("experiment {}", case[0])), "{case:?}: {message}");
            assert!(!message.contains('\n'), "{message}");
        }
    }

    #[test]
    fn sizes_outside_the_data_are_named_not_clamped() {
        for (case, flag) in [
            (&["prior", "--test", "5000"][..], "--test"),
            (&["minimal-representation", "--digit-test", "100000000"][..], "--digit-test"),
            (&["cvae", "--columns", "100000000"][..], "--columns"),
        ] {
            let e = work(&parse(case)).expect_err("refused").to_string();
            assert!(e.starts_with(&format!("invalid {flag} = ")), "{e}");
        }
    }

    #[test]
    fn the_estimate_grows_linearly_in_epochs_and_examples() {
        // `experiment collapses --betas 0.1,1` trains 2 + 1 + 3 models (the sweep, independent
        // pixels, the three remedies) of the 784-128-16 Bernoulli VAE for --epochs epochs over
        // --n-train digits; what it evaluates depends on neither. One example costs three passes
        // (forward, ∂input, ∂weight) of P + A + Work::EXAMPLE_FLOOR (the unit of `Work`), with
        // P and A counted by hand from the architecture:
        //   P = (784·128 + 128) + (128·32 + 32) + (16·128 + 128) + (128·784 + 784) = 207,920
        //   A = 784 + 2·16 + 2·128 = 1,072 (the output, μ and log σ², each hidden layer twice)
        let models: u128 = 2 + 1 + 3;
        let per_example: u128 = 3 * (207_920 + 1_072 + Work::EXAMPLE_FLOOR);
        let at = |epochs: usize, n_train: usize| {
            let (epochs, n_train) = (epochs.to_string(), n_train.to_string());
            let args = ["collapses", "--betas", "0.1,1", "--epochs", &epochs, "--n-train", &n_train];
            work(&parse(&args)).expect("valid sizes").total
        };
        // One epoch more adds models × n_train examples, at any epoch count.
        for (epochs, n_train) in [(1, 100), (9, 100), (1, 2000), (30, 2000)] {
            let step = at(epochs + 1, n_train) - at(epochs, n_train);
            assert_eq!(step, models * n_train as u128 * per_example, "epochs {epochs}, n_train {n_train}");
        }
        // One example more adds models × epochs examples, at any example count.
        for (epochs, n_train) in [(1, 100), (10, 100), (10, 1999), (3, 4000)] {
            let step = at(epochs, n_train + 1) - at(epochs, n_train);
            assert_eq!(step, models * epochs as u128 * per_example, "epochs {epochs}, n_train {n_train}");
        }
    }
}
