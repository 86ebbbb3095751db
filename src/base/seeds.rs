//! Named seed streams: every separate random stream of the trainer, the commands and the lessons'
//! experiments is derived here from one user seed, so a reader finds every offset in one place and
//! a test checks that no two streams of the same run share a seed.
//!
//! ```text
//! stream seed = user seed + offset   (wrapping: every u64 seed is valid)
//! ```
//! Offsets only need to differ *within* one run: the streams of different experiments never meet.
//! The values are the ones the course has always used, so every notebook prints the same numbers.
//!
//! One thing a reader should know: a lesson's training data ([`LESSON_DATA`], offset 0) and the
//! trainer's model initialisation ([`MODEL_INIT`], offset 0) use the same seed, so they read the
//! same ChaCha8 stream 0 — the first weights and the first data points come from the same bits.
//! It does no harm to what the lessons measure (the weights are scaled uniforms, the data are
//! transformed otherwise), and changing it would change every trained lesson's numbers; it is
//! kept and said here.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// One named random stream: its seed is the user's seed plus `offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stream {
    /// What the stream draws.
    pub name: &'static str,
    /// Added (wrapping) to the user's seed.
    pub offset: u64,
}

impl Stream {
    /// A stream named `name` at `offset`.
    pub const fn new(name: &'static str, offset: u64) -> Self {
        Stream { name, offset }
    }

    /// The stream's seed for a user seed: `seed + offset`, wrapping.
    ///
    /// ```
    /// use vaelab::base::seeds::EVAL_IS;
    /// assert_eq!(EVAL_IS.seed(5), 20_005);
    /// assert_eq!(EVAL_IS.seed(u64::MAX), 19_999); // wraps instead of overflowing
    /// ```
    pub const fn seed(self, seed: u64) -> u64 {
        seed.wrapping_add(self.offset)
    }

    /// The stream's generator for a user seed.
    pub fn rng(self, seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(self.seed(seed))
    }
}

// The trainer (`engine::train`), from `TrainConfig::seed`.

/// The model's initial weights (ChaCha8 stream 0 of the training seed).
pub const MODEL_INIT: Stream = Stream::new("model initialisation", 0);
/// Shuffles, dynamic binarisation and ε during training: the training seed's generator moved to
/// ChaCha8 stream [`TRAINING_CHACHA_STREAM`], so it never repeats [`MODEL_INIT`]'s draws.
pub const TRAINING: Stream = Stream::new("training: shuffles, binarisation, ε", 0);
/// The ChaCha8 stream number (not a seed offset) the training draws use.
pub const TRAINING_CHACHA_STREAM: u64 = 1;
/// The one-draw test ELBO after each epoch; the epoch number is added on top.
pub const EPOCH_TEST_ELBO: Stream = Stream::new("per-epoch test ELBO (+ epoch)", 10_000);

// The commands (`cli`), from `--seed`.

/// `--data prototypes`: the synthetic prototype images (from the training seed, so `vaelab eval`
/// rebuilds the same test set from a checkpoint).
pub const PROTOTYPE_DATA: Stream = Stream::new("prototype data", 1_000_000);
/// `vaelab eval`: the ELBO's draws of z.
pub const EVAL_ELBO: Stream = Stream::new("eval: ELBO draws", 10_000);
/// `vaelab eval`: the importance samples.
pub const EVAL_IS: Stream = Stream::new("eval: importance samples", 20_000);
/// `vaelab eval --amortisation-points`: the fitted q's and their ELBOs.
pub const EVAL_AMORTISATION: Stream = Stream::new("eval: amortisation gap", 30_000);
/// `vaelab train`: the prior samples shown in report.html (it shared 30,000 with the amortisation
/// gap until the seeds had names).
pub const REPORT_SAMPLES: Stream = Stream::new("train report: prior samples", 40_000);

// The lessons' experiments, from each experiment's seed.

/// Training data of lessons 06, 07, 08 (see the note at the top on stream 0). Lesson 08's per-unit
/// report draws from its own `UnitMeasureConfig::seed`.
pub const LESSON_DATA: Stream = Stream::new("lesson: training data", 0);
/// Test data of lessons 07, 08, and the independent-pixel images of lesson 09.
pub const LESSON_TEST_DATA: Stream = Stream::new("lesson: test data", 1);
/// Evaluation draws of lessons 07 and 09 (re-seeded for each model, so every model sees the same
/// draws).
pub const LESSON_EVALUATION: Stream = Stream::new("lesson: evaluation draws", 2);
/// Lesson 05: evaluation of both priors' models (ELBO, IS, surgery, aggregate draws), in one
/// sequence. It seeds the notebook's `rng` (`StdRng::seed_from_u64(5)`) and
/// `crate::lessons::prior::run_experiment`'s generator: a `StdRng`, not ChaCha8, so at offset 0 it
/// does not repeat the trainer's ChaCha8 stream 0 ([`MODEL_INIT`]).
pub const PRIOR_EVALUATION: Stream = Stream::new("lesson 05: evaluation draws (StdRng)", 0);
/// Lesson 06: the test ELBO of each KL-weight run.
pub const KL_WEIGHT_EVALUATION: Stream = Stream::new("lesson 06: test ELBO draws", 1);
/// Lesson 06: binarising the population whose batch noise is measured.
pub const NOISE_BINARISATION: Stream = Stream::new("lesson 06: noise population binarisation", 2);
/// Lesson 06: ε and the batches of the noise measurement. Offset 0 like [`LESSON_DATA`] and
/// [`MODEL_INIT`], so it reads the same ChaCha8 stream 0 (see the note at the top; the noise
/// measurement runs on a trained model, after both have been used).
pub const NOISE_DRAWS: Stream = Stream::new("lesson 06: noise measurement draws", 0);
/// Lesson 10: evaluation draws of each model (ELBO, IS, conditional IS).
pub const CVAE_EVALUATION: Stream = Stream::new("lesson 10: evaluation draws", 1000);
/// Lesson 10: the ε shared by every column of the class grids.
pub const CVAE_GRID_EPS: Stream = Stream::new("lesson 10: class-grid ε", 2000);

/// The streams that meet in one run, by run: within each group no two may share a seed unless
/// they are on different ChaCha8 streams (the trainer's two offset-0 streams) or are documented
/// above as deliberately shared (lesson data with model initialisation).
pub const RUNS: &[(&str, &[Stream])] = &[
    ("vaelab train", &[EPOCH_TEST_ELBO, PROTOTYPE_DATA, REPORT_SAMPLES]),
    ("vaelab eval", &[PROTOTYPE_DATA, EVAL_ELBO, EVAL_IS, EVAL_AMORTISATION]),
    ("lessons 07, 09", &[LESSON_TEST_DATA, LESSON_EVALUATION, EPOCH_TEST_ELBO]),
    ("lesson 08", &[LESSON_TEST_DATA, EPOCH_TEST_ELBO]),
    ("lesson 05", &[PRIOR_EVALUATION, EPOCH_TEST_ELBO]),
    ("lesson 06", &[KL_WEIGHT_EVALUATION, NOISE_BINARISATION, EPOCH_TEST_ELBO]),
    ("lesson 10", &[CVAE_EVALUATION, CVAE_GRID_EPS, EPOCH_TEST_ELBO]),
];

// The per-epoch test ELBO adds the epoch on top of its offset: runs of fewer than 10,000 epochs stay
// clear of the next stream up, at 20,000 (checked when the crate compiles).
const _: () = assert!(EPOCH_TEST_ELBO.offset + 10_000 <= EVAL_IS.offset);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_two_streams_of_a_run_share_an_offset() {
        for (run, streams) in RUNS {
            for (i, a) in streams.iter().enumerate() {
                for b in &streams[i + 1..] {
                    assert_ne!(
                        a.offset, b.offset,
                        "{run}: '{}' and '{}' share offset {}",
                        a.name, b.name, a.offset
                    );
                }
            }
        }
    }

    #[test]
    fn a_stream_seed_is_the_user_seed_plus_its_offset_and_wraps() {
        assert_eq!(PROTOTYPE_DATA.seed(7), 1_000_007);
        assert_eq!(CVAE_GRID_EPS.seed(u64::MAX - 1), 1998);
        use rand::Rng;
        let (a, b) = (LESSON_TEST_DATA.rng(3).random::<u64>(), ChaCha8Rng::seed_from_u64(4).random::<u64>());
        assert_eq!(a, b);
    }
}
