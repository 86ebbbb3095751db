//! How many threads the heavy kernels use, and the one place that splits a matrix product across
//! them.
//!
//! The default is **1 thread**: nothing is spawned, and every result is the same as a plain
//! [`general_mat_mul`]. [`set_threads`] (the CLI's `--threads`) raises it; a product is then cut
//! into `threads` blocks of columns (or rows) of its output, each computed (by matrixmultiply or
//! by [`crate::base::sgemm`]) on a rayon worker. Every output element is still one dot product in the same
//! order, so the results do not depend on the thread count. The `f32` products where it measured
//! faster ([`sgemm::pays`](crate::base::sgemm::pays)) go to [`crate::base::sgemm`], which gives
//! matrixmultiply's bits.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use ndarray::linalg::general_mat_mul;
use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2, Axis, NdFloat};

use crate::base::error::{Error, Result};

static THREADS: AtomicUsize = AtomicUsize::new(1);

/// Products below this many multiply-adds are not split (a split costs a few microseconds).
const SPLIT_MIN_MACS: usize = 1 << 20;

/// Whether this process's global rayon pool has been built (by [`set_threads`]).
static POOL_BUILT: Mutex<bool> = Mutex::new(false);

/// The largest thread count [`set_threads`] accepts: 4 × the machine's available parallelism
/// (1 when it cannot be read), and never more than 256. More threads than that only add overhead,
/// and an unbounded count would spawn threads until the system refuses.
pub fn max_threads() -> usize {
    cores().saturating_mul(4).min(256)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Threads the kernels may use (1 unless [`set_threads`] was called).
pub fn threads() -> usize {
    THREADS.load(Ordering::Relaxed)
}

/// Lets the kernels use `threads` threads (the CLI's `--threads`). The rayon pool is built on the
/// first call with more than one thread and keeps its size (a later, larger count splits the work
/// finer but runs it on the pool's threads).
///
/// # Errors
/// `InvalidParameter` for 0 threads, for more than [`max_threads`], and when the system refuses
/// to start the pool's threads (the count is then left as it was).
pub fn set_threads(threads: usize) -> Result<()> {
    if threads == 0 {
        return Err(Error::invalid("threads", 0, "must be >= 1"));
    }
    let max = max_threads();
    if threads > max {
        return Err(Error::invalid(
            "threads",
            threads,
            format!("must be at most {max} (4 × the {} available cores, at most 256)", cores()),
        ));
    }
    if threads > 1 {
        let mut built = POOL_BUILT.lock().unwrap_or_else(|e| e.into_inner());
        if !*built {
            match rayon::ThreadPoolBuilder::new().num_threads(threads).build_global() {
                Ok(()) => {}
                // Someone else built the global pool first: it keeps its size.
                Err(e) if e.to_string().contains("already been initialized") => {}
                Err(e) => {
                    return Err(Error::invalid(
                        "threads",
                        threads,
                        format!("could not start the threads: {e}"),
                    ));
                }
            }
            *built = true;
        }
    }
    THREADS.store(threads, Ordering::Relaxed);
    Ok(())
}

/// C ← α A B + β C, split across [`threads`] blocks of C's columns (or rows, when C is taller than
/// wide) when the product is large enough.
///
/// # Shapes
/// `a`: `M × K`, `b`: `K × N`, `c`: `M × N`.
#[track_caller]
pub fn gemm<F: NdFloat>(alpha: F, a: &ArrayView2<F>, b: &ArrayView2<F>, beta: F, c: &mut ArrayViewMut2<F>) {
    // Already on a worker (e.g. one chunk of a parallel evaluation): do not split again.
    let parts = if rayon::current_thread_index().is_some() { 1 } else { threads() };
    gemm_split(parts, alpha, a.view(), b.view(), beta, c.view_mut());
}

/// C ← bias + A B with the bias added to every row of C: the bits of filling C's rows with
/// `bias` and then [`gemm`] with β = 1. Where the product stays on one thread and
/// [`sgemm::pays`](crate::base::sgemm::pays), the kernel reads the bias itself
/// ([`crate::base::sgemm::gemm_bias`]) instead of a pass filling C first.
///
/// # Shapes
/// `a`: `M × K`, `b`: `K × N`, `bias`: `N`, `c`: `M × N`.
#[track_caller]
pub fn gemm_bias<F: NdFloat>(
    a: &ArrayView2<F>,
    b: &ArrayView2<F>,
    bias: &ArrayView1<F>,
    c: &mut ArrayViewMut2<F>,
) {
    let parts = if rayon::current_thread_index().is_some() { 1 } else { threads() };
    if (parts <= 1 || !splits(c.dim(), a.ncols()))
        && crate::base::sgemm::pays(a, b)
        && crate::base::sgemm::gemm_bias(a, b, bias, c)
    {
        return;
    }
    for mut row in c.outer_iter_mut() {
        row.assign(bias);
    }
    gemm(F::one(), a, b, F::one(), c);
}

/// Whether [`gemm_split`] cuts an `m × n` product over k with more than one part.
fn splits((m, n): (usize, usize), k: usize) -> bool {
    !(m * n * k < SPLIT_MIN_MACS || (m < 32 && n < 32))
}

fn gemm_split<F: NdFloat>(
    parts: usize,
    alpha: F,
    a: ArrayView2<F>,
    b: ArrayView2<F>,
    beta: F,
    mut c: ArrayViewMut2<F>,
) {
    let (m, n) = c.dim();
    if parts <= 1 || !splits((m, n), a.ncols()) {
        let own = crate::base::sgemm::pays(&a, &b) && crate::base::sgemm::gemm(alpha, &a, &b, beta, &mut c);
        if !own {
            general_mat_mul(alpha, &a, &b, beta, &mut c);
        }
        return;
    }
    let left = parts / 2;
    // Cut at a multiple of 16 so both halves keep whole micro-kernel panels.
    let cut = |len: usize| (((len * left / parts) + 8) / 16 * 16).clamp(1, len - 1);
    if n >= m {
        let mid = cut(n);
        let (b0, b1) = b.split_at(Axis(1), mid);
        let (c0, c1) = c.split_at(Axis(1), mid);
        rayon::join(
            || gemm_split(left, alpha, a, b0, beta, c0),
            || gemm_split(parts - left, alpha, a, b1, beta, c1),
        );
    } else {
        let mid = cut(m);
        let (a0, a1) = a.split_at(Axis(0), mid);
        let (c0, c1) = c.split_at(Axis(0), mid);
        rayon::join(
            || gemm_split(left, alpha, a0, b, beta, c0),
            || gemm_split(parts - left, alpha, a1, b, beta, c1),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// Before the cap, any count was passed to rayon: 2^64 − 1 spawned threads without bound.
    #[test]
    fn thread_counts_above_the_cap_are_refused_with_one_line() {
        let max = max_threads();
        assert!((4..=256).contains(&max), "{max}");
        for n in [max + 1, usize::MAX] {
            let e = set_threads(n).unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid threads = {n}: must be at most {max}")), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn split_product_equals_the_plain_product_bit_for_bit() {
        // Each output element is the same dot product whichever block computes it.
        let a = Array2::from_shape_fn((130, 200), |(i, j)| ((i * 7 + j * 3) % 11) as f32 - 5.0);
        let b = Array2::from_shape_fn((200, 300), |(i, j)| ((i * 5 + j) % 13) as f32 * 0.25);
        let mut plain = Array2::from_elem((130, 300), 1.0f32);
        general_mat_mul(1.0, &a, &b, 0.5, &mut plain);
        for parts in [2, 3] {
            for (aa, bb, cc) in [(a.view(), b.view(), (130, 300)), (b.t(), a.t(), (300, 130))] {
                let mut split = Array2::from_elem(cc, 1.0f32);
                gemm_split(parts, 1.0, aa, bb, 0.5, split.view_mut());
                let expected = if cc == (130, 300) { plain.clone() } else { plain.t().to_owned() };
                assert_eq!(split, expected, "{parts} parts, output {cc:?}");
            }
        }
    }
}
