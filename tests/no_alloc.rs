//! The training step allocates nothing of its own: every heap allocation on the training thread
//! is counted by a wrapper around the system allocator.
//!
//! The only allocations left are matrixmultiply's: each matrix product it computes packs its
//! operands into a buffer it allocates and frees inside the call (ndarray 0.17 / matrixmultiply
//! 0.3 give no way to pass one in). So a step allocates exactly once per matrix product, and the
//! test checks that count, derived from the model below. (The larger products `base::sgemm`
//! takes, `sgemm::pays`, pack into buffers of their thread grown once; the small model below
//! sends none there.)

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use rand::SeedableRng;
use vaelab::engine::data::synthetic_binary;
use vaelab::engine::nn::InputPath;
use vaelab::engine::train::{TrainConfig, TrainSet, Trainer};
use vaelab::engine::vae::VaeConfig;

struct Counting;

thread_local! {
    static COUNT: Cell<Option<usize>> = const { Cell::new(None) };
}

fn note() {
    // `try_with`: the thread-local may be gone while a thread shuts down.
    let _ = COUNT.try_with(|c| {
        if let Some(n) = c.get() {
            c.set(Some(n + 1));
        }
    });
}

// SAFETY: every call forwards to `System` unchanged; the counter only reads and sets a const
// thread-local `Cell`, which allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn counted<T>(f: impl FnOnce() -> T) -> (T, usize) {
    COUNT.with(|c| c.set(Some(0)));
    let out = f();
    let n = COUNT.with(|c| c.replace(None)).expect("counting");
    (out, n)
}

#[test]
fn a_training_step_allocates_only_inside_the_matrix_products() {
    let (b, steps) = (32, 4);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let data = synthetic_binary(b * steps, 784, &mut rng);
    let set = TrainSet { x: data.view(), labels: None, binarize: true };
    // Matrix products of one step of a one-hidden-layer VAE:
    //   forward   trunk 1, mean and log-variance heads 2, decoder 2                         = 5
    //   backward  decoder 2 × (∂W, ∂input) = 4; mean head ∂W, ∂h = 2; log-variance head ∂W
    //             and its ∂h added in place = 2; trunk ∂W only (nobody needs ∂x) = 1           = 9
    // On binary x (the default path) the trunk's forward and ∂W are sums of rows of W and of
    // ∂L/∂h at the on-pixels, not products: 2 fewer, and its index buffers are the workspace's.
    for (path, products_per_step) in [(InputPath::Dense, 5 + 9), (InputPath::Auto, 5 + 9 - 2)] {
        let config = TrainConfig { batch_size: b, ..TrainConfig::anchor(2, 1) };
        let mut trainer = Trainer::new(VaeConfig::bernoulli(784, vec![64], 8), config).unwrap();
        trainer.set_input_path(path);
        // The first epoch sizes the shuffle buffer.
        trainer.train_epoch(&set).unwrap();
        let (metrics, allocations) = counted(|| trainer.train_epoch(&set).unwrap());
        assert!(metrics.train_loss.is_finite());
        assert_eq!(
            allocations,
            steps * products_per_step,
            "{path:?}: heap allocations in {steps} steps (expected one per matrix product)"
        );
    }
}
