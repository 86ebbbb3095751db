use super::*;
use crate::engine::nn::OptimizerConfig;
use ndarray::Array2;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// `n` grey images of `d` pixels drawn around 4 random binary prototypes over 40% of the pixels:
/// a prototype's pixels have grey level 0.9, the others 0.05.
pub(crate) fn prototypes(n: usize, d: usize, seed: u64) -> Array2<f32> {
    let masks = crate::engine::data::prototype_masks(4, d, 0.4, &mut StdRng::seed_from_u64(seed));
    crate::engine::data::prototype_images(masks.view(), n, 0.9, 0.05)
}

fn small(epochs: usize, seed: u64) -> (VaeConfig, TrainConfig) {
    let mut train = TrainConfig::anchor(epochs, seed);
    train.batch_size = 16;
    train.optimizer = OptimizerConfig::adam(1e-2);
    (VaeConfig::bernoulli(16, vec![12], 2), train)
}

#[test]
fn training_learns_the_prototypes_beyond_independent_pixels() {
    let grey = prototypes(64, 16, 1);
    let (vc, tc) = small(40, 7);
    let mut t = Trainer::new(vc, tc).unwrap();
    let data = TrainSet { x: grey.view(), labels: None, binarize: true };
    let test = grey.mapv(|v| if v > 0.5 { 1.0 } else { 0.0 });
    let history = t.fit(&data, Some((test.view(), None)), |_| {}).unwrap();
    assert_eq!(history.len(), 40);
    // Baseline: the best model with independent pixels, p_d = mean grey level, has expected
    // −log p(x) per example = Σ_d H(p_d) under dynamic binarisation (entropy in nats).
    let h = |p: f64| -(p * p.ln() + (1.0 - p) * (1.0 - p).ln());
    let baseline: f64 = grey.mean_axis(ndarray::Axis(0)).unwrap().iter().map(|&p| h(p as f64)).sum();
    // With the prototype known (2 nats to name one of 4 ≤ rate), each pixel costs only H(0.9) or
    // H(0.05): Σ_d ≈ 16 · 0.26 = 4.2 nats, far below the baseline (≈ 10 nats here).
    let last = history.last().unwrap();
    assert!(
        last.train_loss < baseline,
        "final train loss {} vs independent-pixel baseline {baseline}",
        last.train_loss
    );
    assert!(history[0].train_loss > last.train_loss);
    assert!(last.test.unwrap().elbo.mean > -baseline);
}

#[test]
fn a_one_row_test_set_is_refused_before_training() {
    // The test ELBO's standard error needs two rows: one row is a named error, and no epoch runs.
    let grey = prototypes(8, 16, 1);
    let (vc, tc) = small(1, 7);
    let mut t = Trainer::new(vc, tc).unwrap();
    let data = TrainSet { x: grey.view(), labels: None, binarize: true };
    let e = t.fit(&data, Some((grey.slice(ndarray::s![..1, ..]), None)), |_| {}).unwrap_err();
    assert_eq!(e.to_string(), "a standard error needs at least 2 values, got 1");
    assert_eq!(t.epoch, 0);
}

#[test]
fn same_seed_same_parameters_and_the_last_partial_batch_is_kept() {
    let grey = prototypes(40, 16, 2);
    let data = TrainSet { x: grey.view(), labels: None, binarize: true };
    let run = || {
        let (vc, tc) = small(2, 3);
        let mut t = Trainer::new(vc, tc).unwrap();
        t.fit(&data, None, |_| {}).unwrap();
        t
    };
    let (a, b) = (run(), run());
    assert_eq!(a.vae.params, b.vae.params);
    // 40 rows in batches of 16: 16 + 16 + 8, three steps per epoch.
    assert_eq!(a.step, 6);
}

#[test]
fn an_absurd_learning_rate_stops_with_diverged_naming_epoch_step_and_tensor() {
    let grey = prototypes(64, 16, 3);
    let data = TrainSet { x: grey.view(), labels: None, binarize: true };
    let (vc, mut tc) = small(5, 4);
    tc.optimizer = OptimizerConfig::Sgd { lr: 1e30 };
    let mut t = Trainer::new(vc, tc).unwrap();
    let err = t.fit(&data, None, |_| {}).unwrap_err();
    match &err {
        Error::Diverged { epoch, step, tensor, .. } => {
            // Counted from 1, as the metrics count epochs.
            assert_eq!(*epoch, 1);
            assert!(*step >= 1, "steps count from 1 too");
            assert!(tensor == "loss" || tensor.starts_with("d_"), "{tensor}");
        }
        other => panic!("expected Diverged, got {other}"),
    }
    assert!(err.to_string().starts_with("non-finite "), "{err}");
}

#[test]
fn bad_data_is_a_named_error() {
    let (vc, tc) = small(1, 5);
    let mut t = Trainer::new(vc, tc).unwrap();
    let wide = Array2::<f32>::zeros((4, 15));
    let e = t.train_epoch(&TrainSet { x: wide.view(), labels: None, binarize: true }).unwrap_err();
    assert_eq!(e.to_string(), "shape mismatch in training data columns: expected 16, got 15");
    let mut grey = prototypes(4, 16, 6);
    grey[(2, 3)] = 1.5;
    let e = t.train_epoch(&TrainSet { x: grey.view(), labels: None, binarize: true }).unwrap_err();
    assert_eq!(e.to_string(), "invalid x[2, 3] = 1.5: grey levels must be in [0, 1] to binarise");
    // A NaN, binarised or not; and a strided view (not one block of memory: the other pass).
    let mut nan = prototypes(4, 16, 6);
    nan[(1, 2)] = f32::NAN;
    for binarize in [true, false] {
        let e = t.train_epoch(&TrainSet { x: nan.view(), labels: None, binarize }).unwrap_err();
        assert_eq!(e.to_string(), "non-finite value in x[1, 2] at index 18: NaN");
    }
    let mut wide = Array2::<f32>::zeros((4, 32));
    wide[(2, 6)] = 1.5;
    let strided = wide.slice(ndarray::s![.., ..;2]);
    let e = t.train_epoch(&TrainSet { x: strided, labels: None, binarize: true }).unwrap_err();
    assert_eq!(e.to_string(), "invalid x[2, 3] = 1.5: grey levels must be in [0, 1] to binarise");
    assert!(t.train_epoch(&TrainSet { x: strided, labels: None, binarize: false }).is_ok());
}

#[test]
fn a_last_step_that_blows_up_the_parameters_is_diverged_not_a_result() {
    // One epoch of one step (B ≥ N): the step starts from finite parameters, so its loss and
    // gradients are finite, but the update (lr 1e39 overflows f32) leaves infinite parameters.
    // No later step's forward pass would notice: the check after the update must.
    let grey = prototypes(16, 16, 3);
    let data = TrainSet { x: grey.view(), labels: None, binarize: true };
    let test = grey.mapv(|v| if v > 0.5 { 1.0 } else { 0.0 });
    for optimizer in [OptimizerConfig::adam(1e39), OptimizerConfig::Sgd { lr: 1e39 }] {
        let (vc, mut tc) = small(1, 4);
        tc.optimizer = optimizer;
        let mut t = Trainer::new(vc, tc).unwrap();
        let err = t.fit(&data, Some((test.view(), None)), |_| {}).unwrap_err();
        match &err {
            Error::Diverged { epoch, step, tensor, .. } => {
                // Counted from 1, as the metrics count epochs.
                assert_eq!((*epoch, *step), (1, 1), "{err}");
                assert!(!tensor.starts_with("d_") && tensor != "loss", "{err}");
            }
            other => panic!("expected Diverged, got {other}"),
        }
        assert!(err.to_string().contains("at epoch 1, step 1"), "{err}");
        // The diverged epoch is not counted as done.
        assert_eq!(t.epoch, 0);
    }
}

#[test]
fn binary_and_dense_first_layers_give_the_same_loss_curve() {
    // 30 steps of the anchor's model shape (narrower) on binarised data, one batch per epoch so
    // each epoch's loss is one step's. The two paths differ only in the order of the first
    // layer's additions; one step's worst-case relative difference of those sums is
    // 2γ_{D+1} = 2 · 785 u/(1 − 785 u) = 9.4e-5 (u = 2⁻²⁴; Higham eq. 4.4). Every step's loss
    // must agree within that (a dropped or doubled pixel moves the loss by ~1e-2).
    let grey = prototypes(64, 784, 3);
    let data = TrainSet { x: grey.view(), labels: None, binarize: true };
    let curve = |path: InputPath| {
        let mut tc = TrainConfig::anchor(30, 4);
        tc.batch_size = 64;
        let mut t = Trainer::new(VaeConfig::bernoulli(784, vec![100], 5), tc).unwrap();
        t.set_input_path(path);
        let losses: Vec<f64> = (0..30).map(|_| t.train_epoch(&data).unwrap().train_loss).collect();
        (losses, t.ws.used_binary_input())
    };
    let (binary, used_binary) = curve(InputPath::Binary);
    let (dense, used_dense) = curve(InputPath::Dense);
    assert!(used_binary && !used_dense, "paths taken: auto {used_binary}, dense {used_dense}");
    let u = 2f64.powi(-24);
    let tol = 2.0 * 785.0 * u / (1.0 - 785.0 * u);
    let worst = binary.iter().zip(&dense).map(|(a, b)| ((a - b) / b).abs()).fold(0.0, f64::max);
    assert!(worst <= tol, "worst relative gap {worst:e} > {tol:e}\n{binary:?}\n{dense:?}");
    // The curve moved (training happened), so agreeing is not trivial.
    assert!(binary[29] < binary[0] - 10.0, "loss {} → {}", binary[0], binary[29]);
    eprintln!("binary vs dense first layer: worst relative loss gap over 30 steps {worst:e}");
}

#[test]
fn grey_and_dense_inputs_take_the_dense_path_and_the_default_is_auto() {
    let grey = prototypes(32, 16, 5);
    let (vc, tc) = small(1, 6);
    let mut t = Trainer::new(vc, tc).unwrap();
    assert_eq!(t.ws.input_path, InputPath::Auto, "the default path");
    t.set_input_path(InputPath::Dense);
    t.train_epoch(&TrainSet { x: grey.view(), labels: None, binarize: true }).unwrap();
    assert!(!t.ws.used_binary_input(), "Dense reads a binary batch densely");
    t.set_input_path(InputPath::Binary);
    t.train_epoch(&TrainSet { x: grey.view(), labels: None, binarize: false }).unwrap();
    assert!(!t.ws.used_binary_input());
    t.train_epoch(&TrainSet { x: grey.view(), labels: None, binarize: true }).unwrap();
    assert!(t.ws.used_binary_input());
    // These binarised prototypes are ~39% on (0.4 · 0.9 + 0.6 · 0.05): above Auto's threshold.
    t.set_input_path(InputPath::Auto);
    t.train_epoch(&TrainSet { x: grey.view(), labels: None, binarize: true }).unwrap();
    assert!(!t.ws.used_binary_input(), "Auto reads a 39%-on batch densely");
    // A sparse binary set (every pixel off but one per row): Auto takes the on-entries path.
    let mut sparse = Array2::<f32>::zeros((32, 16));
    for r in 0..32 {
        sparse[(r, r % 16)] = 1.0;
    }
    t.train_epoch(&TrainSet { x: sparse.view(), labels: None, binarize: false }).unwrap();
    assert!(t.ws.used_binary_input(), "Auto reads a 6%-on batch by its on-entries");
}
