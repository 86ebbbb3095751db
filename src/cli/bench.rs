//! `vaelab bench`: throughput of the training step, of the importance-sampled evaluation and of
//! the toy-model estimators, printed as one JSON line to set beside the anchors
//! (`../shared/anchors/`, and `benches/compare.py`, which runs both interleaved).
//!
//! | mode | what is timed | unit |
//! |---|---|---|
//! | (default) | [`Trainer::train_epoch`] on synthetic binary data: gather, ε, forward, fused loss, backward, Adam | samples/s |
//! | `--eval` | [`importance_sampled_log_likelihood`] of `--points` points with `--k` samples each | decoder passes (z samples)/s |
//! | `--toy` | [`crate::lessons::bounds::draw`] + [`crate::lessons::bounds::importance_log_evidence`] on the linear-Gaussian toy model | log-weights/s |
//! | `--peak` | [`fma_peak`]: independent FMA chains in registers, the one-thread FP32 peak | GFLOP/s |
//!
//! Every report names the machine ([`CpuInfo`]: the CPU model, AVX2, AVX-512F, FMA) and
//! measures its one-thread FMA peak, so that each rate is also given as a fraction of what this
//! core can do at all (`peak_fraction`). Training's first layer takes the trainer's default
//! path (`InputPath::Auto`: the on-pixels of a binary batch at most 14% on; `--dense` forces the
//! dense product, `--sparse` the on-pixels whatever the density); `--digits` trains on the
//! shipped digits binarised per batch instead of the synthetic data. GFLOP/s still count the
//! dense product's FLOPs (dense-equivalent), so on the binary path they can exceed the peak.
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
    /// Only measure the one-thread FP32 FMA peak (and name the CPU).
    #[arg(long, conflicts_with_all = ["eval", "toy"])]
    pub peak: bool,
    /// Training: the dense first-layer product even on binary batches.
    #[arg(long)]
    pub dense: bool,
    /// Training: the on-entries first layer on every binary batch, whatever its density
    /// (`InputPath::Binary`; default `InputPath::Auto`, which reads batches above its threshold densely).
    #[arg(long, conflicts_with = "dense")]
    pub sparse: bool,
    /// Training: on the shipped digits (`data/mnist10k.bin.gz`, 8,000 training digits, binarised
    /// afresh each batch as training does) instead of the synthetic binary data.
    #[arg(long, conflicts_with_all = ["eval", "toy"])]
    pub digits: bool,
}

/// The machine a benchmark ran on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CpuInfo {
    /// `model name` of /proc/cpuinfo ("unknown" elsewhere).
    pub model: String,
    /// AVX2 (256-bit integer and float vectors).
    pub avx2: bool,
    /// AVX-512 Foundation (512-bit vectors).
    pub avx512f: bool,
    /// Fused multiply-add (FMA3).
    pub fma: bool,
    /// Logical CPUs the process sees.
    pub logical_cpus: usize,
}

/// The CPU model and flags from the text of Linux's /proc/cpuinfo (the first processor's
/// `model name` and `flags` lines); "unknown" and no flags for text without them.
pub fn parse_cpuinfo(text: &str, logical_cpus: usize) -> CpuInfo {
    let field = |key: &str| {
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let model = field("model name").filter(|m| !m.is_empty()).unwrap_or_else(|| "unknown".to_string());
    let flags = field("flags").unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|g| g == f);
    CpuInfo { model, avx2: has("avx2"), avx512f: has("avx512f"), fma: has("fma"), logical_cpus }
}

/// This machine's [`CpuInfo`]: /proc/cpuinfo on Linux; elsewhere the model is "unknown" and the
/// flags are detected at run time.
pub fn cpu_info() -> CpuInfo {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if let Ok(text) = std::fs::read_to_string("/proc/cpuinfo") {
        return parse_cpuinfo(&text, cpus);
    }
    #[cfg(target_arch = "x86_64")]
    {
        CpuInfo {
            model: "unknown".to_string(),
            avx2: std::arch::is_x86_feature_detected!("avx2"),
            avx512f: std::arch::is_x86_feature_detected!("avx512f"),
            fma: std::arch::is_x86_feature_detected!("fma"),
            logical_cpus: cpus,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        CpuInfo { model: "unknown".to_string(), avx2: false, avx512f: false, fma: false, logical_cpus: cpus }
    }
}

/// Independent accumulators of the FMA loop: 2 FMA pipes × 4 cycles of latency need ≥ 8 chains in
/// flight to keep both pipes busy every cycle; 12, plus the two constants, still fit in the 16
/// registers AVX2 code has (more would spill to memory).
pub const FMA_CHAINS: usize = 12;

/// FLOPs of the FMA loop: each fused multiply-add is 2 FLOPs, per lane, per chain, per iteration.
pub fn fma_loop_flops(iterations: u64, chains: usize, lanes: usize) -> f64 {
    2.0 * iterations as f64 * chains as f64 * lanes as f64
}

/// The measured one-thread FP32 FMA peak.
#[derive(Clone, Debug, Serialize)]
pub struct FmaPeak {
    /// The best of the widths below, GFLOP/s.
    pub gflops: f64,
    /// 256-bit FMA (AVX2 + FMA), GFLOP/s; `None` without them.
    pub avx2_gflops: Option<f64>,
    /// 512-bit FMA (AVX-512F), GFLOP/s; `None` without it.
    pub avx512_gflops: Option<f64>,
    /// Without AVX2/FMA: separate multiply and add in plain (SSE2) code, GFLOP/s.
    pub scalar_gflops: Option<f64>,
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_loop_256(iterations: u64) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_set1_ps(0.5); FMA_CHAINS];
    let (a, b) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-6));
    for _ in 0..iterations {
        for v in acc.iter_mut() {
            *v = _mm256_fmadd_ps(*v, a, b);
        }
    }
    let mut out = [0.0f32; 8];
    let sum = acc.iter().fold(_mm256_setzero_ps(), |s, &v| _mm256_add_ps(s, v));
    // SAFETY: `out` holds 8 f32.
    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), sum) };
    out.iter().sum()
}

/// 512-bit FMA chains in inline assembly (the AVX-512 intrinsics need Rust 1.89, above this
/// crate's MSRV): zmm0–11 += zmm12 · zmm13, all zero (no denormals, same speed as any value).
/// Only call on a CPU with AVX-512F.
#[cfg(target_arch = "x86_64")]
unsafe fn fma_loop_512(iterations: u64) -> f32 {
    // SAFETY: the caller checked AVX-512F; the block touches only the declared registers (vector
    // registers are caller-saved, so declaring xmm0–13 clobbered covers their zmm halves).
    unsafe {
        std::arch::asm!(
            "vxorps xmm12, xmm12, xmm12",
            "vxorps xmm13, xmm13, xmm13",
            "vxorps xmm0, xmm0, xmm0",
            "vxorps xmm1, xmm1, xmm1",
            "vxorps xmm2, xmm2, xmm2",
            "vxorps xmm3, xmm3, xmm3",
            "vxorps xmm4, xmm4, xmm4",
            "vxorps xmm5, xmm5, xmm5",
            "vxorps xmm6, xmm6, xmm6",
            "vxorps xmm7, xmm7, xmm7",
            "vxorps xmm8, xmm8, xmm8",
            "vxorps xmm9, xmm9, xmm9",
            "vxorps xmm10, xmm10, xmm10",
            "vxorps xmm11, xmm11, xmm11",
            "2:",
            "vfmadd231ps zmm0, zmm12, zmm13",
            "vfmadd231ps zmm1, zmm12, zmm13",
            "vfmadd231ps zmm2, zmm12, zmm13",
            "vfmadd231ps zmm3, zmm12, zmm13",
            "vfmadd231ps zmm4, zmm12, zmm13",
            "vfmadd231ps zmm5, zmm12, zmm13",
            "vfmadd231ps zmm6, zmm12, zmm13",
            "vfmadd231ps zmm7, zmm12, zmm13",
            "vfmadd231ps zmm8, zmm12, zmm13",
            "vfmadd231ps zmm9, zmm12, zmm13",
            "vfmadd231ps zmm10, zmm12, zmm13",
            "vfmadd231ps zmm11, zmm12, zmm13",
            "dec {n}",
            "jnz 2b",
            "vzeroupper",
            n = inout(reg) iterations.max(1) => _,
            out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _, out("xmm4") _, out("xmm5") _, out("xmm6") _, out("xmm7") _, out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _, out("xmm12") _, out("xmm13") _,
            options(nostack, nomem),
        );
    }
    0.0
}

fn mul_add_loop(iterations: u64) -> f32 {
    let mut acc = [[0.5f32; 4]; FMA_CHAINS];
    let (a, b) = (std::hint::black_box(0.999_999f32), std::hint::black_box(1e-6f32));
    for _ in 0..iterations {
        for v in acc.iter_mut() {
            for x in v.iter_mut() {
                *x = *x * a + b;
            }
        }
    }
    acc.iter().flatten().sum()
}

/// The best rate of `run(iterations)` over 5 timed runs of about `seconds / 5` each, GFLOP/s.
fn best_rate(seconds: f64, lanes: usize, run: impl Fn(u64) -> f32) -> f64 {
    let mut iterations = 1u64 << 12;
    loop {
        let t = std::time::Instant::now();
        std::hint::black_box(run(iterations));
        if t.elapsed().as_secs_f64() > seconds / 50.0 || iterations > 1 << 40 {
            break;
        }
        iterations *= 2;
    }
    // A calibration run took ≥ seconds/50: ten times as many iterations take ≥ seconds/5.
    let per = 10 * iterations;
    (0..5)
        .map(|_| {
            let t = std::time::Instant::now();
            std::hint::black_box(run(std::hint::black_box(per)));
            fma_loop_flops(per, FMA_CHAINS, lanes) / t.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}

/// Measures the one-thread FP32 peak: [`FMA_CHAINS`] independent chains of fused multiply-adds
/// on registers (no memory traffic), at each vector width the CPU has, for about `seconds`
/// each; the best of 5 runs per width ([`fma_loop_flops`] counts 2 FLOPs per lane per FMA).
pub fn fma_peak(seconds: f64) -> FmaPeak {
    let mut peak = FmaPeak { gflops: 0.0, avx2_gflops: None, avx512_gflops: None, scalar_gflops: None };
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU has AVX2 and FMA (checked above).
            peak.avx2_gflops = Some(best_rate(seconds, 8, |n| unsafe { fma_loop_256(n) }));
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked above).
            peak.avx512_gflops = Some(best_rate(seconds, 16, |n| unsafe { fma_loop_512(n) }));
        }
    }
    if peak.avx2_gflops.is_none() && peak.avx512_gflops.is_none() {
        peak.scalar_gflops = Some(best_rate(seconds, 4, mul_add_loop));
    }
    peak.gflops =
        [peak.avx2_gflops, peak.avx512_gflops, peak.scalar_gflops].into_iter().flatten().fold(0.0, f64::max);
    peak
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
    /// Training: whether the first layer ran on the on-pixels (binary batches, no `--dense`).
    pub binary_first_layer: bool,
    /// Training: the fraction of the batches' pixels that are on.
    pub input_density: f64,
    /// The machine.
    pub cpu: CpuInfo,
    /// Its one-thread FP32 FMA peak, GFLOP/s (measured after the timed runs, [`fma_peak`]).
    pub peak_gflops: f64,
    /// `gflops` / (`peak_gflops` × `threads`): the fraction of the peak of the threads used
    /// (train: dense-equivalent FLOPs, see the module docs).
    pub peak_fraction: f64,
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
    let mut report = run_mode(args)?;
    let peak = fma_peak(if report.mode == "peak" { 1.0 } else { 0.25 });
    report.cpu = cpu_info();
    report.peak_gflops = peak.gflops;
    if report.mode == "peak" {
        report.gflops = peak.gflops;
        report.samples_per_sec_runs =
            [peak.avx2_gflops, peak.avx512_gflops, peak.scalar_gflops].into_iter().flatten().collect();
    }
    report.peak_fraction = report.gflops / (peak.gflops * report.threads.max(1) as f64);
    Ok(report)
}

fn empty_report(mode: &'static str, args: &BenchArgs) -> BenchReport {
    BenchReport {
        mode,
        samples_per_sec: 0.0,
        samples_per_sec_runs: vec![],
        ms_per_step: 0.0,
        gflops: 0.0,
        flops_per_sample: 0.0,
        threads: args.threads,
        batch: 0,
        hidden: vec![],
        latent: 0,
        input: 0,
        steps: 0,
        k: 0,
        peak_rss_mib: peak_rss_mib(),
        value: f64::NAN,
        binary_first_layer: false,
        input_density: 0.0,
        cpu: CpuInfo { model: String::new(), avx2: false, avx512f: false, fma: false, logical_cpus: 0 },
        peak_gflops: 0.0,
        peak_fraction: 0.0,
    }
}

fn run_mode(args: &BenchArgs) -> Result<BenchReport> {
    if args.peak {
        return Ok(BenchReport { threads: 1, ..empty_report("peak", args) });
    }
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
    // One timing per repeat is kept.
    crate::base::budget::ensure_memory(
        &format!("bench --repeats {}", args.repeats),
        (args.repeats as u128).saturating_mul(std::mem::size_of::<f64>() as u128),
    )?;
    if args.toy {
        crate::base::budget::ensure_draws(
            &format!("bench --toy: (1 + --repeats {}) × --k {}", args.repeats, args.k),
            (1 + args.repeats as u128).saturating_mul(args.k.max(2) as u128),
        )?;
        // The model's D × Z weights and its exact marginal's Z × Z and D-sized factors, f64, a
        // few copies; each draw of z costs a D × Z product.
        let (z, d) = (args.toy_latent as u128, args.toy_data as u128);
        let floats =
            d.saturating_mul(z).saturating_add(z.saturating_mul(z)).saturating_add(d).saturating_mul(4);
        crate::base::budget::ensure_memory(
            &format!("bench --toy with --toy-data {d} × --toy-latent {z}"),
            floats.saturating_mul(8),
        )?;
        crate::cli::experiment::Work::new("bench --toy", "(1 + --repeats) × --k × --toy-data × --toy-latent")
            .plus(
                (1 + args.repeats as u128).saturating_mul(args.k as u128).saturating_mul(d.saturating_mul(z)),
            )
            .ensure()?;
        return run_toy(args);
    }
    let config = VaeConfig::bernoulli(args.input, args.hidden.clone(), args.latent);
    config.validate()?;
    if !args.eval {
        // Warm-up and timed steps of `batch` examples each.
        let steps =
            (args.steps as u128).saturating_mul(args.repeats as u128).saturating_add(args.warmup as u128);
        crate::cli::experiment::Work::new("bench", "(--warmup + --steps × --repeats) × --batch × the model")
            .plus(crate::cli::experiment::Work::epoch(&config, args.batch).saturating_mul(steps))
            .ensure()?;
    }
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
    // With --digits: the 8,000 training digits (grey levels, binarised per batch by training).
    let digits = match args.digits {
        true => Some(crate::engine::data::Mnist10k::load()?.train.images),
        false => None,
    };
    let rows_available = digits.as_ref().map_or(16_384, |d| d.nrows());
    let per_epoch = args.steps.min((rows_available / b).max(1));
    let epochs = args.steps.div_ceil(per_epoch);
    let steps = epochs * per_epoch;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    let data = match digits {
        Some(d) if d.ncols() == args.input => {
            d.slice(ndarray::s![..(per_epoch * b).min(d.nrows()), ..]).to_owned()
        }
        Some(d) => return Err(Error::shape("bench --digits: --input", d.ncols(), args.input)),
        None => synthetic_binary(per_epoch * b, args.input, &mut rng),
    };
    let set = TrainSet { x: data.view(), labels: None, binarize: args.digits };
    let mut trainer =
        Trainer::new(config, TrainConfig { batch_size: b, ..TrainConfig::anchor(0, args.seed) })?;
    trainer.set_input_path(match (args.dense, args.sparse) {
        (true, _) => crate::engine::nn::InputPath::Dense,
        (false, true) => crate::engine::nn::InputPath::Binary,
        (false, false) => crate::engine::nn::InputPath::Auto,
    });
    // The expected fraction of entries on: the mean grey level when training binarises.
    let density = match args.digits {
        true => data.iter().map(|&v| f64::from(v)).sum::<f64>() / data.len().max(1) as f64,
        false => data.iter().filter(|&&v| v != 0.0).count() as f64 / data.len().max(1) as f64,
    };
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
        value: loss,
        binary_first_layer: trainer.used_binary_input(),
        input_density: density,
        ..empty_report("train", args)
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
        value,
        ..empty_report("eval", args)
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
        value,
        ..empty_report("toy", args)
    })
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.mode == "peak" {
            return write!(
                f,
                "peak: {:.1} GFLOP/s FP32 per thread (FMA, best of the widths {:?}) on {} (avx2 {}, avx512f {}, fma {})",
                self.peak_gflops,
                self.samples_per_sec_runs,
                self.cpu.model,
                self.cpu.avx2,
                self.cpu.avx512f,
                self.cpu.fma
            );
        }
        let unit = match self.mode {
            "train" => "training samples/s",
            "eval" => "decoder passes/s",
            _ => "log-weights/s",
        };
        write!(
            f,
            "{}: {:.0} {unit} (median of {:?}), {:.3} ms per step, {:.1} GFLOP/s = {:.0}% of the {:.1} GFLOP/s FMA peak, {} thread(s), peak RSS {:.0} MiB, on {}",
            self.mode,
            self.samples_per_sec,
            self.samples_per_sec_runs,
            self.ms_per_step,
            self.gflops,
            100.0 * self.peak_fraction,
            self.peak_gflops,
            self.threads,
            self.peak_rss_mib,
            self.cpu.model
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpuinfo_text_gives_the_model_and_the_flags() {
        let text = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Processor\n\
                    flags\t\t: fpu sse2 fma avx avx2 avx512f avx512dq\n\nprocessor\t: 1\n\
                    model name\t: other\nflags\t\t: fpu\n";
        let cpu = parse_cpuinfo(text, 2);
        assert_eq!(
            cpu,
            CpuInfo {
                model: "Intel(R) Xeon(R) Processor".into(),
                avx2: true,
                avx512f: true,
                fma: true,
                logical_cpus: 2
            }
        );
        // `avx512dq` alone is not `avx512f`, and `avx` is not `avx2` (whole words only).
        let amd = parse_cpuinfo("model name : AMD EPYC 9R14\nflags : avx avx512dq fma\n", 1);
        assert_eq!(
            (amd.model.as_str(), amd.avx2, amd.avx512f, amd.fma),
            ("AMD EPYC 9R14", false, false, true)
        );
        let none = parse_cpuinfo("processor : 0\n", 1);
        assert_eq!((none.model.as_str(), none.avx2, none.fma), ("unknown", false, false));
    }

    #[test]
    fn flops_are_counted_as_the_anchors_count_them() {
        // One FMA = 2 FLOPs per lane: 10 iterations × 12 chains × 8 lanes × 2.
        assert_eq!(fma_loop_flops(10, 12, 8), 1920.0);
        // 784-400-20: forward MACs per sample 784·400 + 2·400·20 + 20·400 + 400·784 = 651,200;
        // 2·(3·651,200 − 784·400) = 3,280,000 FLOPs, the anchors' 3.28 MFLOP per sample.
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let vae: Vae<f32> = Vae::new(VaeConfig::bernoulli(784, vec![400], 20), &mut rng).unwrap();
        assert_eq!(train_step_flops(&vae, 1), 3_280_000.0);
        assert_eq!(train_step_flops(&vae, 128), 128.0 * 3_280_000.0);
    }

    #[test]
    fn the_measured_peak_is_positive_and_the_best_width() {
        let p = fma_peak(0.02);
        assert!(p.gflops > 0.0);
        let widths: Vec<f64> =
            [p.avx2_gflops, p.avx512_gflops, p.scalar_gflops].into_iter().flatten().collect();
        assert!(!widths.is_empty() && widths.iter().all(|&g| g <= p.gflops) && widths.contains(&p.gflops));
    }
}
