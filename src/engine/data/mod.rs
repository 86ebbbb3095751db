//! Data for the course: 10,000 real handwritten digits shipped with the repo, a reader for the
//! standard MNIST files, binarisation, and procedural sets whose generative factors are known.
//!
//! | what | where | used by |
//! |---|---|---|
//! | 10,000 MNIST digits, split 8,000 / 2,000 | [`Mnist10k`] (`data/mnist10k.bin.gz`) | the engine, notebook 04 and later lessons |
//! | the standard MNIST IDX files a user already has | [`load_mnist_dir`], [`read_idx_images`], [`read_idx_labels`] | `--mnist-dir` in the CLI |
//! | binarisation: dynamic for training, fixed for testing | [`binarize_bernoulli_rows`], [`binarize_fixed`] | training and evaluation |
//! | 2-D toys: two moons, rings, 8 Gaussians on a circle | [`two_moons`], [`rings`], [`gaussians_on_circle`] | the prior / aggregate-posterior lesson |
//! | images with known factors: a blob at (x, y) on a 16×16 grid | [`blobs`] | the minimal-representation lesson |
//!
//! # Shapes
//!
//! `N` rows (data points), `D` data dimension (784 = 28·28 for digits, `side²` for blobs),
//! `F` generative factors. Images are stored one per row, each row-major (`row · width + col`).
//!
//! # Binarisation
//!
//! The digits are grey levels `x ∈ [0, 1]`; the Bernoulli decoder of the course models binary
//! pixels. Two binarisations, as in the PyTorch reference (`shared/anchors/README.md`, "Quality
//! anchor"):
//!
//! ```text
//! training (dynamic):  b_nd ~ Bernoulli(x_nd), a fresh draw for every digit in every epoch
//! test (fixed):        b_nd = 1 if x_nd > 0.5, else 0
//! ```
//!
//! `n` indexes digits, `d` pixels. Dynamic binarisation makes the training set a distribution over
//! binary images whose mean is the grey image, `E[b_nd] = x_nd`; fixing the test set keeps the
//! test log-likelihood a single number.

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Zip, s};
use rand::Rng;

mod blobs;
mod idx;
mod mnist10k;
mod prototypes;
mod toys;

pub use blobs::{BlobConfig, BlobImages, ThirdFactor, blobs};
pub use idx::{IdxImages, load_mnist_dir, read_idx_images, read_idx_labels};
pub use mnist10k::{ConvertSummary, Mnist10k};
pub use prototypes::{prototype_binary, prototype_images, prototype_masks, synthetic_binary};
pub use toys::{Toy2d, gaussians_on_circle, rings, two_moons};

/// Row indices ⌊i·total/n⌋ for i = 0 … n − 1: an even subset of `total` rows. The shipped digits
/// are stored in class order, so an even subset keeps every class's share (a prefix would not).
///
/// ```
/// assert_eq!(vaelab::engine::data::evenly_spaced(10, 4), vec![0, 2, 5, 7]);
/// ```
pub fn evenly_spaced(total: usize, n: usize) -> Vec<usize> {
    (0..n).map(|i| i * total / n).collect()
}

/// Number of digit classes, `C = 10`.
pub const CLASSES: usize = 10;

/// Labelled images, one per row.
///
/// # Shapes
///
/// - `images`: N×D, grey levels in [0, 1] (`D = height · width`, each row row-major)
/// - `labels`: N, each in `0..C`
#[derive(Debug, Clone, PartialEq)]
pub struct Digits {
    /// N×D grey levels in [0, 1].
    pub images: Array2<f32>,
    /// The class of each row, `0..C`.
    pub labels: Vec<u8>,
    /// `[height, width]` of one image; `height · width = D`.
    pub image_shape: [usize; 2],
}

impl Digits {
    /// Number of images, `N`.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// `true` when there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// How many images of each class `0..C`.
    ///
    /// ```
    /// use vaelab::engine::data::{Digits, CLASSES};
    /// use vaelab::ndarray::Array2;
    /// let d = Digits { images: Array2::zeros((3, 4)), labels: vec![1, 7, 1], image_shape: [2, 2] };
    /// assert_eq!(d.class_counts(), [0, 2, 0, 0, 0, 0, 0, 1, 0, 0]);
    /// assert_eq!(d.class_counts().len(), CLASSES);
    /// ```
    ///
    /// **Panics** if a label is `≥ C` (the loaders reject such files).
    pub fn class_counts(&self) -> [usize; CLASSES] {
        let mut counts = [0; CLASSES];
        for &label in &self.labels {
            counts[usize::from(label)] += 1;
        }
        counts
    }
}

/// A training set and a test set.
#[derive(Debug, Clone, PartialEq)]
pub struct DigitSplit {
    /// Training digits (binarised dynamically while training).
    pub train: Digits,
    /// Test digits (binarised by `x > 0.5` for evaluation).
    pub test: Digits,
}

/// Dynamic binarisation: fills `out` with a fresh `Bernoulli(x)` image for each listed row of `grey`.
///
/// ```text
/// out[i, d] = 1  if u_id < grey[rows[i], d],  else 0,     u_id ~ Uniform[0, 1) drawn from rng
/// ```
///
/// so `P(out[i, d] = 1) = grey[rows[i], d]` (to the 2⁻²⁴ resolution of the uniform). Row `i` of
/// `out` receives digit `rows[i]`: pass a shuffled slice of indices to gather a mini-batch and
/// binarise it in one pass. Nothing is allocated: `out` is a preallocated buffer (or a slice of
/// one, for the last, shorter batch), so this is safe on the training hot path. One `u32` is drawn
/// per pixel, row by row, in order; `u` is its top 24 bits times 2⁻²⁴ (the grid of
/// `rng.random::<f32>()`), drawn in blocks with `Rng::fill`.
///
/// # Shapes
///
/// - `grey`: N×D, values in [0, 1]
/// - `rows`: B indices into `0..N`
/// - `out`: B×D, overwritten
///
/// **Panics** if `out` is not `rows.len()`×D or an index is `≥ N` (programmer errors).
///
/// ```
/// use vaelab::engine::data::binarize_bernoulli_rows;
/// use vaelab::ndarray::{array, Array2};
/// use vaelab::rand::{rngs::StdRng, SeedableRng};
/// let grey = array![[0.0f32, 1.0, 0.0], [1.0, 0.0, 1.0]];
/// let mut batch = Array2::<f32>::zeros((3, 3));
/// let mut rng = StdRng::seed_from_u64(1);
/// // Levels 0 and 1 binarise to themselves whatever the draw.
/// binarize_bernoulli_rows(grey.view(), &[1, 0, 1], &mut batch.view_mut(), &mut rng);
/// assert_eq!(batch, array![[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 1.0]]);
/// ```
#[track_caller]
pub fn binarize_bernoulli_rows<R: Rng + ?Sized>(
    grey: ArrayView2<'_, f32>,
    rows: &[usize],
    out: &mut ArrayViewMut2<'_, f32>,
    rng: &mut R,
) {
    let (n, d) = grey.dim();
    assert!(
        out.dim() == (rows.len(), d),
        "binarize_bernoulli_rows: out is {:?}, expected {:?} (rows.len() × D)",
        out.dim(),
        (rows.len(), d)
    );
    // Random words are drawn in blocks with `Rng::fill` into this stack buffer (no heap
    // allocation). Measured with StdRng, B = 128, D = 784, release: about 0.2 ms per batch, 1.5-2.5×
    // faster than one `rng.random::<f32>()` call per pixel.
    const BLOCK: usize = 256;
    let mut words = [0u32; BLOCK];
    for (i, &r) in rows.iter().enumerate() {
        assert!(r < n, "binarize_bernoulli_rows: rows[{i}] = {r} is out of range for {n} rows");
        let (mut out_row, grey_row) = (out.row_mut(i), grey.row(r));
        for start in (0..d).step_by(BLOCK) {
            let end = (start + BLOCK).min(d);
            rng.fill(&mut words[..end - start]);
            Zip::from(out_row.slice_mut(s![start..end]))
                .and(grey_row.slice(s![start..end]))
                .and(&words[..end - start])
                .for_each(|b, &x, &w| {
                    // The top 24 bits as u ∈ [0, 1) on a grid of 2⁻²⁴: exact in f32.
                    let u = (w >> 8) as f32 * (1.0 / 16_777_216.0);
                    *b = if u < x { 1.0 } else { 0.0 };
                });
        }
    }
}

/// Fixed binarisation for evaluation: `1` where `x > 0.5`, else `0`.
///
/// # Shapes
///
/// - `grey`: N×D → N×D
///
/// ```
/// use vaelab::engine::data::binarize_fixed;
/// use vaelab::ndarray::array;
/// let b = binarize_fixed(array![[0.2f32, 0.5, 0.502, 1.0]].view());
/// assert_eq!(b, array![[0.0, 0.0, 1.0, 1.0]]);
/// ```
pub fn binarize_fixed(grey: ArrayView2<'_, f32>) -> Array2<f32> {
    grey.mapv(|x| if x > 0.5 { 1.0 } else { 0.0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// Monte-Carlo check of `E[b] = x`: for each grey level, the mean of T independent draws has
    /// standard error sqrt(x(1−x)/T); every mean must lie within 5 SE. With 9 levels the chance
    /// that any one of them falls outside by luck is below 9 · 5.7e-7.
    #[test]
    fn dynamic_binarisation_mean_is_the_grey_level() {
        let levels = [0.0f32, 0.05, 0.2, 0.33, 0.5, 0.624, 0.8, 0.992, 1.0];
        let grey = Array2::from_shape_vec((1, levels.len()), levels.to_vec()).unwrap();
        // Gather the one digit 200 times per call, so each call gives 200 draws per level.
        let rows = vec![0; 200];
        let mut batch = Array2::<f32>::zeros((rows.len(), levels.len()));
        let mut sums = vec![0.0f64; levels.len()];
        let calls = 500;
        let mut rng = StdRng::seed_from_u64(20);
        for _ in 0..calls {
            binarize_bernoulli_rows(grey.view(), &rows, &mut batch.view_mut(), &mut rng);
            for (s, col) in sums.iter_mut().zip(batch.columns()) {
                *s += col.iter().map(|&b| f64::from(b)).sum::<f64>();
            }
        }
        let t = (calls * rows.len()) as f64; // 10^5 draws per level
        for (&x, &s) in levels.iter().zip(&sums) {
            let x = f64::from(x);
            let mean = s / t;
            let se = (x * (1.0 - x) / t).sqrt();
            if se == 0.0 {
                assert_eq!(mean, x, "levels 0 and 1 are deterministic");
            } else {
                let z = (mean - x) / se;
                assert!(z.abs() < 5.0, "level {x}: mean {mean:.5} is {z:.2} SE from x (SE {se:.2e})");
            }
        }
    }

    #[test]
    fn dynamic_binarisation_draws_fresh_images_and_only_zeros_and_ones() {
        let grey = Array2::from_elem((4, 50), 0.5f32);
        let mut a = Array2::<f32>::zeros((4, 50));
        let mut b = Array2::<f32>::zeros((4, 50));
        let mut rng = StdRng::seed_from_u64(21);
        binarize_bernoulli_rows(grey.view(), &[0, 1, 2, 3], &mut a.view_mut(), &mut rng);
        binarize_bernoulli_rows(grey.view(), &[0, 1, 2, 3], &mut b.view_mut(), &mut rng);
        assert!(a.iter().chain(b.iter()).all(|&v| v == 0.0 || v == 1.0));
        // Two draws of 200 fair coins agree everywhere with probability 2^-200.
        assert_ne!(a, b, "a second call must draw new pixels");
        // Same seed, same images.
        let mut c = Array2::<f32>::zeros((4, 50));
        binarize_bernoulli_rows(
            grey.view(),
            &[0, 1, 2, 3],
            &mut c.view_mut(),
            &mut StdRng::seed_from_u64(21),
        );
        assert_eq!(a, c);
    }

    #[test]
    fn dynamic_binarisation_fills_a_slice_of_a_larger_buffer() {
        let grey = array![[1.0f32, 1.0], [0.0, 0.0]];
        let mut buffer = Array2::from_elem((4, 2), 7.0f32);
        let mut rng = StdRng::seed_from_u64(22);
        // The last batch of an epoch is shorter: fill only its rows.
        binarize_bernoulli_rows(grey.view(), &[0, 1], &mut buffer.slice_mut(s![..2, ..]), &mut rng);
        assert_eq!(buffer, array![[1.0, 1.0], [0.0, 0.0], [7.0, 7.0], [7.0, 7.0]]);
    }

    #[test]
    fn dynamic_binarisation_is_exact_for_levels_0_and_1_across_draw_blocks() {
        // D = 784 spans several blocks of 256 draws; levels 0 and 1 must come out unchanged in
        // every pixel, whichever block drew its uniform.
        let d = 784;
        let grey = Array2::from_shape_fn((2, d), |(r, j)| ((j * 7 + r) % 3 == 0) as u8 as f32);
        let mut out = Array2::<f32>::zeros((3, d));
        binarize_bernoulli_rows(grey.view(), &[1, 0, 1], &mut out.view_mut(), &mut StdRng::seed_from_u64(23));
        for (i, r) in [1, 0, 1].into_iter().enumerate() {
            assert_eq!(out.row(i), grey.row(r), "row {i}");
        }
    }

    #[test]
    #[should_panic(expected = "out is (3, 2), expected (2, 2)")]
    fn dynamic_binarisation_names_a_wrong_buffer_shape() {
        let grey = Array2::<f32>::zeros((5, 2));
        let mut out = Array2::<f32>::zeros((3, 2));
        binarize_bernoulli_rows(grey.view(), &[0, 1], &mut out.view_mut(), &mut StdRng::seed_from_u64(0));
    }
}
