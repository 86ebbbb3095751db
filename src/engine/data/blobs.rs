//! Images with a known number of generative factors: one Gaussian blob on a small grid. The
//! formula is in the docs of [`blobs`].

use ndarray::Array2;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result, ensure_positive};

/// The optional third generative factor of [`blobs`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ThirdFactor {
    /// Two factors only: the position `(x, y)`.
    None,
    /// The blob's width `s` (pixels), uniform on `[min, max]`; replaces [`BlobConfig::width`].
    Width {
        /// Smallest width, > 0.
        min: f64,
        /// Largest width, ≥ `min`.
        max: f64,
    },
    /// The blob's peak intensity `a`, uniform on `[min, max]` ⊂ (0, 1].
    Intensity {
        /// Smallest intensity, > 0.
        min: f64,
        /// Largest intensity, ≥ `min` and ≤ 1.
        max: f64,
    },
}

/// Settings of [`blobs`].
///
/// ```
/// use vaelab::engine::data::{BlobConfig, ThirdFactor};
/// let c = BlobConfig::default();
/// assert_eq!((c.side, c.width, c.margin, c.third), (16, 1.5, 4.0, ThirdFactor::None));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BlobConfig {
    /// Image side in pixels; `D = side²`.
    pub side: usize,
    /// Blob width `s` (standard deviation, pixels), unless the third factor is the width.
    pub width: f64,
    /// The centre stays at least this far (pixels) from every edge of the image.
    pub margin: f64,
    /// An optional third factor.
    pub third: ThirdFactor,
}

impl Default for BlobConfig {
    /// 16×16 images, width 1.5 pixels, centres at least 4 pixels from the edges (so at most
    /// 2.5% of a blob's mass falls outside the image; see the tests), two factors.
    fn default() -> Self {
        BlobConfig { side: 16, width: 1.5, margin: 4.0, third: ThirdFactor::None }
    }
}

/// Images and the factors that made them.
///
/// # Shapes
///
/// - `images`: N×D, D = side², values in [0, 1], each row row-major
/// - `factors`: N×F, F = 2 (`x`, `y`) or 3 (`x`, `y`, then `width` or `intensity`)
#[derive(Debug, Clone, PartialEq)]
pub struct BlobImages {
    /// N×D images in [0, 1].
    pub images: Array2<f32>,
    /// N×F true factors, columns named by `factor_names`.
    pub factors: Array2<f64>,
    /// Names of the F columns of `factors`.
    pub factor_names: Vec<&'static str>,
    /// Side of one image, pixels.
    pub side: usize,
}

/// Draws `n` images of one Gaussian blob, with the factors that made each.
///
/// For the minimal-representation lesson: the images live in `D = side²` dimensions but are made
/// from 2 (or 3) numbers, so a VAE with more latent units than that should leave the rest
/// inactive, and the active ones should track the factors.
///
/// ```text
/// pixel (i, j), row i and column j, has its centre at (x_j, y_i) = (j + ½, i + ½)   [pixels]
/// image[i·side + j] = a · exp(−((x_j − x)² + (y_i − y)²) / (2 s²))
/// x, y ~ Uniform[margin, side − margin]        factors 1 and 2: the blob's centre
/// s = width, or Uniform[min, max]              factor 3 with ThirdFactor::Width
/// a = 1,     or Uniform[min, max]              factor 3 with ThirdFactor::Intensity
/// ```
///
/// `x` runs along a row (left to right) and `y` down the columns, both in pixels from the top-left
/// corner of the image. The intensity-weighted centroid of an image recovers `(x, y)`: for the
/// default settings within 0.08 pixel (a bound derived from the grid in the tests; the worst case
/// among the test's 2,000 images is 0.015 pixel).
///
/// Errors name the parameter: `n = 0`, `side = 0`, a width that is not > 0, a margin < 0 or one
/// that leaves no room for the centre (`2·margin ≥ side`), a third factor's range that is empty,
/// not positive, or (for intensity) above 1.
///
/// # Shapes
///
/// - returns `images` N×D (D = side²), `factors` N×F
///
/// ```
/// use vaelab::engine::data::{blobs, BlobConfig};
/// use vaelab::rand::{rngs::StdRng, SeedableRng};
/// let set = blobs(3, &BlobConfig::default(), &mut StdRng::seed_from_u64(0)).unwrap();
/// assert_eq!(set.images.dim(), (3, 256));
/// assert_eq!(set.factor_names, ["x", "y"]);
/// // The pixel nearest the centre is within half a pixel on each axis: value ≥ exp(−(½² + ½²)/(2·1.5²)).
/// let (x, y) = (set.factors[[0, 0]], set.factors[[0, 1]]);
/// let (i, j) = (y.floor() as usize, x.floor() as usize);
/// assert!(set.images[[0, i * 16 + j]] >= (-0.5f32 / (2.0 * 2.25)).exp());
/// ```
pub fn blobs<R: Rng + ?Sized>(n: usize, config: &BlobConfig, rng: &mut R) -> Result<BlobImages> {
    let BlobConfig { side, width, margin, third } = *config;
    if n == 0 {
        return Err(Error::invalid("n", n, "must be ≥ 1 (images to draw)"));
    }
    if side == 0 {
        return Err(Error::invalid("side", side, "must be ≥ 1 pixel"));
    }
    ensure_positive("width", width)?;
    if !(margin.is_finite() && margin >= 0.0 && 2.0 * margin < side as f64) {
        return Err(Error::invalid(
            "margin",
            margin,
            format!("must be ≥ 0 and < side/2 = {}", side as f64 / 2.0),
        ));
    }
    let (names, range) = match third {
        ThirdFactor::None => (vec!["x", "y"], None),
        ThirdFactor::Width { min, max } => {
            (vec!["x", "y", "width"], Some(check_range("width", min, max, None)?))
        }
        ThirdFactor::Intensity { min, max } => {
            (vec!["x", "y", "intensity"], Some(check_range("intensity", min, max, Some(1.0))?))
        }
    };
    let d = side * side;
    let mut images = Array2::<f32>::zeros((n, d));
    let mut factors = Array2::<f64>::zeros((n, names.len()));
    let span = side as f64 - 2.0 * margin;
    for (mut image, mut f) in images.rows_mut().into_iter().zip(factors.rows_mut()) {
        let x = margin + span * rng.random::<f64>();
        let y = margin + span * rng.random::<f64>();
        f[0] = x;
        f[1] = y;
        let (mut s, mut a) = (width, 1.0);
        if let Some((lo, hi)) = range {
            let v = lo + (hi - lo) * rng.random::<f64>();
            f[2] = v;
            match third {
                ThirdFactor::Width { .. } => s = v,
                _ => a = v,
            }
        }
        // Separable: exp(−(dx² + dy²)/2s²) = gx[j]·gy[i].
        let profile = |c: f64, k: usize| (-((k as f64 + 0.5 - c).powi(2)) / (2.0 * s * s)).exp();
        let gx: Vec<f64> = (0..side).map(|j| profile(x, j)).collect();
        for i in 0..side {
            let gy = a * profile(y, i);
            for j in 0..side {
                image[i * side + j] = (gy * gx[j]) as f32;
            }
        }
    }
    Ok(BlobImages { images, factors, factor_names: names, side })
}

fn check_range(name: &str, min: f64, max: f64, upper: Option<f64>) -> Result<(f64, f64)> {
    ensure_positive(&format!("{name} min"), min)?;
    if !(max.is_finite() && max >= min) {
        return Err(Error::invalid(format!("{name} max"), max, format!("must be finite and ≥ min = {min}")));
    }
    if let Some(u) = upper
        && max > u
    {
        return Err(Error::invalid(
            format!("{name} max"),
            max,
            format!("must be ≤ {u} (images are in [0, 1])"),
        ));
    }
    Ok((min, max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use statrs::function::erf::erfc;
    use std::f64::consts::PI;

    /// Standard normal density and upper tail.
    fn phi(t: f64) -> f64 {
        (-t * t / 2.0).exp() / (2.0 * PI).sqrt()
    }
    fn q(t: f64) -> f64 {
        0.5 * erfc(t / 2f64.sqrt())
    }

    /// Intensity-weighted centroid and total mass of one image.
    fn moments(image: ndarray::ArrayView1<'_, f32>, side: usize) -> (f64, f64, f64) {
        let (mut m, mut mx, mut my) = (0.0, 0.0, 0.0);
        for i in 0..side {
            for j in 0..side {
                let v = f64::from(image[i * side + j]);
                m += v;
                mx += v * (j as f64 + 0.5);
                my += v * (i as f64 + 0.5);
            }
        }
        (mx / m, my / m, m)
    }

    // How well the centroid and the mass recover the factors, from the pixel grid.
    //
    // The image is separable, so its x-centroid is the centroid of the 1-D samples
    // g(u) = exp(−u²/2s²) at u_j = j + ½ − x, j = 0..side. Over all integers j the sampled sums
    // equal the integrals up to terms of relative size 2·exp(−2π²s²) (Poisson summation;
    // < 6e-9 for s ≥ 1): Σ g = √(2π)·s and Σ u·g = 0. The image misses the tails beyond its edges,
    // where |u| ≥ margin + ½; as u·g(u) and g(u) decrease for u ≥ s, each missing term is at most
    // the integral over the unit interval before it, so with t = (margin − ½)/s:
    //   missing Σ g      ≤ 2·√(2π)·s·Q(t)      (both edges)
    //   missing Σ |u|·g  ≤ 2·s²·exp(−t²/2) = 2·√(2π)·s²·φ(t)
    // hence |centroid − x| ≤ 2·s·φ(t) / (1 − 2Q(t)), and the mass lies between
    // 2π s² a (1 − 2Q(t))² and 2π s² a. Add 1e-6 for the f32 pixels and the Poisson terms.
    fn centroid_tolerance(s: f64, margin: f64) -> f64 {
        let t = (margin - 0.5) / s;
        assert!(t >= 1.0, "the bound needs margin − ½ ≥ s");
        2.0 * s * phi(t) / (1.0 - 2.0 * q(t)) + 1e-6
    }

    #[test]
    fn shapes_ranges_and_names() {
        let rng = &mut StdRng::seed_from_u64(10);
        let set = blobs(50, &BlobConfig::default(), rng).unwrap();
        assert_eq!((set.images.dim(), set.factors.dim(), set.side), ((50, 256), (50, 2), 16));
        assert!(set.images.iter().all(|&v| (0.0..=1.0).contains(&v)));
        assert!(set.factors.iter().all(|&v| (4.0..=12.0).contains(&v)));
        let third = ThirdFactor::Intensity { min: 0.3, max: 0.9 };
        let set = blobs(50, &BlobConfig { side: 10, margin: 3.0, third, ..Default::default() }, rng).unwrap();
        assert_eq!((set.images.dim(), set.factor_names.clone()), ((50, 100), vec!["x", "y", "intensity"]));
        assert!(set.factors.column(2).iter().all(|&a| (0.3..=0.9).contains(&a)));
        // The peak pixel never exceeds the intensity.
        for (image, f) in set.images.rows().into_iter().zip(set.factors.rows()) {
            assert!(image.iter().all(|&v| f64::from(v) <= f[2] + 1e-7));
        }
    }

    #[test]
    fn the_centroid_recovers_the_position() {
        let config = BlobConfig::default();
        let tol = centroid_tolerance(config.width, config.margin); // 0.080 px for s = 1.5, margin 4
        assert!(tol < 0.1);
        let set = blobs(2000, &config, &mut StdRng::seed_from_u64(11)).unwrap();
        let mut worst = 0.0f64;
        for (image, f) in set.images.rows().into_iter().zip(set.factors.rows()) {
            let (cx, cy, _) = moments(image, 16);
            worst = worst.max((cx - f[0]).abs()).max((cy - f[1]).abs());
        }
        assert!(worst <= tol, "worst centroid error {worst:.4} px > bound {tol:.4} px");
    }

    #[test]
    fn the_mass_recovers_intensity_and_width() {
        let margin = 4.0;
        let set = blobs(
            1000,
            &BlobConfig {
                margin,
                third: ThirdFactor::Intensity { min: 0.2, max: 1.0 },
                ..Default::default()
            },
            &mut StdRng::seed_from_u64(12),
        )
        .unwrap();
        let s = 1.5;
        let low = (1.0 - 2.0 * q((margin - 0.5) / s)).powi(2); // 0.961
        for (image, f) in set.images.rows().into_iter().zip(set.factors.rows()) {
            let (.., mass) = moments(image, 16);
            let a_hat = mass / (2.0 * PI * s * s);
            assert!(
                a_hat <= f[2] * (1.0 + 1e-6) && a_hat >= f[2] * (low - 1e-6),
                "a = {}, a_hat = {a_hat}",
                f[2]
            );
        }
        let (lo, hi) = (1.0, 2.0);
        let set = blobs(
            1000,
            &BlobConfig { margin, third: ThirdFactor::Width { min: lo, max: hi }, ..Default::default() },
            &mut StdRng::seed_from_u64(13),
        )
        .unwrap();
        for (image, f) in set.images.rows().into_iter().zip(set.factors.rows()) {
            let (.., mass) = moments(image, 16);
            let s = f[2];
            let low = (1.0 - 2.0 * q((margin - 0.5) / s)).powi(2);
            let s_hat = (mass / (2.0 * PI)).sqrt(); // a = 1
            assert!(
                s_hat <= s * (1.0 + 1e-6) && s_hat >= s * (low.sqrt() - 1e-6),
                "s = {s}, s_hat = {s_hat}"
            );
        }
    }

    #[test]
    fn positions_are_uniform_over_the_allowed_square() {
        // x ~ U[4, 12]: mean 8, sd 8/√12. 4000 draws, 5 SE (false-failure chance 5.7e-7 each).
        let set = blobs(4000, &BlobConfig::default(), &mut StdRng::seed_from_u64(14)).unwrap();
        let se = 8.0 / 12f64.sqrt() / 4000f64.sqrt();
        for k in 0..2 {
            let m = set.factors.column(k).mean().unwrap();
            assert!((m - 8.0).abs() < 5.0 * se, "factor {k}: mean {m}");
        }
    }

    #[test]
    fn bad_parameters_are_named() {
        let rng = &mut StdRng::seed_from_u64(15);
        let msg = |c: BlobConfig| blobs(2, &c, &mut StdRng::seed_from_u64(0)).unwrap_err().to_string();
        let d = BlobConfig::default();
        assert_eq!(blobs(0, &d, rng).unwrap_err().to_string(), "invalid n = 0: must be ≥ 1 (images to draw)");
        assert_eq!(msg(BlobConfig { side: 0, ..d }), "invalid side = 0: must be ≥ 1 pixel");
        assert_eq!(msg(BlobConfig { width: 0.0, ..d }), "invalid width = 0: must be finite and > 0");
        assert_eq!(msg(BlobConfig { margin: 8.0, ..d }), "invalid margin = 8: must be ≥ 0 and < side/2 = 8");
        let third = ThirdFactor::Intensity { min: 0.5, max: 1.5 };
        assert_eq!(
            msg(BlobConfig { third, ..d }),
            "invalid intensity max = 1.5: must be ≤ 1 (images are in [0, 1])"
        );
        let third = ThirdFactor::Width { min: 2.0, max: 1.0 };
        assert_eq!(msg(BlobConfig { third, ..d }), "invalid width max = 1: must be finite and ≥ min = 2");
        let third = ThirdFactor::Width { min: -1.0, max: 1.0 };
        assert_eq!(msg(BlobConfig { third, ..d }), "invalid width min = -1: must be finite and > 0");
    }
}
