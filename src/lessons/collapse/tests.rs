use super::*;
use crate::engine::data::{Digits, Mnist10k};
use ndarray::{Array1, array};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Statistical comparisons allow 3 standard errors (one-sided normal tail 1.3e-3 per check); the
/// seeds are fixed.
const Z: f64 = 3.0;

#[test]
fn distances_by_hand() {
    // Data (0,0,0,0), (1,1,1,1): mean image ½ everywhere.
    let data = array![[0.0f32, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]];
    // Sample 1 is the mean: to_mean 0, to_nearest √(4·¼/4) = ½.
    // Sample 2 is (1, 1, 0, 0): to_mean √(4·¼/4) = ½; nearest √(2/4) = 0.7071 from both rows.
    let samples = array![[0.5f32, 0.5, 0.5, 0.5], [1.0, 1.0, 0.0, 0.0]];
    let d = sample_distances(samples.view(), data.view()).unwrap();
    assert_eq!(d.n, 2);
    assert!((d.to_mean.mean - 0.25).abs() < 1e-12, "mean of 0 and ½: {:?}", d.to_mean);
    assert!((d.to_nearest.mean - 0.5 * (0.5 + 0.5f64.sqrt())).abs() < 1e-12);
    // Standard errors: |a − b| / 2 for two values (sd = |a − b|/√2, over √2).
    assert!((d.to_mean.stderr - 0.25).abs() < 1e-12);
    assert!((d.to_nearest.stderr - 0.5 * (0.5f64.sqrt() - 0.5)).abs() < 1e-12);
    assert_eq!((d.to_mean.samples, d.to_nearest.samples), (2, 2));
    // Samples equal to a data row are 0 from it (twice: a standard error needs two samples).
    let d =
        sample_distances(data.slice(ndarray::s![1..2, ..]).broadcast((2, 4)).unwrap(), data.view()).unwrap();
    assert_eq!((d.to_nearest.mean, d.to_nearest.stderr, d.to_mean.mean), (0.0, 0.0, 0.5));
}

#[test]
fn distances_reject_bad_input() {
    let data = array![[0.0f32, 1.0]];
    let e = sample_distances(Array2::<f32>::zeros((0, 2)).view(), data.view()).unwrap_err();
    assert!(e.to_string().contains("samples is empty"), "{e}");
    let e = sample_distances(array![[0.0f32, 1.0, 2.0]].view(), data.view()).unwrap_err();
    assert!(e.to_string().contains("samples columns"), "{e}");
    let e = sample_distances(array![[0.0f32, f32::NAN]].view(), data.view()).unwrap_err();
    assert!(e.to_string().contains("non-finite value in samples at index 1"), "{e}");
    let e = sample_distances(array![[0.0f32, 1.0]].view(), data.view()).unwrap_err();
    assert_eq!(e.to_string(), "a standard error needs at least 2 values, got 1");
}

#[test]
fn bernoulli_likelihood_sums_to_one_and_its_entropy_matches() {
    // Independent route: enumerate all 2³ images, check Σ p(x) = 1 and −Σ p log p = Σ_d h(p_d).
    let p = array![0.1f32, 0.5, 0.0];
    let images = Array2::from_shape_fn((8, 3), |(i, d)| ((i >> d) & 1) as f32);
    let log_p = independent_bernoulli_log_likelihood(images.view(), p.view()).unwrap();
    let total: f64 = log_p.iter().map(|l| l.exp()).sum();
    assert!((total - 1.0).abs() < 1e-7, "Σ p(x) = {total}"); // p is f32: 1e-7 relative
    let entropy: f64 = log_p.iter().filter(|l| l.is_finite()).map(|l| -l.exp() * l).sum();
    let closed = bernoulli_entropy(p.view()).unwrap();
    assert!((entropy - closed).abs() < 1e-7, "enumerated {entropy}, closed form {closed}");
    // By hand: h(0.1) + h(0.5) + h(0) = 0.325083 + 0.693147 + 0.
    assert!((closed - (0.325_082_973_391_448 + 2f64.ln())).abs() < 1e-7);
    // x₂ = 1 under p₂ = 0 is impossible.
    assert_eq!(log_p[4], f64::NEG_INFINITY);
}

#[test]
fn bernoulli_likelihood_rejects_bad_input() {
    let p = array![0.5f32, 1.5];
    assert!(bernoulli_entropy(p.view()).unwrap_err().to_string().contains("p[1]"));
    let e = independent_bernoulli_log_likelihood(array![[0.0f32, 1.0]].view(), p.view()).unwrap_err();
    assert!(e.to_string().contains("p[1]"), "{e}");
    let e = independent_bernoulli_log_likelihood(array![[0.0f32, 0.3]].view(), array![0.5f32, 0.5].view())
        .unwrap_err();
    assert!(e.to_string().contains("x[0, 1]"), "{e}");
    let e = independent_bernoulli_log_likelihood(array![[0.0f32]].view(), array![0.5f32, 0.5].view())
        .unwrap_err();
    assert!(e.to_string().contains("x columns"), "{e}");
}

/// Twenty 2×2 training images and ten test images of three grey levels: a sweep trains in
/// milliseconds (shared with the slider's and lesson 09's exercise tests).
pub(crate) fn tiny_digits() -> DigitSplit {
    let make = |n: usize| Digits {
        images: Array2::from_shape_fn((n, 4), |(i, d)| ((i + d) % 3) as f32 / 2.0),
        labels: vec![0; n],
        image_shape: [2, 2],
    };
    DigitSplit { train: make(20), test: make(10) }
}

/// The smallest collapse configuration for [`tiny_digits`]: one epoch of a 4-3-2 model.
pub(crate) fn tiny_config() -> CollapseConfig {
    CollapseConfig {
        n_train: 20,
        n_test: 10,
        hidden: 3,
        latent_dim: 2,
        epochs: 1,
        batch_size: 5,
        k: 2,
        n_is: 4,
        prior_samples: 2,
        ..CollapseConfig::small(CollapseData::Digits, 1, 0)
    }
}

#[test]
fn runs_reject_bad_configurations() {
    let digits = tiny_digits();
    let run = |c: &CollapseConfig, v: &[Variant]| collapse_runs(&digits, c, v, &mut |_, _| {});
    let ok = [Variant::constant(1.0)];
    let msg = |r: Result<Collapses>| r.unwrap_err().to_string();
    assert!(msg(run(&CollapseConfig { n_train: 21, ..tiny_config() }, &ok)).contains("n_train = 21"));
    assert!(msg(run(&CollapseConfig { n_is: 11, ..tiny_config() }, &ok)).contains("n_is = 11"));
    assert!(msg(run(&CollapseConfig { k: 0, ..tiny_config() }, &ok)).contains("k = 0"));
    assert!(
        msg(run(&CollapseConfig { prior_samples: 1, ..tiny_config() }, &ok)).contains("prior_samples = 1")
    );
    assert!(msg(run(&tiny_config(), &[])).contains("variants is empty"));
    assert!(msg(run(&tiny_config(), &[Variant::constant(-1.0)])).contains("beta = -1"));
    assert!(msg(run(&tiny_config(), &[Variant::free_bits(1.0, 0.0)])).contains("free_bits"));
    // The tiny run itself works and keeps one point per variant.
    let r = run(&tiny_config(), &[Variant::constant(1.0), Variant::warmup(1.0, 3)]).unwrap();
    assert_eq!(r.points.len(), 2);
    assert_eq!(r.points[1].beta, 1.0);
    let mut more = r.clone();
    assert!(
        more.extend(Collapses { config: CollapseConfig { k: 3, ..tiny_config() }, ..r.clone() }).is_err()
    );
    more.extend(r.clone()).unwrap();
    assert_eq!(more.points.len(), 4);
}

/// A small digit model trained at β = 10⁻² and β = 10⁵ (same seed and data).
fn extremes() -> Collapses {
    let digits = Mnist10k::load().unwrap();
    let config = CollapseConfig {
        n_train: 1000,
        n_test: 200,
        hidden: 32,
        latent_dim: 4,
        batch_size: 50,
        k: 10,
        n_is: 50,
        ..CollapseConfig::small(CollapseData::Digits, 10, 3)
    };
    collapse_runs(&digits, &config, &[Variant::constant(0.01), Variant::constant(1e5)], &mut |_, _| {})
        .unwrap()
}

#[test]
fn large_beta_collapses_small_beta_does_not() {
    let r = extremes();
    let (small, large) = (&r.points[0], &r.points[1]);
    // At a minimiser of D + βR, comparing with the best decoder that ignores z (R = 0, D = D₀):
    // D + βR ≤ D₀, and D ≥ 0 (Bernoulli), so R ≤ D₀/β. D₀ ≈ 200 nats, β = 10⁵: R ≤ 0.002 nats.
    // A trained model is not an exact minimiser; the check is that training got there.
    let bound = r.distortion_at_zero_rate / large.beta;
    assert!(large.rate.mean <= bound, "R = {:?} at β = {}, bound D₀/β = {bound}", large.rate, large.beta);
    // Every model: mean KL_u = ½ E[μ_u² + σ_u² − 1 − log σ_u²] ≥ ½ E μ_u² ≥ ½ Var μ_u, so each
    // active unit (Var μ_u > δ = 0.01) carries more than δ/2 nats: AU < 2R/δ. With R ≤ 0.002 this
    // forces AU = 0.
    for p in &r.points {
        assert!(
            (p.active_units as f64) < 2.0 * p.rate.mean / 0.01 || p.active_units == 0,
            "{}",
            p.variant.label
        );
    }
    assert_eq!(large.active_units, 0);
    // Rate is non-increasing in β at minimisers ((β₂ − β₁)(R₂ − R₁) ≤ 0 from the two optimality
    // inequalities); trained models are approximate, so only the extremes 10⁻² and 10⁵ are compared.
    assert!(small.rate.mean > large.rate.mean);
    // Collapse (a): every prior sample decodes to nearly the same image, the best z-free decoder's
    // x̄; it is closer to the mean image than to any training digit, by many standard errors.
    let s = large.samples;
    assert!(s.to_nearest.mean - s.to_mean.mean > Z * (s.to_mean.stderr + s.to_nearest.stderr), "{s:?}");
    // Collapse (b) is the opposite: the small-β model's samples are farther from the mean image
    // than the collapsed model's.
    assert!(
        small.samples.to_mean.mean > s.to_mean.mean + Z * (small.samples.to_mean.stderr + s.to_mean.stderr)
    );
    // ELBO surgery adds up: I + KL(q_agg‖p) ≈ R (checked in prior's tests; here: I ≤ log N).
    assert!(small.mutual_information.mean <= r.log_n + 1e-12);
    // The IS bound rises with K on average (Burda et al. 2016, Thm 1): paired over the digits,
    // K = 20 is not below K = 1 by more than Z SE; K = config.k reproduces the table's values.
    let sweep = r.is_k_sweep(0, &[1, 20]).unwrap();
    assert_eq!((sweep[0].k, sweep[1].per_example.len()), (1, r.config.n_is));
    let rise = paired_difference(&sweep[1].per_example, &sweep[0].per_example).unwrap();
    assert!(rise.mean > -Z * rise.stderr, "rise {rise:?}");
    assert_eq!(small.is_per_example.len(), r.config.n_is);
    assert!(r.is_k_sweep(2, &[1]).is_err());
    // The printed form: the same numbers (same draws), one line of bounds, one line per rise.
    let (again, lines) = r.is_k_sweep_lines(0, &[1, 20]).unwrap();
    assert_eq!(again, sweep);
    let text: Vec<&str> = lines.lines().collect();
    assert_eq!(text.len(), 2, "{lines}");
    assert!(
        text[0].starts_with(&format!(
            "β = {}: IS bound at K = 1: {:.2} ± ",
            r.points[0].beta, sweep[0].estimate.mean
        )),
        "{lines}"
    );
    assert_eq!(text[1], format!("    rise K = 1 → 20: {:.2} ± {:.2}", rise.mean, rise.stderr));
    assert!(r.is_k_sweep_lines(2, &[1]).is_err());
    assert_eq!(r.mean_image_per_example.len(), r.config.n_test);
}

#[test]
fn independent_pixels_fit_without_z_and_respect_gibbs() {
    // Data with independent pixels: a factorised decoder can be exact without z.
    let digits = Mnist10k::load().unwrap();
    let config = CollapseConfig {
        n_train: 1000,
        n_test: 200,
        hidden: 32,
        latent_dim: 4,
        batch_size: 50,
        k: 10,
        n_is: 100,
        ..CollapseConfig::small(CollapseData::IndependentPixels, 5, 4)
    };
    let r = collapse_runs(&digits, &config, &[Variant::constant(1.0)], &mut |_, _| {}).unwrap();
    let p = &r.points[0];
    // Exact log p*(x) − log p̂(x) has expectation KL(p*‖p_model) + (log p − E log p̂) ≥ 0 (Gibbs;
    // the IS bias, Burda et al. 2016, Thm 1). Paired difference over 100 digits: ≥ −Z SE.
    let Estimate { mean: gap, stderr: se, .. } = p.exact_minus_is.unwrap();
    assert!(gap > -Z * se, "exact − IS = {gap} ± {se}");
    // The exact mean log p*(x) on these digits estimates −D₀ = −Σ h(x̄_d): within Z SE.
    let Estimate { mean: exact, stderr: exact_se, samples } = r.exact_log_likelihood.unwrap();
    assert_eq!(samples, config.n_is);
    assert!(
        (exact + r.distortion_at_zero_rate).abs() < Z * exact_se,
        "{exact} ± {exact_se} vs {}",
        -r.distortion_at_zero_rate
    );
}

#[test]
fn mean_image_is_a_zero_rate_decoder_target() {
    // D₀ is the distortion of the constant decoder x̄ under dynamic binarisation: check the closed
    // form against Monte Carlo on 2,000 fresh Bernoulli(x̄) images (Z SE).
    let p: Array1<f32> = Array1::from_shape_fn(50, |d| (d as f32 / 49.0).powi(2));
    let grey = p.broadcast((2000, 50)).unwrap().to_owned();
    let mut x = Array2::zeros((2000, 50));
    let rows: Vec<usize> = (0..2000).collect();
    binarize_bernoulli_rows(grey.view(), &rows, &mut x.view_mut(), &mut ChaCha8Rng::seed_from_u64(5));
    let neg: Vec<f64> =
        independent_bernoulli_log_likelihood(x.view(), p.view()).unwrap().iter().map(|l| -l).collect();
    let Estimate { mean: m, stderr: se, .. } = Estimate::from_values(&neg).unwrap();
    let closed = bernoulli_entropy(p.view()).unwrap();
    assert!((m - closed).abs() < Z * se, "Monte Carlo {m} ± {se}, closed form {closed}");
}

#[test]
fn chord_slope_with_a_constant_rate_gap_is_a_scaled_paired_difference() {
    // Independent route: when R_b,n − R_a,n = 2 on every digit, s = mean(D_a − D_b)/2 and its
    // standard error is the paired difference's over 2.
    let d_a: Vec<f64> = (0..50).map(|i| 100.0 + ((i * 37) % 11) as f64).collect();
    let d_b: Vec<f64> = (0..50).map(|i| 95.0 + ((i * 13) % 7) as f64).collect();
    let r_a: Vec<f64> = (0..50).map(|i| (i % 5) as f64 * 0.1).collect();
    let r_b: Vec<f64> = r_a.iter().map(|r| r + 2.0).collect();
    let s = chord_slope(&d_a, &r_a, &d_b, &r_b).unwrap();
    let p = paired_difference(&d_a, &d_b).unwrap();
    assert!(
        (s.mean - p.mean / 2.0).abs() < 1e-12 && (s.stderr - p.stderr / 2.0).abs() < 1e-12,
        "{s:?} {p:?}"
    );
    assert_eq!(s.samples, 50);
    // Bad input.
    assert!(chord_slope(&d_a, &r_a, &d_b[..3], &r_b).is_err());
    let e = chord_slope(&d_a, &r_b, &d_b, &r_a).unwrap_err();
    assert!(e.to_string().contains("must be > 0"), "{e}");
    assert!(chord_slope(&[1.0], &[0.0], &[0.0], &[1.0]).is_err());
}

#[test]
fn chord_slope_standard_error_matches_repeated_experiments() {
    // Independent route for the delta-method SE: repeat a synthetic experiment 400 times and
    // compare the spread of the slopes with the mean reported SE (within 15 %).
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let normal = rand_distr::Normal::new(0.0, 1.0).unwrap();
    use rand::distr::Distribution;
    let (mut slopes, mut ses) = (Vec::new(), Vec::new());
    for _ in 0..400 {
        let n = 200;
        let r_b: Vec<f64> = (0..n).map(|_| 3.0 + normal.sample(&mut rng)).collect();
        let r_a = vec![0.0; n];
        let d_a: Vec<f64> = (0..n).map(|_| 200.0 + 5.0 * normal.sample(&mut rng)).collect();
        let d_b: Vec<f64> = (0..n).map(|i| d_a[i] - 10.0 * r_b[i] + 2.0 * normal.sample(&mut rng)).collect();
        let s = chord_slope(&d_a, &r_a, &d_b, &r_b).unwrap();
        slopes.push(s.mean);
        ses.push(s.stderr);
    }
    let spread = Estimate::from_values(&slopes).unwrap().stderr * (slopes.len() as f64).sqrt();
    let mean_se = ses.iter().sum::<f64>() / ses.len() as f64;
    assert!((spread / mean_se - 1.0).abs() < 0.15, "sd of slopes {spread}, mean SE {mean_se}");
    let mean_slope = slopes.iter().sum::<f64>() / slopes.len() as f64;
    assert!((mean_slope - 10.0).abs() < 0.1, "{mean_slope}");
}

#[test]
fn mean_image_clamps_untouched_pixels() {
    // ε = 1/(N + 2) = 1/4 for N = 2: p = (0, 1, ½) becomes (¼, ¾, ½).
    let x = array![[1.0f32, 0.0, 1.0], [0.0, 1.0, 0.0]];
    let l = mean_image_log_likelihood(x.view(), array![0.0f32, 1.0, 0.5].view(), 2).unwrap();
    let by_hand = [0.25f64.ln() + 0.25f64.ln() + 0.5f64.ln(), 0.75f64.ln() + 0.75f64.ln() + 0.5f64.ln()];
    assert!((l[0] - by_hand[0]).abs() < 1e-7 && (l[1] - by_hand[1]).abs() < 1e-7, "{l:?}");
    assert!(mean_image_log_likelihood(x.view(), array![0.0f32, 1.0, 0.5].view(), 0).is_err());
    assert!(mean_image_log_likelihood(x.view(), array![0.0f32, 1.5, 0.5].view(), 2).is_err());
}

#[test]
fn test_digits_are_binarised_like_the_training_digits() {
    // Issue 13: D₀ and the mean-image baseline are defined for Bernoulli(grey) digits (dynamic
    // binarisation, as in training), so the test digits must be a Bernoulli(grey) draw, not
    // x > 0.5. Check: they are binary; the number of ones agrees with its expectation Σ g_nd
    // within Z standard deviations √Σ g(1 − g) (the threshold fails this same check); and their
    // mean −log p₀(x) agrees within Z SE with its exact expectation over the draw,
    // −Σ_d [g_nd log p̃_d + (1 − g_nd) log(1 − p̃_d)] averaged over n.
    let digits = Mnist10k::load().unwrap();
    let config = CollapseConfig { n_test: 2000, ..CollapseConfig::small(CollapseData::Digits, 1, 0) };
    let data = prepare(&digits, &config);
    assert!(data.test.iter().all(|&v| v == 0.0 || v == 1.0));
    let grey = digits.test.images.select(Axis(0), &evenly_spaced(digits.test.len(), config.n_test));
    let expected_ones: f64 = grey.iter().map(|&g| f64::from(g)).sum();
    let sd: f64 = grey.iter().map(|&g| f64::from(g) * (1.0 - f64::from(g))).sum::<f64>().sqrt();
    let ones = |x: &Array2<f32>| x.iter().map(|&v| f64::from(v)).sum::<f64>();
    assert!(
        (ones(&data.test) - expected_ones).abs() < Z * sd,
        "{} vs {expected_ones} ± {sd}",
        ones(&data.test)
    );
    let thresholded = crate::engine::data::binarize_fixed(grey.view());
    assert!((ones(&thresholded) - expected_ones).abs() > Z * sd, "the check tells the two apart");
    let neg: Vec<f64> = mean_image_log_likelihood(data.test.view(), data.pixel_means.view(), config.n_train)
        .unwrap()
        .iter()
        .map(|l| -l)
        .collect();
    let Estimate { mean: m, stderr: se, .. } = Estimate::from_values(&neg).unwrap();
    let eps = 1.0 / (config.n_train as f64 + 2.0);
    let expected: f64 = grey
        .rows()
        .into_iter()
        .map(|g| {
            g.iter()
                .zip(&data.pixel_means)
                .map(|(&g, &p)| {
                    let (g, p) = (f64::from(g), f64::from(p).clamp(eps, 1.0 - eps));
                    -(g * p.ln() + (1.0 - g) * (1.0 - p).ln())
                })
                .sum::<f64>()
        })
        .sum::<f64>()
        / config.n_test as f64;
    assert!((m - expected).abs() < Z * se, "mean −log p₀ = {m} ± {se}, expectation {expected}");
    // D₀, the training means' own entropy, is close to it (train and test means differ a little).
    let d0 = bernoulli_entropy(data.pixel_means.view()).unwrap();
    assert!((m - d0).abs() < 0.05 * d0, "{m} vs D₀ = {d0}");
}
