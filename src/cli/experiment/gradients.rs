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
    work(args)?.ensure()?;
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

/// Multiply-adds per random number of the dimension sweep
/// ([`crate::lessons::gradients::variance_by_dimension`]), beyond its draw: two score-function
/// estimates (b = 0 and b = E F) at 7 each (z = μ + σε, f(z) summed over the row, ε/σ and its
/// product with F − b, (ε² − 1)/σ and its product) and one pathwise estimate at 3 (z, f'(z), the
/// product with ε).
pub const DIMENSION_NUMBER: u128 = 2 * 7 + 3;
/// Arrays of draws × Z numbers the dimension sweep holds at once, at most: ε, ∂/∂μ and ∂/∂σ of the
/// two score-function estimates, and the pathwise estimate's z = μ + σε, f'(z) and ∂/∂σ while it
/// is made ([`crate::lessons::gradients::variance_by_dimension`]).
pub const DIMENSION_ARRAYS: u128 = 8;
/// Multiply-adds per draw (row) of the dimension sweep: the three estimators' mean ± SE of
/// ∂/∂μ₁ and their single-draw variances ± SE over coordinate 1, about 7 per estimator.
pub const DIMENSION_ROW: u128 = 3 * 7;
/// Multiply-adds per random number of the sample-count sweep
/// ([`crate::lessons::gradients::variance_by_sample_count`]), beyond its draw: one score-function
/// estimate (7) and one pathwise (3).
pub const COUNT_NUMBER: u128 = 7 + 3;
/// Multiply-adds per draw (row) of the sample-count sweep: the two N-draw averages of ∂/∂μ₁.
pub const COUNT_ROW: u128 = 2;
/// Multiply-adds per repeat of the sample-count sweep: the two variances over the repeats and
/// their standard errors, about 5 per estimator.
pub const COUNT_REPEAT: u128 = 2 * 5;

/// The estimated work of [`run`], after the configuration's own check (which bounds the random
/// numbers it draws at [`crate::lessons::gradients::MAX_NUMBERS`], 10⁸):
///
/// ```text
/// Σ_Z  draws × (Z (1 + DIMENSION_NUMBER) + DIMENSION_ROW)
///   + Σ_N repeats × (N (count_dim (1 + COUNT_NUMBER) + COUNT_ROW) + COUNT_REPEAT)
/// ```
/// with every random number counted once as a draw (the 1). Each number costs about 18
/// multiply-adds in the dimension sweep and 11 in the sample-count sweep, so the 10⁸-number guard
/// keeps the estimate below about 4·10⁹, far under [`crate::base::budget::MAX_WORK`] and
/// [`crate::cli::PROGRESS_WORK`]: the guard is what refuses a large run, and the run (seconds)
/// reports no progress. The defaults come to 5.7·10⁷.
///
/// # Errors
/// As [`GradientConfig::validate`].
pub fn work(args: &Args) -> Result<Work> {
    let config = config(args);
    config.validate()?;
    let (draws, repeats) = (config.draws as u128, config.repeats as u128);
    let mut work = Work::new("experiment gradients", "--dims × --draws, --sample-counts × --repeats");
    // Memory: the largest dimension's draws × Z numbers, held at once in DIMENSION_ARRAYS arrays of
    // f64 (the guard allows 10⁸ numbers: 6.4 GB, more than a small machine has).
    let widest = config.dims.iter().copied().max().unwrap_or(0) as u128;
    work = work.holding(draws.saturating_mul(widest).saturating_mul(DIMENSION_ARRAYS), size_of::<f64>());
    for &z in &config.dims {
        let numbers = draws.saturating_mul(z as u128);
        work = work
            .drawing(numbers)
            .plus(numbers.saturating_mul(DIMENSION_NUMBER))
            .plus(draws.saturating_mul(DIMENSION_ROW));
    }
    for &n in &config.sample_counts {
        let rows = repeats.saturating_mul(n as u128);
        let numbers = rows.saturating_mul(config.count_dim as u128);
        work = work
            .drawing(numbers)
            .plus(numbers.saturating_mul(COUNT_NUMBER))
            .plus(rows.saturating_mul(COUNT_ROW))
            .plus(repeats.saturating_mul(COUNT_REPEAT));
    }
    Ok(work)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::budget::MAX_WORK;

    fn args(dims: &[usize], draws: usize, sample_counts: &[usize], repeats: usize) -> Args {
        Args {
            common: CommonArgs { out: std::path::PathBuf::from("unused"), seed: 0 },
            dims: dims.to_vec(),
            draws,
            sample_counts: sample_counts.to_vec(),
            repeats,
        }
    }

    #[test]
    fn the_estimate_counts_every_number_and_draw() {
        // The defaults, by hand: Σ Z = 63 over 6 dimensions, 20,000 draws; Σ N = 341 over 5
        // counts, 2,000 repeats at Z = 4:
        //   20,000 × (63 × 18 + 6 × 21) + 2,000 × (341 × (4 × 11 + 2) + 5 × 10) = 25,200,000 + 31,472,000
        let defaults = args(&[1, 2, 4, 8, 16, 32], 20_000, &[1, 4, 16, 64, 256], 2000);
        let w = work(&defaults).expect("the defaults are valid");
        assert_eq!(w.total, 56_672_000);
        assert_eq!(w.draws, 20_000 * 63 + 2000 * 341 * 4, "every number drawn counts once");
        // Doubling the draws doubles the dimension sweep's share and nothing else.
        let twice = work(&args(&[1, 2, 4, 8, 16, 32], 40_000, &[1, 4, 16, 64, 256], 2000)).expect("valid");
        assert_eq!(twice.total - w.total, 25_200_000);
    }

    #[test]
    fn the_largest_run_the_guard_admits_is_far_within_the_budget() {
        // 10⁸ numbers in one dimension sweep and the smallest sample-count sweep (2 × 1 × 4).
        let largest = args(&[10_000], 9_999, &[1], 2);
        let w = work(&largest).expect("within the 10⁸-number guard");
        assert!(w.total * 1000 < MAX_WORK, "{:.2e}", w.total as f64);
        crate::base::budget::ensure_work("largest", w.total).expect("within the work budget");
        crate::base::budget::ensure_draws("largest", w.draws).expect("within the draw budget");
        // It holds 8 arrays of 10⁸ numbers at once: 6.4 GB, counted, so a machine with less
        // memory available refuses it in one line instead of aborting in the allocator.
        assert_eq!(w.memory, 8 * 8 * 9_999 * 10_000);
        assert!(
            crate::base::budget::ensure_memory_within("largest", w.memory, 4 << 30).is_err(),
            "4 GiB refuses it"
        );
        let e = work(&args(&[10_000], 10_001, &[1], 2)).expect_err("over the guard");
        assert!(matches!(e, crate::base::error::Error::TooLarge { .. }), "{e}");
    }
}
