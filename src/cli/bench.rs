//! `vaelab bench`: throughput of the training step, of the importance-sampled evaluation and of
//! the toy-model estimators, printed as one JSON line to set beside the anchors
//! (`../shared/anchors/`, and `benches/compare.py`, which runs both interleaved).
//!
//! | mode | what is timed | unit |
//! |---|---|---|
//! | (default) | [`Trainer::train_epoch`] on synthetic binary data: gather, ε, forward, fused loss, backward, Adam | samples/s |
//! | `--eval` | [`importance_sampled_log_likelihood`] of `--points` points with `--k` samples each | decoder passes (z samples)/s |
//! | `--toy` | [`crate::lessons::bounds::draw`] + [`crate::lessons::bounds::importance_log_evidence`] on the linear-Gaussian toy model | log-weights/s |
//!
//! Every mode runs `--warmup` untimed steps (or one untimed small pass), then `--repeats` timed
//! runs, and reports the median and every run. `--threads` sets how many threads the matrix
//! products may use (see [`crate::base::parallel::set_threads`]); the default is 1.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::base::error::{Error, Result};
use crate::engine::data::synthetic_binary;
use crate::engine::eval::{
    importance_sampled_log_likelihood, importance_sampled_log_likelihood_with_progress,
};
use crate::engine::train::{TrainConfig, TrainSet, Trainer};
use crate::engine::vae::{Vae, VaeConfig};

/// `vaelab bench` arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// B, rows per training step.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// H, hidden widths (comma-separated; the decoder mirrors them).
    #[arg(long, value_delimiter = ',', default_value = "400")]
    pub hidden: Vec<usize>,
    /// Z.
    #[arg(long, default_value_t = 20)]
    pub latent: usize,
    /// D.
    #[arg(long, default_value_t = 784)]
    pub input: usize,
    /// Timed training steps per repeat.
    #[arg(long, default_value_t = 200)]
    pub steps: usize,
    /// Untimed warm-up steps.
    #[arg(long, default_value_t = 20)]
    pub warmup: usize,
    /// Timed repeats; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Threads for the matrix products (1 = none spawned; at most 4 × the available cores, ≤ 256).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Time the importance-sampled log-likelihood instead of training.
    #[arg(long)]
    pub eval: bool,
    /// Time the toy-model estimators (linear-Gaussian, `--toy-latent`, `--toy-data`) instead.
    #[arg(long, conflicts_with = "eval")]
    pub toy: bool,
    /// K, importance samples per point (`--eval`, `--toy`).
    #[arg(long, default_value_t = 5000)]
    pub k: usize,
    /// Data points evaluated (`--eval`).
    #[arg(long, default_value_t = 1000)]
    pub points: usize,
    /// Decoder rows per chunk of the evaluation (`--eval`).
    #[arg(long, default_value_t = 1000)]
    pub chunk_rows: usize,
    /// Z of the toy model (`--toy`).
    #[arg(long, default_value_t = 2)]
    pub toy_latent: usize,
    /// D of the toy model (`--toy`).
    #[arg(long, default_value_t = 10)]
    pub toy_data: usize,
    /// Seed of the synthetic data, the initialisation and the draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON line (otherwise a sentence).
    #[arg(long)]
    pub json: bool,
}

/// What `vaelab bench` measured.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// `train`, `eval` or `toy`.
    pub mode: &'static str,
    /// Median throughput: training samples, decoder passes (eval) or log-weights (toy) per second.
    pub samples_per_sec: f64,
    /// Every timed repeat's throughput.
    pub samples_per_sec_runs: Vec<f64>,
    /// Milliseconds per training step (train), per data point (eval) or per K log-weights (toy).
    pub ms_per_step: f64,
    /// Matrix-product GFLOP/s at the median (train: the anchors' count, 2·(3·fwd − B·D·H₁) per
    /// step; eval: the decoder's forward products; toy: 0, not counted).
    pub gflops: f64,
    /// Matrix-product FLOPs per sample (per training example, decoder pass or log-weight).
    pub flops_per_sample: f64,
    /// Threads the matrix products may use.
    pub threads: usize,
    /// B (train), chunk rows (eval), 0 (toy).
    pub batch: usize,
    /// H.
    pub hidden: Vec<usize>,
    /// Z.
    pub latent: usize,
    /// D.
    pub input: usize,
    /// Timed steps per repeat (train), points (eval), repeats of K (toy).
    pub steps: usize,
    /// K (eval, toy).
    pub k: usize,
    /// Peak resident memory of the process so far, MiB (`VmHWM` of /proc/self/status; 0 where
    /// unavailable).
    pub peak_rss_mib: f64,
    /// A number computed by the timed work (final loss, mean log p̂(x), mean log-evidence), so
    /// runs can be checked for sanity.
    pub value: f64,
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) }
}

/// Peak resident set size of this process in MiB (Linux `VmHWM`), or 0.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()).map(|kb| kb / 1024.0)
            })
        })
        .unwrap_or(0.0)
}

/// Matrix-product FLOPs of one training step of `vae` on `b` rows, counted as the anchors count
/// them: every forward product B·I·O multiply-adds, the same again for the weight gradients, and
/// again for the input gradients except the first layer's (nobody needs ∂L/∂x).
pub fn train_step_flops(vae: &Vae<f32>, b: usize) -> f64 {
    let p = &vae.params;
    let macs = |l: &crate::engine::nn::Linear<f32>| (b * l.fan_in() * l.fan_out()) as f64;
    let fwd: f64 =
        p.trunk.layers.iter().chain([&p.mean_head, &p.log_var_head]).chain(&p.decoder.layers).map(macs).sum();
    let first = macs(&p.trunk.layers[0]);
    2.0 * (3.0 * fwd - first)
}

/// Runs the benchmark `args` describes.
///
/// # Errors
/// Zero sizes or counts, named.
pub fn run(args: &BenchArgs) -> Result<BenchReport> {
    crate::base::parallel::set_threads(args.threads)?;
    for (name, v) in [("batch", args.batch), ("steps", args.steps), ("repeats", args.repeats), ("k", args.k)]
    {
        if v == 0 {
            return Err(Error::invalid(name, 0, "must be >= 1"));
        }
    }
    // Known before any work: absurd draw counts are refused now, not after hours of sampling.
    if args.eval {
        // The warm-up's few points, then `repeats` passes over all of them.
        let points = args.points.min(4) as u128 + args.repeats as u128 * args.points as u128;
        crate::base::budget::ensure_draws(
            &format!(
                "bench --eval: (4 + --repeats {} × --points {}) × --k {}",
                args.repeats, args.points, args.k
            ),
            points.saturating_mul(args.k as u128),
        )?;
    }
    if args.toy {
        crate::base::budget::ensure_draws(
            &format!("bench --toy: (1 + --repeats {}) × --k {}", args.repeats, args.k),
            (1 + args.repeats as u128).saturating_mul(args.k.max(2) as u128),
        )?;
        return run_toy(args);
    }
    let config = VaeConfig::bernoulli(args.input, args.hidden.clone(), args.latent);
    config.validate()?;
    // The synthetic data: a batch (training) or the points (evaluation), f32.
    let rows = (args.batch as u128).max(args.points as u128);
    crate::base::budget::ensure_memory(
        &format!("bench data of {rows} rows × {} inputs", args.input),
        rows.saturating_mul(args.input as u128).saturating_mul(4),
    )?;
    if args.eval { run_eval(args, config) } else { run_train(args, config) }
}

fn run_train(args: &BenchArgs, config: VaeConfig) -> Result<BenchReport> {
    let b = args.batch;
    // An epoch of at most 16384 rows (and at most `steps` batches), so memory stays small; the
    // timed run is a whole number of epochs.
    let per_epoch = args.steps.min((16_384 / b).max(1));
    let epochs = args.steps.div_ceil(per_epoch);
    let steps = epochs * per_epoch;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let data = synthetic_binary(per_epoch * b, args.input, &mut rng);
    let set = TrainSet { x: data.view(), labels: None, binarize: false };
    let mut trainer =
        Trainer::new(config, TrainConfig { batch_size: b, ..TrainConfig::anchor(0, args.seed) })?;
    let flops = train_step_flops(&trainer.vae, b) / b as f64;
    // Warm-up: whole epochs covering at least `warmup` steps.
    for _ in 0..args.warmup.div_ceil(per_epoch) {
        trainer.train_epoch(&set)?;
    }
    let mut runs = Vec::with_capacity(args.repeats);
    let mut loss = f64::NAN;
    for _ in 0..args.repeats {
        let start = std::time::Instant::now();
        for _ in 0..epochs {
            loss = trainer.train_epoch(&set)?.train_loss;
        }
        runs.push((steps * b) as f64 / start.elapsed().as_secs_f64());
    }
    let sps = median(&runs);
    Ok(BenchReport {
        mode: "train",
        samples_per_sec: sps,
        samples_per_sec_runs: runs,
        ms_per_step: 1e3 * b as f64 / sps,
        gflops: flops * sps / 1e9,
        flops_per_sample: flops,
        threads: args.threads,
        batch: b,
        hidden: args.hidden.clone(),
        latent: args.latent,
        input: args.input,
        steps,
        k: 0,
        peak_rss_mib: peak_rss_mib(),
        value: loss,
    })
}

fn run_eval(args: &BenchArgs, config: VaeConfig) -> Result<BenchReport> {
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let x = synthetic_binary(args.points.max(1), args.input, &mut rng);
    let vae: Vae<f32> = Vae::new(config, &mut rng)?;
    let p = &vae.params;
    let flops: f64 = 2.0 * p.decoder.layers.iter().map(|l| (l.fan_in() * l.fan_out()) as f64).sum::<f64>();
    // Warm-up: a few points.
    let warm = x.slice(ndarray::s![..args.points.min(4), ..]);
    importance_sampled_log_likelihood(&vae, warm, None, args.k, args.chunk_rows, &mut rng)?;
    let mut runs = Vec::with_capacity(args.repeats);
    let mut value = f64::NAN;
    let per_run = args.points as u128 * args.k as u128;
    let mut progress = crate::cli::Progress::new("bench --eval", args.repeats as u128 * per_run);
    for run in 0..args.repeats {
        let start = std::time::Instant::now();
        value = importance_sampled_log_likelihood_with_progress(
            &vae,
            x.view(),
            None,
            args.k,
            args.chunk_rows,
            &mut rng,
            &mut |done, _| progress.update(run as u128 * per_run + done),
        )?
        .estimate
        .mean;
        runs.push((args.points * args.k) as f64 / start.elapsed().as_secs_f64());
    }
    progress.finish();
    let sps = median(&runs);
    Ok(BenchReport {
        mode: "eval",
        samples_per_sec: sps,
        samples_per_sec_runs: runs,
        ms_per_step: 1e3 * args.k as f64 / sps,
        gflops: flops * sps / 1e9,
        flops_per_sample: flops,
        threads: args.threads,
        batch: args.chunk_rows,
        hidden: args.hidden.clone(),
        latent: args.latent,
        input: args.input,
        steps: args.points,
        k: args.k,
        peak_rss_mib: peak_rss_mib(),
        value,
    })
}

fn run_toy(args: &BenchArgs) -> Result<BenchReport> {
    use crate::lessons::bounds::{draw, importance_log_evidence, prior_q};
    use crate::lessons::toy::{LatentModel, LinearGaussian};
    let (z, d) = (args.toy_latent, args.toy_data);
    if z == 0 || d == 0 {
        return Err(Error::invalid("toy-latent/toy-data", format!("{z}/{d}"), "must be >= 1"));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let w = Array2::from_shape_simple_fn((d, z), || rng.random_range(-1.0..1.0));
    let model = LinearGaussian::new(w, ndarray::Array1::zeros(d), 0.5)?;
    let (_, xs) = model.sample(1, &mut rng);
    let x = xs.row(0);
    let q = prior_q(&crate::lessons::toy::Model::LinearGaussian(model.clone()));
    draw(&model, x, &q, args.k.clamp(2, 1000), &mut rng)?;
    let mut runs = Vec::with_capacity(args.repeats);
    let mut value = f64::NAN;
    for _ in 0..args.repeats {
        let start = std::time::Instant::now();
        let draws = draw(&model, x, &q, args.k.max(2), &mut rng)?;
        value = importance_log_evidence(&draws)?.mean;
        runs.push(args.k.max(2) as f64 / start.elapsed().as_secs_f64());
    }
    let sps = median(&runs);
    Ok(BenchReport {
        mode: "toy",
        samples_per_sec: sps,
        samples_per_sec_runs: runs,
        ms_per_step: 1e3 * args.k as f64 / sps,
        gflops: 0.0,
        flops_per_sample: 0.0,
        threads: args.threads,
        batch: 0,
        hidden: vec![],
        latent: z,
        input: d,
        steps: 1,
        k: args.k,
        peak_rss_mib: peak_rss_mib(),
        value,
    })
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.mode {
            "train" => "training samples/s",
            "eval" => "decoder passes/s",
            _ => "log-weights/s",
        };
        write!(
            f,
            "{}: {:.0} {unit} (median of {:?}), {:.3} ms per step, {:.1} GFLOP/s, {} thread(s), peak RSS {:.0} MiB",
            self.mode,
            self.samples_per_sec,
            self.samples_per_sec_runs,
            self.ms_per_step,
            self.gflops,
            self.threads,
            self.peak_rss_mib
        )
    }
}
