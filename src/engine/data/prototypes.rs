//! Synthetic images around random binary prototypes: the data of `vaelab train --data prototypes`,
//! of `vaelab bench` (the anchors' synthetic data), and of the engine's own tests. One generator,
//! three settings.

use ndarray::{Array2, ArrayView2};
use rand::Rng;

/// `count` random binary masks of `d` pixels; each pixel is in a mask with probability
/// `on_fraction` (one `f32` uniform per pixel, row by row).
///
/// # Shapes
/// → `count × D` (D = `d`, one row per prototype).
pub fn prototype_masks<R: Rng + ?Sized>(
    count: usize,
    d: usize,
    on_fraction: f32,
    rng: &mut R,
) -> Array2<bool> {
    Array2::from_shape_simple_fn((count, d), || rng.random::<f32>() < on_fraction)
}

/// Grey images: row i is mask `i mod count` drawn with grey level `inside` on the mask and
/// `outside` off it (deterministic).
///
/// # Shapes
/// `masks`: `count × D` → `N × D` (N = `n`).
///
/// ```
/// use vaelab::ndarray::array;
/// let masks = array![[true, false], [false, true]];
/// let x = vaelab::engine::data::prototype_images(masks.view(), 3, 0.9, 0.05);
/// assert_eq!(x, array![[0.9, 0.05], [0.05, 0.9], [0.9, 0.05]]);
/// ```
pub fn prototype_images(masks: ArrayView2<bool>, n: usize, inside: f32, outside: f32) -> Array2<f32> {
    let count = masks.nrows();
    Array2::from_shape_fn((n, masks.ncols()), |(i, j)| if masks[(i % count, j)] { inside } else { outside })
}

/// Binary images as the anchors make theirs: each row picks one of the masks at random, then
/// each pixel is on with probability `inside` on its mask and `outside` off it (all the rows'
/// masks are drawn first, then the pixels row by row).
///
/// # Shapes
/// `masks`: `count × D` → `N × D` of 0/1 (N = `n`).
pub fn prototype_binary<R: Rng + ?Sized>(
    masks: ArrayView2<bool>,
    n: usize,
    inside: f32,
    outside: f32,
    rng: &mut R,
) -> Array2<f32> {
    let count = masks.nrows();
    let labels: Vec<usize> = (0..n).map(|_| rng.random_range(0..count)).collect();
    Array2::from_shape_fn((n, masks.ncols()), |(i, j)| {
        let p = if masks[(labels[i], j)] { inside } else { outside };
        f32::from(rng.random::<f32>() < p)
    })
}

/// The anchors' synthetic binary data (`vaelab bench`, `tests/no_alloc.rs`): 10 random prototype
/// masks over 13% of the pixels, each pixel on with probability 0.85 inside its row's mask and
/// 0.02 outside.
///
/// # Shapes
/// → `N × D` of 0/1 (N = `n`, D = `d`).
pub fn synthetic_binary<R: Rng + ?Sized>(n: usize, d: usize, rng: &mut R) -> Array2<f32> {
    let masks = prototype_masks(10, d, 0.13, rng);
    prototype_binary(masks.view(), n, 0.85, 0.02, rng)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn binary_images_follow_their_masks_on_fractions() {
        // 4,000 rows × 200 pixels: the on-rate inside the masks is 0.85 and outside 0.02, each
        // estimated from ≥ 10⁵ pixels, so within 5 SE (SE = √(p(1−p)/n) ≤ 0.0012).
        let mut rng = StdRng::seed_from_u64(3);
        let masks = prototype_masks(10, 200, 0.13, &mut rng);
        let frac = masks.iter().filter(|&&m| m).count() as f64 / 2000.0;
        assert!((frac - 0.13).abs() < 5.0 * (0.13 * 0.87 / 2000.0f64).sqrt(), "mask fraction {frac}");
        let x = prototype_binary(masks.view(), 4000, 0.85, 0.02, &mut rng);
        // A row's mask is the one its on-pixels agree with best.
        let (mut on_in, mut n_in, mut on_out, mut n_out) = (0.0, 0.0, 0.0, 0.0);
        for row in x.rows() {
            let best = (0..10)
                .max_by_key(|&k| row.iter().zip(masks.row(k)).filter(|(v, m)| (**v > 0.5) == **m).count())
                .unwrap();
            for (v, m) in row.iter().zip(masks.row(best)) {
                if *m {
                    (on_in, n_in) = (on_in + f64::from(*v), n_in + 1.0);
                } else {
                    (on_out, n_out) = (on_out + f64::from(*v), n_out + 1.0);
                }
            }
        }
        let (p_in, p_out) = (on_in / n_in, on_out / n_out);
        assert!((p_in - 0.85).abs() < 5.0 * (0.85 * 0.15 / n_in).sqrt(), "inside {p_in}");
        assert!((p_out - 0.02).abs() < 5.0 * (0.02 * 0.98 / n_out).sqrt(), "outside {p_out}");
    }
}
