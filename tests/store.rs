//! The trained-model store (`vaelab::engine::store`): both paths (train and store, load) on a tiny
//! model in a temporary folder; what is refused and retrained (corrupt, truncated, NaN, another
//! engine version, another configuration or data, a colliding file name); an unwritable folder.

use ndarray::Array2;
use rand::{Rng, SeedableRng, rngs::StdRng};
use vaelab::engine::nn::{Optimizer, OptimizerConfig, Parameters};
use vaelab::engine::store::{ModelStore, Provenance};
use vaelab::engine::train::{EpochMetrics, TrainConfig, TrainSet, Trainer};
use vaelab::engine::vae::VaeConfig;

/// 48 grey 16-pixel images around 3 seeded prototypes.
fn grey(seed: u64) -> Array2<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let protos: Vec<Vec<bool>> =
        (0..3).map(|_| (0..16).map(|_| rng.random::<f64>() < 0.4).collect()).collect();
    Array2::from_shape_fn((48, 16), |(i, j)| if protos[i % 3][j] { 0.9 } else { 0.05 })
}

fn trainer(lr: f64) -> Trainer {
    let mut tc = TrainConfig::anchor(100, 3);
    tc.batch_size = 16;
    tc.optimizer = OptimizerConfig::adam(lr);
    Trainer::new(VaeConfig::bernoulli(16, vec![12], 2), tc).unwrap()
}

/// Every bit of the state training continues from, and of the model.
fn state(t: &Trainer) -> (Vec<u32>, Vec<u32>, u64, usize, u64, String) {
    let p = &t.vae.params;
    let params = (0..p.tensor_count()).flat_map(|i| p.tensor(i).iter().map(|v| v.to_bits())).collect();
    let Optimizer::Adam(a) = &t.optimizer else { panic!("Adam expected") };
    let moments = a.m.iter().chain(&a.v).flat_map(|m| m.iter().map(|v| v.to_bits())).collect();
    (params, moments, a.step, t.epoch, t.step, serde_json::to_string(&t.rng).unwrap())
}

fn run(
    store: &ModelStore,
    t: &mut Trainer,
    x: &Array2<f32>,
    epochs: usize,
) -> (vaelab::engine::store::Stage, Vec<EpochMetrics>) {
    let set = TrainSet { x: x.view(), labels: None, binarize: true };
    let mut seen = Vec::new();
    let stage = store.train_epochs(t, &set, epochs, &mut |m| seen.push(m.clone())).unwrap();
    (stage, seen)
}

#[test]
fn the_first_call_trains_and_stores_the_second_loads_the_same_bits() {
    let dir = tempfile::tempdir().unwrap();
    let store = ModelStore::at(dir.path().join("models"));
    let x = grey(1);
    let mut first = trainer(1e-2);
    let (stage, seen) = run(&store, &mut first, &x, 3);
    assert_eq!(stage.provenance, Provenance::Trained);
    assert!(stage.path.exists() && stage.warning.is_none(), "{stage}");
    assert_eq!((seen.len(), first.epoch), (3, 3));
    assert_eq!(stage.metrics, seen);

    let mut second = trainer(1e-2);
    let (again, replayed) = run(&store, &mut second, &x, 3);
    assert_eq!(again.provenance, Provenance::Loaded);
    // The line names the entry under the store's folder as given (here a temporary folder outside
    // the checkout); inside the checkout it is named from the crate's root.
    assert_eq!(again.to_string(), format!("loaded from the store: {}", stage.path.display()));
    assert_eq!(again.shown, stage.path.display().to_string());
    assert_eq!(again.path, stage.path);
    // Nothing trained: the metrics are the stored ones, every bit (seconds included).
    assert_eq!(replayed, seen);
    assert!(state(&second) == state(&first), "the loaded trainer differs from the trained one");

    // Staged training chains: a second stage after a loaded first stage is the stage after the
    // trained one, and both equal six epochs without the store.
    let (s2, _) = run(&store, &mut second, &x, 3);
    assert_eq!(s2.provenance, Provenance::Trained);
    let (s2b, _) = run(&store, &mut first, &x, 3);
    assert_eq!((s2b.provenance, s2b.path), (Provenance::Loaded, s2.path));
    let mut plain = trainer(1e-2);
    let set = TrainSet { x: x.view(), labels: None, binarize: true };
    for _ in 0..6 {
        plain.train_epoch(&set).unwrap();
    }
    assert!(state(&plain) == state(&first) && state(&plain) == state(&second));
    let files: Vec<_> = std::fs::read_dir(store.dir()).unwrap().map(|f| f.unwrap().file_name()).collect();
    assert_eq!(files.len(), 2, "one file per stage, no temporary file left: {files:?}");
}

/// Trains once, corrupts the entry with `damage`, and checks that the next call retrains (with the
/// same bits as the first training) and replaces the entry with a good one.
fn refused_and_replaced(damage: impl Fn(&mut Vec<u8>), expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let store = ModelStore::at(dir.path());
    let x = grey(2);
    let mut t = trainer(1e-2);
    let (stage, seen) = run(&store, &mut t, &x, 2);
    let good = std::fs::read(&stage.path).unwrap();
    let mut bad = good.clone();
    damage(&mut bad);
    assert_ne!(bad, good);
    std::fs::write(&stage.path, &bad).unwrap();

    let mut u = trainer(1e-2);
    let (again, metrics) = run(&store, &mut u, &x, 2);
    let Provenance::Replaced { reason } = &again.provenance else {
        panic!("a damaged entry was used: {:?}", again.provenance)
    };
    assert!(reason.contains(expect), "{reason}");
    assert!(!reason.contains('\n'), "{reason}");
    assert!(state(&u) == state(&t));
    // Retrained metrics equal the first training's except the wall-clock seconds.
    let strip =
        |m: &[EpochMetrics]| m.iter().map(|m| EpochMetrics { seconds: 0.0, ..m.clone() }).collect::<Vec<_>>();
    assert_eq!(strip(&metrics), strip(&seen));
    // Replaced by a good entry: the next call loads.
    let (third, _) = run(&store, &mut trainer(1e-2), &x, 2);
    assert_eq!(third.provenance, Provenance::Loaded);
}

#[test]
fn a_flipped_byte_is_retrained() {
    refused_and_replaced(
        |b| {
            let at = b.len() - 5;
            b[at] ^= 0x10;
        },
        "corrupt",
    );
}

#[test]
fn a_truncated_entry_is_retrained() {
    refused_and_replaced(|b| b.truncate(b.len() / 2), "corrupt");
}

#[test]
fn a_nan_in_an_entry_is_retrained() {
    // The last 4 bytes are the last value of the last tensor: a NaN (checksum and finiteness both refuse it).
    refused_and_replaced(
        |b| {
            let n = b.len();
            b[n - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
        },
        "corrupt",
    );
}

#[test]
fn another_engine_version_or_configuration_or_data_is_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let store = ModelStore::at(dir.path());
    let x = grey(3);
    let (first, _) = run(&store, &mut trainer(1e-2), &x, 2);
    assert_eq!(first.provenance, Provenance::Trained);
    let other_engine = store.clone().with_engine_version("another build");
    let (s, _) = run(&other_engine, &mut trainer(1e-2), &x, 2);
    assert_eq!(s.provenance, Provenance::Trained);
    assert_ne!(s.path, first.path);
    for (what, stage) in [
        ("learning rate", run(&store, &mut trainer(2e-2), &x, 2).0),
        ("epochs", run(&store, &mut trainer(1e-2), &x, 1).0),
        ("data", run(&store, &mut trainer(1e-2), &grey(4), 2).0),
    ] {
        assert_eq!(stage.provenance, Provenance::Trained, "{what}");
        assert_ne!(stage.path, first.path, "{what}");
    }
    let set = TrainSet { x: x.view(), labels: None, binarize: false };
    let s = store.train_epochs(&mut trainer(1e-2), &set, 2, &mut |_| {}).unwrap();
    assert_eq!(s.provenance, Provenance::Trained, "binarisation");

    // A colliding file name: another key's entry under this key's name is refused (stale).
    let mut t = trainer(3e-2);
    let key = store.key(&t, &TrainSet { x: x.view(), labels: None, binarize: true }, 2).unwrap();
    std::fs::copy(&first.path, store.dir().join(key.file_name().unwrap())).unwrap();
    let (s, _) = run(&store, &mut t, &x, 2);
    let Provenance::Replaced { reason } = s.provenance else { panic!("{:?}", s.provenance) };
    assert!(reason.starts_with("stale"), "{reason}");
}

#[test]
fn an_unwritable_store_still_returns_the_trained_model_with_a_one_line_warning() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the store's folder should be: nothing can be created under it.
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, b"x").unwrap();
    let store = ModelStore::at(blocker.join("models"));
    let x = grey(5);
    let mut t = trainer(1e-2);
    let (stage, seen) = run(&store, &mut t, &x, 2);
    assert_eq!((stage.provenance.clone(), seen.len(), t.epoch), (Provenance::Trained, 2, 2));
    let w = stage.warning.clone().expect("a warning");
    assert!(!w.contains('\n') && stage.to_string().contains("not stored"), "{stage}");
    let mut plain = trainer(1e-2);
    let set = TrainSet { x: x.view(), labels: None, binarize: true };
    plain.train_epoch(&set).unwrap();
    plain.train_epoch(&set).unwrap();
    assert!(state(&plain) == state(&t));
}

#[test]
fn bad_data_is_a_typed_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = ModelStore::at(dir.path());
    let mut x = grey(6);
    x[(3, 4)] = 1.5;
    let set = TrainSet { x: x.view(), labels: None, binarize: true };
    let e = store.train_epochs(&mut trainer(1e-2), &set, 1, &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("x[3, 4]"), "{e}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn the_default_store_is_build_models_under_the_crate() {
    assert!(vaelab::engine::store::DEFAULT_DIR.ends_with("/build/models"));
    assert!(std::path::Path::new(vaelab::engine::store::DEFAULT_DIR).starts_with(env!("CARGO_MANIFEST_DIR")));
    assert_eq!(vaelab::engine::store::ENGINE_VERSION.len(), 16);
    // The page names it from the crate's root, not by this machine's absolute path.
    assert_eq!(ModelStore::at(vaelab::engine::store::DEFAULT_DIR).shown(), "build/models");
    let nested = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("build/other");
    assert_eq!(ModelStore::at(nested).shown(), "build/other");
}
