//! A density histogram: samples binned so that they can be drawn over a pdf.

use ndarray::{Array1, ArrayRef1};

use crate::base::error::{Error, Result, ensure_finite};

/// Bins `samples` on `bins` equal bins over [lo, hi] and scales the counts to a density:
///
/// ```text
/// h = (hi − lo)/bins,   e_k = lo + k·h,   c_k = lo + (k + ½)·h                 (1.14)
/// density_k = #{ i : e_k ≤ x_i < e_{k+1} } / (N·h)      (the last bin also takes x_i = hi)
/// ```
///
/// `N` the number of samples (all of them, also those outside [lo, hi], so the bars estimate the
/// pdf itself: Σ_k density_k·h is the fraction of samples inside), `h` the bin width, `e_k` the
/// edges, `c_k` the centres. Plotting the centres and densities as bars costs `bins` numbers in
/// the page instead of N.
///
/// # Shapes
/// `samples`: (N,) → (centres (bins,), densities (bins,)).
///
/// ```
/// use vaelab::ndarray::array;
/// use vaelab::base::stats::density_histogram;
/// // Four samples, two bins of width 1/2: three in [0, ½), one in [½, 1] → 3/(4·½), 1/(4·½).
/// let (c, d) = density_histogram(&array![0.1, 0.2, 0.3, 1.0], 0.0, 1.0, 2).unwrap();
/// assert_eq!(c.to_vec(), vec![0.25, 0.75]);
/// assert_eq!(d.to_vec(), vec![1.5, 0.5]);
/// ```
///
/// # Errors
/// [`Error::Empty`] for no samples; [`Error::NonFinite`] for a non-finite sample;
/// [`Error::InvalidParameter`] for `bins = 0`, a non-finite `lo` or `hi`, or `lo ≥ hi`.
pub fn density_histogram(
    samples: &ArrayRef1<f64>,
    lo: f64,
    hi: f64,
    bins: usize,
) -> Result<(Array1<f64>, Array1<f64>)> {
    if samples.is_empty() {
        return Err(Error::empty("samples", "sample"));
    }
    ensure_finite("samples", samples.iter())?;
    if bins == 0 {
        return Err(Error::invalid("bins", bins, "at least one bin is needed"));
    }
    if !lo.is_finite() {
        return Err(Error::invalid("lo", lo, "must be finite"));
    }
    if !hi.is_finite() || hi <= lo {
        return Err(Error::invalid("hi", hi, format!("must be finite and > lo = {lo}")));
    }
    let h = (hi - lo) / bins as f64;
    let mut counts = vec![0u64; bins];
    for &x in samples.iter() {
        if (lo..=hi).contains(&x) {
            let k = (((x - lo) / h) as usize).min(bins - 1);
            counts[k] += 1;
        }
    }
    let scale = 1.0 / (samples.len() as f64 * h);
    let centres = Array1::from_shape_fn(bins, |k| lo + (k as f64 + 0.5) * h);
    let density = counts.iter().map(|&c| c as f64 * scale).collect();
    Ok((centres, density))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_integrate_to_the_fraction_inside_and_match_counting_by_hand() {
        let x = Array1::from_shape_fn(1000, |i| ((i * 7919) % 1000) as f64 / 100.0 - 2.0); // −2 … 7.99
        let (c, d) = density_histogram(&x, 0.0, 5.0, 10).unwrap();
        let h = 0.5;
        // 501 of the 1000 points (0.00, 0.01, …, 5.00) lie in [0, 5], the last edge included: Σ d·h = 0.501.
        let inside = x.iter().filter(|&&v| (0.0..=5.0).contains(&v)).count() as f64 / 1000.0;
        assert!((d.sum() * h - inside).abs() < 1e-12);
        // Each bar by direct counting.
        for k in 0..10 {
            let (a, b) = (c[k] - h / 2.0, c[k] + h / 2.0);
            let n = x.iter().filter(|&&v| v >= a && (v < b || (k == 9 && v <= b))).count() as f64;
            assert!((d[k] - n / (1000.0 * h)).abs() < 1e-12, "bin {k}");
        }
    }

    #[test]
    fn bad_inputs_get_typed_errors() {
        let x = ndarray::array![0.5];
        assert!(matches!(density_histogram(&Array1::<f64>::zeros(0), 0.0, 1.0, 3), Err(Error::Empty { .. })));
        assert!(matches!(
            density_histogram(&ndarray::array![f64::NAN], 0.0, 1.0, 3),
            Err(Error::NonFinite { .. })
        ));
        assert!(matches!(density_histogram(&x, 0.0, 1.0, 0), Err(Error::InvalidParameter { .. })));
        assert!(matches!(density_histogram(&x, 1.0, 1.0, 3), Err(Error::InvalidParameter { .. })));
        assert!(matches!(density_histogram(&x, f64::NAN, 1.0, 3), Err(Error::InvalidParameter { .. })));
    }
}
