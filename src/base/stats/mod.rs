//! Statistics: one [`Estimate`] type for a mean with its standard error ([`Estimate::from_values`],
//! [`paired_difference`]), and goodness-of-fit tests: do these samples come from that distribution?
//!
//! Used by the crate's tests and by `notebooks/01-inverse-transform-sampling.ipynb` to check the
//! samplers of [`crate::lessons::sampling`] with numbers:
//!
//! - [`ks_test`]: the one-sample Kolmogorov–Smirnov test against any continuous CDF, the
//!   statistic `D_n = sup_x |F_n(x) − F(x)|` and its p-value from the Kolmogorov distribution
//!   with Stephens' small-sample correction;
//! - [`chi_square_test`]: Pearson's χ² test of observed category counts against probabilities;
//! - [`density_histogram`]: samples binned to a density, to draw over a pdf.
//!
//! How to read a p-value: if the samples do come from `F`, the p-value is (approximately)
//! uniform on [0, 1], so a test "at level α" rejects a correct sampler with probability α. The
//! crate's tests use α = 10⁻³ per test with fixed seeds; the notebook prints the p-values.

mod chi_square;
mod estimate;
mod histogram;
mod ks;

pub use chi_square::{ChiSquareTest, MIN_EXPECTED_COUNT, category_counts, chi_square_test};
pub use estimate::{Estimate, paired_difference};
pub use histogram::density_histogram;
pub use ks::{KsTest, kolmogorov_sf, ks_p_value, ks_statistic, ks_test};
