//! Two-dimensional toy distributions: two moons, concentric rings, Gaussians on a circle.
//!
//! Each is a mixture: a point first picks a component `c` uniformly at random, then is drawn from
//! that component, so the `N` points are independent draws from the stated density (not a
//! stratified grid). The component is returned as the point's label.

use ndarray::Array2;
use rand::Rng;
use rand_distr::StandardNormal;

use crate::base::error::{Error, Result, ensure_positive};

/// Points in the plane and the mixture component each was drawn from.
///
/// Each toy is a mixture: a point first picks a component `c` uniformly at random, then is drawn
/// from that component, so the `N` points are independent draws from the stated density (not a
/// stratified grid). The component is the point's label.
///
/// # Shapes
///
/// - `points`: N×2, columns `(x, y)`
/// - `labels`: N, each in `0..K` for K components
#[derive(Debug, Clone, PartialEq)]
pub struct Toy2d {
    /// N×2 coordinates.
    pub points: Array2<f64>,
    /// Component of each point.
    pub labels: Vec<usize>,
}

fn ensure_count(n: usize) -> Result<()> {
    if n == 0 { Err(Error::invalid("n", n, "must be ≥ 1 (points to draw)")) } else { Ok(()) }
}

fn ensure_noise(noise: f64) -> Result<()> {
    if noise.is_finite() && noise >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid("noise", noise, "must be finite and ≥ 0"))
    }
}

/// Draws `n` points from two interleaved half-circles of radius 1, with Gaussian noise.
///
/// ```text
/// c ~ Uniform{0, 1},   t ~ Uniform(0, π),   ε ~ N(0, I₂)
/// c = 0 (upper moon):  p = (cos t, sin t) + noise·ε             centre (0, 0)
/// c = 1 (lower moon):  p = (1 − cos t, ½ − sin t) + noise·ε     centre (1, ½)
/// ```
///
/// The geometry of scikit-learn's `make_moons`; there `t` is an even grid and the halves are
/// fixed in size, here both are random so the points are i.i.d. Useful facts: without noise every
/// point is at distance 1 from its moon's centre; with noise `E|p − centre|² = 1 + 2·noise²`.
///
/// # Shapes
///
/// - returns `points` N×2, `labels` N in `{0, 1}`
///
/// ```
/// use vaelab::engine::data::two_moons;
/// use vaelab::rand::{rngs::StdRng, SeedableRng};
/// let moons = two_moons(100, 0.0, &mut StdRng::seed_from_u64(0)).unwrap();
/// let (x, y) = (moons.points[[0, 0]], moons.points[[0, 1]]);
/// let centre = if moons.labels[0] == 0 { (0.0, 0.0) } else { (1.0, 0.5) };
/// assert!(((x - centre.0).hypot(y - centre.1) - 1.0).abs() < 1e-12);
/// ```
pub fn two_moons<R: Rng + ?Sized>(n: usize, noise: f64, rng: &mut R) -> Result<Toy2d> {
    ensure_count(n)?;
    ensure_noise(noise)?;
    let mut points = Array2::zeros((n, 2));
    let mut labels = Vec::with_capacity(n);
    for mut p in points.rows_mut() {
        let c = rng.random_range(0..2usize);
        let t = rng.random::<f64>() * std::f64::consts::PI;
        let (ex, ey): (f64, f64) = (rng.sample(StandardNormal), rng.sample(StandardNormal));
        let (x, y) = if c == 0 { (t.cos(), t.sin()) } else { (1.0 - t.cos(), 0.5 - t.sin()) };
        p[0] = x + noise * ex;
        p[1] = y + noise * ey;
        labels.push(c);
    }
    Ok(Toy2d { points, labels })
}

/// Draws `n` points from concentric circles centred at the origin, one per radius, with Gaussian
/// noise.
///
/// ```text
/// c ~ Uniform{0, …, K−1},   θ ~ Uniform(0, 2π),   ε ~ N(0, I₂)
/// p = radii[c]·(cos θ, sin θ) + noise·ε
/// ```
///
/// `E|p|² = radii[c]² + 2·noise²`. Two rings with radii `[1, 0.5]` are scikit-learn's
/// `make_circles(factor = 0.5)`.
///
/// # Shapes
///
/// - `radii`: K; returns `points` N×2, `labels` N in `0..K`
///
/// ```
/// use vaelab::engine::data::rings;
/// use vaelab::rand::{rngs::StdRng, SeedableRng};
/// let r = rings(10, &[1.0, 3.0], 0.0, &mut StdRng::seed_from_u64(0)).unwrap();
/// let radius = r.points[[0, 0]].hypot(r.points[[0, 1]]);
/// assert!((radius - [1.0, 3.0][r.labels[0]]).abs() < 1e-12);
/// ```
pub fn rings<R: Rng + ?Sized>(n: usize, radii: &[f64], noise: f64, rng: &mut R) -> Result<Toy2d> {
    ensure_count(n)?;
    ensure_noise(noise)?;
    if radii.is_empty() {
        return Err(Error::empty("radii", "radius"));
    }
    for (i, &r) in radii.iter().enumerate() {
        ensure_positive(&format!("radii[{i}]"), r)?;
    }
    let mut points = Array2::zeros((n, 2));
    let mut labels = Vec::with_capacity(n);
    for mut p in points.rows_mut() {
        let c = rng.random_range(0..radii.len());
        let theta = rng.random::<f64>() * std::f64::consts::TAU;
        let (ex, ey): (f64, f64) = (rng.sample(StandardNormal), rng.sample(StandardNormal));
        p[0] = radii[c] * theta.cos() + noise * ex;
        p[1] = radii[c] * theta.sin() + noise * ey;
        labels.push(c);
    }
    Ok(Toy2d { points, labels })
}

/// Draws `n` points from an equal-weight mixture of K isotropic Gaussians whose means are evenly
/// spaced on a circle (K = 8 is the classic "8 Gaussians" of the GAN and flow literature).
///
/// ```text
/// c ~ Uniform{0, …, K−1},   μ_c = radius·(cos 2πc/K, sin 2πc/K),   p ~ N(μ_c, sigma²·I₂)
/// ```
///
/// # Shapes
///
/// - returns `points` N×2, `labels` N in `0..K`
///
/// ```
/// use vaelab::engine::data::gaussians_on_circle;
/// use vaelab::rand::{rngs::StdRng, SeedableRng};
/// let g = gaussians_on_circle(5000, 8, 2.0, 0.05, &mut StdRng::seed_from_u64(0)).unwrap();
/// // Component 2 sits at angle π/2: mean (0, 2). 5000/8 points, SE 0.05/√625 = 0.002 per axis.
/// let ys: Vec<f64> = (0..5000).filter(|&i| g.labels[i] == 2).map(|i| g.points[[i, 1]]).collect();
/// let mean_y = ys.iter().sum::<f64>() / ys.len() as f64;
/// assert!((mean_y - 2.0).abs() < 0.01);
/// ```
pub fn gaussians_on_circle<R: Rng + ?Sized>(
    n: usize,
    components: usize,
    radius: f64,
    sigma: f64,
    rng: &mut R,
) -> Result<Toy2d> {
    ensure_count(n)?;
    if components == 0 {
        return Err(Error::invalid("components", components, "must be ≥ 1"));
    }
    if !(radius.is_finite() && radius >= 0.0) {
        return Err(Error::invalid("radius", radius, "must be finite and ≥ 0"));
    }
    ensure_positive("sigma", sigma)?;
    let mut points = Array2::zeros((n, 2));
    let mut labels = Vec::with_capacity(n);
    for mut p in points.rows_mut() {
        let c = rng.random_range(0..components);
        let angle = std::f64::consts::TAU * c as f64 / components as f64;
        let (ex, ey): (f64, f64) = (rng.sample(StandardNormal), rng.sample(StandardNormal));
        p[0] = radius * angle.cos() + sigma * ex;
        p[1] = radius * angle.sin() + sigma * ey;
        labels.push(c);
    }
    Ok(Toy2d { points, labels })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::f64::consts::PI;

    /// Each statistical check below allows 5 standard errors: a false failure has probability
    /// 5.7e-7 per check (two-sided normal tail), and the seeds are fixed.
    const Z: f64 = 5.0;

    fn mean(v: &[f64]) -> f64 {
        v.iter().sum::<f64>() / v.len() as f64
    }

    /// `|observed − expected| < Z·sd/√n`, with the population sd known from the model.
    #[track_caller]
    fn within_se(what: &str, values: &[f64], expected: f64, sd: f64) {
        let se = sd / (values.len() as f64).sqrt();
        let m = mean(values);
        assert!((m - expected).abs() < Z * se, "{what}: mean {m:.5}, expected {expected:.5} ± {Z}·{se:.2e}");
    }

    /// Counts of labels `0..k` are Binomial(n, 1/k): each within Z SE of n/k.
    #[track_caller]
    fn counts_are_uniform(labels: &[usize], k: usize) {
        let n = labels.len() as f64;
        let p = 1.0 / k as f64;
        for c in 0..k {
            let count = labels.iter().filter(|&&l| l == c).count() as f64;
            let se = (n * p * (1.0 - p)).sqrt();
            assert!((count - n * p).abs() < Z * se, "component {c}: {count} of {n}");
        }
        assert!(labels.iter().all(|&l| l < k));
    }

    fn column(t: &Toy2d, label: usize, f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
        t.points
            .rows()
            .into_iter()
            .zip(&t.labels)
            .filter(|&(_, &l)| l == label)
            .map(|(p, _)| f(p[0], p[1]))
            .collect()
    }

    #[test]
    fn moons_without_noise_lie_on_their_half_circles() {
        let m = two_moons(2000, 0.0, &mut StdRng::seed_from_u64(1)).unwrap();
        assert_eq!(m.points.dim(), (2000, 2));
        for (p, &c) in m.points.rows().into_iter().zip(&m.labels) {
            let (cx, cy) = if c == 0 { (0.0, 0.0) } else { (1.0, 0.5) };
            assert!(((p[0] - cx).hypot(p[1] - cy) - 1.0).abs() < 1e-12);
            // Upper half for moon 0 (t ∈ (0, π) ⇒ sin t ≥ 0), lower half for moon 1.
            assert!(if c == 0 { p[1] >= 0.0 } else { p[1] <= 0.5 });
        }
        counts_are_uniform(&m.labels, 2);
    }

    #[test]
    fn moons_with_noise_have_the_stated_moments() {
        let s = 0.1;
        let m = two_moons(40_000, s, &mut StdRng::seed_from_u64(2)).unwrap();
        counts_are_uniform(&m.labels, 2);
        // r² = |a + s·ε|² with |a| = 1: E r² = 1 + 2s², Var r² = 4s² + 4s⁴ (a·ε ~ N(0, 1) and
        // |ε|² ~ χ²₂ with variance 4 are uncorrelated).
        let sd_r2 = (4.0 * s * s + 4.0 * s.powi(4)).sqrt();
        within_se("moon 0 r²", &column(&m, 0, |x, y| x * x + y * y), 1.0 + 2.0 * s * s, sd_r2);
        within_se(
            "moon 1 r²",
            &column(&m, 1, |x, y| (x - 1.0).powi(2) + (y - 0.5).powi(2)),
            1.0 + 2.0 * s * s,
            sd_r2,
        );
        // t ~ U(0, π): E sin t = 2/π, Var sin t = ½ − 4/π²; E cos t = 0, Var cos t = ½.
        let sd_sin = (0.5 - 4.0 / (PI * PI) + s * s).sqrt();
        let sd_cos = (0.5 + s * s).sqrt();
        within_se("moon 0 y", &column(&m, 0, |_, y| y), 2.0 / PI, sd_sin);
        within_se("moon 0 x", &column(&m, 0, |x, _| x), 0.0, sd_cos);
        within_se("moon 1 y", &column(&m, 1, |_, y| y), 0.5 - 2.0 / PI, sd_sin);
        within_se("moon 1 x", &column(&m, 1, |x, _| x), 1.0, sd_cos);
    }

    #[test]
    fn rings_have_the_stated_radii() {
        let radii = [0.5, 1.0, 2.5];
        let exact = rings(900, &radii, 0.0, &mut StdRng::seed_from_u64(3)).unwrap();
        for (p, &c) in exact.points.rows().into_iter().zip(&exact.labels) {
            assert!((p[0].hypot(p[1]) - radii[c]).abs() < 1e-12);
        }
        let s = 0.05;
        let r = rings(30_000, &radii, s, &mut StdRng::seed_from_u64(4)).unwrap();
        counts_are_uniform(&r.labels, 3);
        for (c, &radius) in radii.iter().enumerate() {
            // E r² = R² + 2s², Var r² = 4R²s² + 4s⁴ (as for the moons, with |a| = R).
            let sd = (4.0 * radius * radius * s * s + 4.0 * s.powi(4)).sqrt();
            within_se(
                &format!("ring {c} r²"),
                &column(&r, c, |x, y| x * x + y * y),
                radius * radius + 2.0 * s * s,
                sd,
            );
            // θ ~ U(0, 2π): E x = 0, Var x = R²/2 + s².
            let sd_x = (radius * radius / 2.0 + s * s).sqrt();
            within_se(&format!("ring {c} x"), &column(&r, c, |x, _| x), 0.0, sd_x);
            within_se(&format!("ring {c} y"), &column(&r, c, |_, y| y), 0.0, sd_x);
        }
    }

    #[test]
    fn eight_gaussians_have_the_stated_means_and_spread() {
        let (k, radius, sigma) = (8, 2.0, 0.1);
        let g = gaussians_on_circle(40_000, k, radius, sigma, &mut StdRng::seed_from_u64(5)).unwrap();
        counts_are_uniform(&g.labels, k);
        for c in 0..k {
            let angle = 2.0 * PI * c as f64 / k as f64;
            let xs = column(&g, c, |x, _| x);
            within_se(&format!("component {c} x"), &xs, radius * angle.cos(), sigma);
            within_se(&format!("component {c} y"), &column(&g, c, |_, y| y), radius * angle.sin(), sigma);
            // ((x − μ)/σ)² ~ χ²₁: mean 1, sd √2.
            let z2: Vec<f64> = xs.iter().map(|x| ((x - radius * angle.cos()) / sigma).powi(2)).collect();
            within_se(&format!("component {c} standardised x²"), &z2, 1.0, 2f64.sqrt());
        }
    }

    #[test]
    fn same_seed_same_points() {
        let a = rings(50, &[1.0, 2.0], 0.1, &mut StdRng::seed_from_u64(6)).unwrap();
        let b = rings(50, &[1.0, 2.0], 0.1, &mut StdRng::seed_from_u64(6)).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn bad_parameters_are_named() {
        let rng = &mut StdRng::seed_from_u64(7);
        let msg = |r: Result<Toy2d>| r.unwrap_err().to_string();
        assert_eq!(msg(two_moons(0, 0.1, rng)), "invalid n = 0: must be ≥ 1 (points to draw)");
        assert_eq!(msg(two_moons(5, -0.1, rng)), "invalid noise = -0.1: must be finite and ≥ 0");
        assert_eq!(msg(two_moons(5, f64::NAN, rng)), "invalid noise = NaN: must be finite and ≥ 0");
        assert_eq!(msg(rings(5, &[], 0.1, rng)), "radii is empty: at least one radius is needed");
        assert_eq!(msg(rings(5, &[1.0, 0.0], 0.1, rng)), "invalid radii[1] = 0: must be finite and > 0");
        assert_eq!(msg(gaussians_on_circle(5, 0, 1.0, 0.1, rng)), "invalid components = 0: must be ≥ 1");
        assert_eq!(
            msg(gaussians_on_circle(5, 8, -1.0, 0.1, rng)),
            "invalid radius = -1: must be finite and ≥ 0"
        );
        assert_eq!(
            msg(gaussians_on_circle(5, 8, 1.0, 0.0, rng)),
            "invalid sigma = 0: must be finite and > 0"
        );
    }
}
