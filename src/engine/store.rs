//! The trained-model store: a stage of training ("this trainer, `n` more epochs on this data") is
//! trained once per engine version and loaded every time after, bit for bit the same.
//!
//! # What a stage is, and its key
//! [`ModelStore::train_epochs`] trains `n` epochs of [`Trainer::train_epoch`] on a [`TrainSet`].
//! What that produces depends only on the trainer's state when it starts (parameters, Adam's
//! moments and step, the generator, the epoch and step counters, both configurations: the
//! network, the optimiser, the KL schedule and per-batch weights, free bits, batch size, seed),
//! on the data (every value, the labels, whether it is binarised), on `n`, and on the code that
//! trains. The stage's key is the canonical JSON of all of it ([`StageKey`]):
//! - the engine version [`ENGINE_VERSION`];
//! - the VAE and training configurations in full, the data's shape, binarisation and a 128-bit
//!   digest of its values and labels;
//! - the starting epoch and step, and a 128-bit digest of the starting state's checkpoint bytes
//!   (the file [`Trainer::save`] would write: a fresh trainer and a trainer loaded from a previous
//!   stage have the same bytes as the one that trained, so staged training chains from entry to
//!   entry);
//! - `n`.
//!
//! The digests of the data and of the starting state are FNV-1a over 64-bit little-endian words
//! (one multiplication per 8 bytes: the 25 MB of the 8,000 training digits hash in 0.012 s where
//! byte-wise FNV took 0.083 s, measured in a dev build). The entry's file name is a 128-bit FNV-1a
//! hash of that JSON; the JSON itself is stored in the entry and compared, as a string, on load: a
//! hash collision between two configurations cannot return the wrong model (two different starting
//! states would have to collide in the state digest as well, and the configuration and counters of
//! the two still have to agree exactly). These are
//! 128-bit non-cryptographic hashes: they separate accidents, not adversaries (nobody writes into
//! a learner's store on purpose).
//!
//! # Engine version
//! `build.rs` hashes every file under `src/engine/` and `src/base/` (the training code, the seeds,
//! the data loaders), `Cargo.lock` (the versions of the libraries that draw and compute) and the
//! target triple into [`ENGINE_VERSION`]. A hand-bumped constant would be forgotten the first time
//! someone changes an optimiser; the hash cannot be. It also changes for a comment, which only
//! costs a retraining.
//!
//! # Entries
//! An entry is a full checkpoint ([`crate::engine::checkpoint`]: the same serialiser, checksum and
//! finiteness checks) of the trainer after the stage, with one more metadata entry, `store`: the
//! key's JSON and the stage's per-epoch metrics (every `f64` as its bits, so the replayed metrics
//! are exactly the trained ones). Loading checks the file as every checkpoint is checked, then that
//! the stored key is the requested one and that the configurations are the caller's; anything else
//! (missing, truncated, a flipped bit, a NaN, another engine version or configuration under the same
//! name) is retrained and the entry replaced, never trusted.
//!
//! # Where
//! [`ModelStore::from_env`]: the folder named by the environment variable `VAELAB_MODEL_STORE` if
//! it is set and not empty, otherwise `build/models/` under the crate's root (fixed at compile
//! time from `CARGO_MANIFEST_DIR`). Per checkout rather than the platform's cache folder: two
//! checkouts of different versions never share entries (the engine version would keep them apart,
//! but the folder keeps them from piling up), `make clean` wipes it with the rest of `build/`, and
//! `.gitignore` already ignores `/build`. CI, or a test that needs an empty store, sets the
//! variable. The crate's own unit tests fall back to a folder under the build's `OUT_DIR` instead
//! (in `target/`), so `cargo test` leaves nothing in `build/models/`. A stage's line names its entry
//! from the crate's root (`loaded from the store: build/models/<file>`), or as
//! `$VAELAB_MODEL_STORE/<file>`, never by the machine's absolute path.
//!
//! # Concurrency
//! Two kernels may ask for the same stage at once: both train and both write the entry through a
//! temporary file of their own (process id and a per-process counter in its name:
//! [`crate::base::io::write_atomically`]) renamed over the entry. A rename is atomic, so a reader sees no entry, one writer's complete file or the other's;
//! the two files have identical bytes (same key, same training), so the last writer wins with no
//! difference.
//!
//! # When the store cannot be written
//! The model is still trained and returned: [`Stage::warning`] holds a one-line reason (an
//! unwritable folder, a full disk), and the stage's [`std::fmt::Display`] line says it was not
//! stored. Training never fails because of the store.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::engine::checkpoint::{decode_store_entry, encode_state, encode_store_entry};
use crate::engine::train::{EpochMetrics, TrainConfig, TrainSet, Trainer};
use crate::engine::vae::VaeConfig;

/// The engine version: a hash of the training code's sources (see the module's documentation).
pub const ENGINE_VERSION: &str = env!("VAELAB_ENGINE_VERSION");

/// The environment variable that overrides the store's folder.
pub const STORE_ENV: &str = "VAELAB_MODEL_STORE";

/// The default folder: `build/models/` under the crate's root.
pub const DEFAULT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/build/models");

/// The folder [`ModelStore::from_env`] falls back to: [`DEFAULT_DIR`], except in this crate's unit
/// tests, whose stages go to a folder of their own under the build's `OUT_DIR` (in `target/`), never
/// into the checkout's `build/models/`.
fn default_dir() -> &'static str {
    #[cfg(test)]
    {
        concat!(env!("OUT_DIR"), "/test-models")
    }
    #[cfg(not(test))]
    {
        DEFAULT_DIR
    }
}

/// 128-bit FNV-1a, fed bytes ([`Self::bytes`], the published algorithm) or 64-bit words
/// ([`Self::words`]: the same step, `h = (h ⊕ w)·p`, with a whole little-endian word in place of
/// one byte: 8 times fewer 128-bit multiplications, which is what hashing tens of megabytes of
/// training data costs).
#[derive(Clone, Copy, Debug)]
struct Fnv128(u128);

impl Fnv128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;

    fn new() -> Self {
        Fnv128(Self::OFFSET)
    }

    fn bytes(mut self, bytes: &[u8]) -> Self {
        for &b in bytes {
            self.0 = (self.0 ^ b as u128).wrapping_mul(Self::PRIME);
        }
        self
    }

    /// One step per 64-bit word. Each step is a bijection of the state (XOR with the word, then
    /// multiplication by an odd prime modulo 2^128), so two inputs of the same length that differ
    /// in one word always have different digests.
    fn words(mut self, words: impl IntoIterator<Item = u64>) -> Self {
        for w in words {
            self.0 = (self.0 ^ w as u128).wrapping_mul(Self::PRIME);
        }
        self
    }

    /// `bytes` as little-endian 64-bit words (the last one zero-padded), then its length: the
    /// length word keeps `[1]` and `[1, 0]` apart.
    fn bytes_wordwise(self, bytes: &[u8]) -> Self {
        let chunks = bytes.chunks_exact(8);
        let tail = chunks.remainder();
        let mut last = [0u8; 8];
        last[..tail.len()].copy_from_slice(tail);
        let tail_word = (!tail.is_empty()).then(|| u64::from_le_bytes(last));
        self.words(chunks.map(|c| u64::from_le_bytes(c.try_into().expect("8-byte chunk"))))
            .words(tail_word)
            .words([bytes.len() as u64])
    }

    /// A field: its length, then its bytes (so that field boundaries cannot shift).
    fn field(self, bytes: &[u8]) -> Self {
        self.bytes(&(bytes.len() as u64).to_le_bytes()).bytes(bytes)
    }

    fn hex(self) -> String {
        format!("{:032x}", self.0)
    }
}

/// What the data of a stage is, as the key records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFingerprint {
    /// Rows N.
    pub rows: usize,
    /// Columns D.
    pub cols: usize,
    /// Dynamic binarisation.
    pub binarize: bool,
    /// 128-bit FNV-1a over 64-bit words (hex) of every value's `f32` bits, in row-major order,
    /// two values to a word.
    pub values: String,
    /// 128-bit FNV-1a over 64-bit words (hex) of the labels, if any, one label to a word.
    pub labels: Option<String>,
}

impl DataFingerprint {
    /// The fingerprint of `data`.
    pub fn of(data: &TrainSet) -> Self {
        // Row-major order whatever the view's layout (a contiguous view is read as one slice),
        // two values to a word; an odd last value fills the low half of a last word (the rows
        // and columns, recorded beside the digest, fix where the values end).
        fn pairs(mut it: impl Iterator<Item = f32>) -> impl Iterator<Item = u64> {
            std::iter::from_fn(move || {
                let lo = it.next()?.to_bits() as u64;
                Some(lo | it.next().map_or(0, |hi| (hi.to_bits() as u64) << 32))
            })
        }
        let h = match data.x.as_slice() {
            Some(all) => Fnv128::new().words(pairs(all.iter().copied())),
            None => Fnv128::new().words(pairs(data.x.iter().copied())),
        };
        let labels = data.labels.map(|l| Fnv128::new().words(l.iter().map(|&c| c as u64)).hex());
        DataFingerprint {
            rows: data.x.nrows(),
            cols: data.x.ncols(),
            binarize: data.binarize,
            values: h.hex(),
            labels,
        }
    }
}

/// Everything a stage's result depends on (see the module's documentation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageKey {
    /// [`ENGINE_VERSION`] of the build that trains.
    pub engine: String,
    /// The model.
    pub vae_config: VaeConfig,
    /// The training configuration.
    pub train_config: TrainConfig,
    /// The data.
    pub data: DataFingerprint,
    /// Epochs completed before the stage.
    pub start_epoch: usize,
    /// Steps taken before the stage.
    pub start_step: u64,
    /// 128-bit FNV-1a over 64-bit words (hex) of the starting state's checkpoint bytes.
    pub start_state: String,
    /// Epochs the stage trains.
    pub epochs: usize,
}

impl StageKey {
    /// The canonical serialisation: JSON, fields in declaration order.
    ///
    /// # Errors
    /// `Format` if a configuration cannot be serialised.
    pub fn canonical(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| Error::format("store key", e.to_string()))
    }

    /// The entry's file name: the 128-bit FNV-1a of [`Self::canonical`], in hex, `.safetensors`.
    ///
    /// # Errors
    /// As [`Self::canonical`].
    pub fn file_name(&self) -> Result<String> {
        Ok(format!("{}.safetensors", Fnv128::new().field(self.canonical()?.as_bytes()).hex()))
    }
}

/// One epoch's metrics with every `f64` as its bits (JSON would not promise the last bit).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredEpoch {
    epoch: usize,
    /// train loss, ELBO, rate, distortion, β, seconds.
    bits: [u64; 6],
}

impl StoredEpoch {
    fn of(m: &EpochMetrics) -> Self {
        let v = [m.train_loss, m.train_elbo, m.train_rate, m.train_distortion, m.beta, m.seconds];
        StoredEpoch { epoch: m.epoch, bits: v.map(f64::to_bits) }
    }

    fn metrics(&self) -> EpochMetrics {
        let [train_loss, train_elbo, train_rate, train_distortion, beta, seconds] =
            self.bits.map(f64::from_bits);
        EpochMetrics {
            epoch: self.epoch,
            train_loss,
            train_elbo,
            train_rate,
            train_distortion,
            beta,
            test: None,
            seconds,
        }
    }
}

/// The `store` metadata of an entry.
#[derive(Serialize, Deserialize)]
struct Record {
    /// The key's canonical JSON.
    key: String,
    /// The stage's epochs.
    epochs: Vec<StoredEpoch>,
}

/// Where a stage's model came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Provenance {
    /// Read from the store; nothing was trained.
    Loaded,
    /// Trained: the store had no entry.
    Trained,
    /// Trained: the store's entry was refused (`reason`: corrupt, or stale) and replaced.
    Replaced {
        /// Why the entry was not used, one line.
        reason: String,
    },
}

/// The result of [`ModelStore::train_epochs`].
#[derive(Clone, Debug)]
pub struct Stage {
    /// Loaded or trained.
    pub provenance: Provenance,
    /// The entry's file.
    pub path: PathBuf,
    /// The entry's file as the [`std::fmt::Display`] line names it: under the store's folder as
    /// [`ModelStore::shown`] names it (`build/models/<file>`, not the checkout's absolute path).
    pub shown: String,
    /// The stage's per-epoch metrics (trained now, or as stored).
    pub metrics: Vec<EpochMetrics>,
    /// Why the trained model could not be stored (one line); `None` if it was, or was loaded.
    pub warning: Option<String>,
}

impl Stage {
    /// Whether the model was read from the store (nothing trained).
    pub fn loaded(&self) -> bool {
        self.provenance == Provenance::Loaded
    }
}

impl std::fmt::Display for Stage {
    /// One line: `loaded from the store: <entry>`, or what was trained and where it was stored;
    /// the entry as [`Stage::shown`] names it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.metrics.len();
        let entry = &self.shown;
        match (&self.provenance, &self.warning) {
            (Provenance::Loaded, _) => write!(f, "loaded from the store: {entry}"),
            (_, Some(w)) => write!(f, "trained {n} epochs; not stored ({w})"),
            (Provenance::Trained, None) => write!(f, "trained {n} epochs, stored: {entry}"),
            (Provenance::Replaced { reason }, None) => {
                write!(f, "trained {n} epochs, replaced the store's entry ({reason}): {entry}")
            }
        }
    }
}

/// A folder of trained stages (see the module's documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelStore {
    dir: PathBuf,
    engine: String,
    shown: String,
}

impl ModelStore {
    /// The store in `$VAELAB_MODEL_STORE` if set and not empty (named `$VAELAB_MODEL_STORE` on
    /// the page), else [`DEFAULT_DIR`].
    pub fn from_env() -> Self {
        match std::env::var_os(STORE_ENV) {
            Some(d) if !d.is_empty() => ModelStore { shown: format!("${STORE_ENV}"), ..Self::at(d) },
            _ => Self::at(default_dir()),
        }
    }

    /// The store in `dir` (created when the first entry is written).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        // A folder inside the checkout is named from its root (`build/models`): the line is the
        // same on every machine and no home or temporary folder ends up on a page.
        let shown = match dir.strip_prefix(env!("CARGO_MANIFEST_DIR")) {
            Ok(inside) if !inside.as_os_str().is_empty() => inside.display().to_string(),
            _ => dir.display().to_string(),
        };
        ModelStore { dir, engine: ENGINE_VERSION.to_string(), shown }
    }

    /// The same folder as seen by another engine version (tests: an entry of another build is
    /// not reused).
    pub fn with_engine_version(self, engine: impl Into<String>) -> Self {
        ModelStore { engine: engine.into(), ..self }
    }

    /// The store's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The store's folder as the stage lines name it: relative to the crate's root if inside it
    /// (`build/models`), `$VAELAB_MODEL_STORE` if that variable chose it, else the folder as given.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The key of training `trainer` `epochs` more epochs on `data`.
    ///
    /// # Errors
    /// `NonFinite` if the trainer holds a non-finite value (a diverged run cannot be a key).
    pub fn key(&self, trainer: &Trainer, data: &TrainSet, epochs: usize) -> Result<StageKey> {
        Ok(StageKey {
            engine: self.engine.clone(),
            vae_config: trainer.vae.config.clone(),
            train_config: trainer.config.clone(),
            data: DataFingerprint::of(data),
            start_epoch: trainer.epoch,
            start_step: trainer.step,
            start_state: Fnv128::new().bytes_wordwise(&encode_state(trainer)?).hex(),
            epochs,
        })
    }

    /// Trains `trainer` `epochs` more epochs on `data` ([`Trainer::train_epoch`] each), or loads
    /// the result from the store if this stage was trained before by the same engine version. On
    /// return `trainer` holds the state after the stage, bit for bit the same either way
    /// (parameters, optimiser, generator, counters), and `progress` has been called with each
    /// epoch's metrics: as they are trained, or the stored ones replayed.
    ///
    /// # Errors
    /// As [`Trainer::train_epoch`] (bad data, divergence; the trainer is then in the state the
    /// error describes, nothing is stored); `NonFinite` for a trainer that already diverged. A
    /// store that cannot be read or written is not an error: see [`Stage::warning`].
    pub fn train_epochs(
        &self,
        trainer: &mut Trainer,
        data: &TrainSet,
        epochs: usize,
        progress: &mut dyn FnMut(&EpochMetrics),
    ) -> Result<Stage> {
        data.validate(&trainer.vae)?;
        let key = self.key(trainer, data, epochs)?;
        let canonical = key.canonical()?;
        let file = key.file_name()?;
        let path = self.dir.join(&file);
        let shown = format!("{}/{file}", self.shown.trim_end_matches('/'));
        let refused = match std::fs::read(&path) {
            Ok(bytes) => match self.accept(&bytes, &path, &canonical, trainer) {
                Ok((loaded, metrics)) => {
                    *trainer = loaded;
                    for m in &metrics {
                        progress(m);
                    }
                    return Ok(Stage { provenance: Provenance::Loaded, path, shown, metrics, warning: None });
                }
                Err(reason) => Some(reason),
            },
            // No entry (or no folder yet): nothing to refuse.
            Err(_) if !path.exists() => None,
            Err(e) => Some(Error::io(&path, e).to_string()),
        };
        let mut metrics = Vec::with_capacity(epochs);
        for _ in 0..epochs {
            let m = trainer.train_epoch(data)?;
            progress(&m);
            metrics.push(m);
        }
        let record = Record { key: canonical, epochs: metrics.iter().map(StoredEpoch::of).collect() };
        let warning = serde_json::to_string(&record)
            .map_err(|e| Error::format("store record", e.to_string()))
            .and_then(|r| encode_store_entry(trainer, &r))
            .and_then(|bytes| crate::base::io::write_atomically(&path, &bytes))
            .err()
            .map(|e| e.to_string().replace('\n', " "));
        let provenance = match refused {
            Some(reason) => Provenance::Replaced { reason },
            None => Provenance::Trained,
        };
        Ok(Stage { provenance, path, shown, metrics, warning })
    }

    /// Checks an entry's bytes against the requested key and the caller's trainer; the reason in
    /// one line if refused.
    fn accept(
        &self,
        bytes: &[u8],
        path: &Path,
        canonical: &str,
        trainer: &Trainer,
    ) -> std::result::Result<(Trainer, Vec<EpochMetrics>), String> {
        let (loaded, record) =
            decode_store_entry(bytes, &path.display().to_string()).map_err(|e| format!("corrupt: {e}"))?;
        let record = record.ok_or("stale: the file has no store record")?;
        let record: Record =
            serde_json::from_str(&record).map_err(|e| format!("corrupt: the store record: {e}"))?;
        if record.key != canonical {
            return Err(
                "stale: the entry was trained for another key (engine version, configuration, data or state)"
                    .into(),
            );
        }
        // The key holds both configurations; the checkpoint's own copies must agree with them.
        if loaded.config != trainer.config
            || loaded.vae.config != trainer.vae.config
            || loaded.data != trainer.data
        {
            return Err("stale: the entry's configuration differs from its key".into());
        }
        let metrics: Vec<EpochMetrics> = record.epochs.iter().map(StoredEpoch::metrics).collect();
        let epochs_ok = metrics.len() == loaded.epoch.wrapping_sub(trainer.epoch)
            && metrics.iter().enumerate().all(|(i, m)| m.epoch == trainer.epoch + i + 1);
        if !epochs_ok {
            return Err("corrupt: the entry's epochs do not follow its key".into());
        }
        Ok((loaded, metrics))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv128_matches_the_published_test_vectors() {
        // FNV-1a 128 of "" is the offset basis; of "a" from the reference implementation
        // (http://www.isthe.com/chongo/tech/comp/fnv/, test vectors).
        assert_eq!(Fnv128::new().hex(), "6c62272e07bb014262b821756295c58d");
        assert_eq!(Fnv128::new().bytes(b"a").hex(), "d228cb696f1a8caf78912b704e4a8964");
        assert_eq!(Fnv128::new().bytes(b"foobar").hex(), "343e1662793c64bf6f0d3597ba446f18");
    }

    #[test]
    fn wordwise_fnv_separates_one_word_changes_lengths_and_orders() {
        // One step per word, each step a bijection: any change confined to one word changes the
        // digest (checked here for every single-bit flip of a 3-word input).
        let base = [0x0123_4567_89ab_cdef_u64, 0, u64::MAX];
        let h = Fnv128::new().words(base).0;
        let mut seen = std::collections::HashSet::from([h]);
        for w in 0..3 {
            for bit in 0..64 {
                let mut v = base;
                v[w] ^= 1 << bit;
                assert!(seen.insert(Fnv128::new().words(v).0), "word {w} bit {bit}");
            }
        }
        // Order and zero words count.
        assert_ne!(Fnv128::new().words([1, 2]).0, Fnv128::new().words([2, 1]).0);
        assert_ne!(Fnv128::new().words([0]).0, Fnv128::new().0);
        // Byte strings: the zero padding of the last word cannot make two lengths collide.
        let b = Fnv128::new().bytes_wordwise(&[1]).0;
        assert_ne!(b, Fnv128::new().bytes_wordwise(&[1, 0]).0);
        assert_ne!(b, Fnv128::new().bytes_wordwise(&[1, 0, 0, 0, 0, 0, 0, 0]).0);
        // One step of a word is the byte-wise step with the word in place of the byte.
        assert_eq!(Fnv128::new().words([b'a' as u64]).hex(), Fnv128::new().bytes(b"a").hex());
    }

    #[test]
    fn a_data_fingerprint_ignores_the_layout_and_sees_every_value() {
        use ndarray::{Array2, ShapeBuilder};
        let x = Array2::from_shape_fn((5, 3), |(i, j)| (i * 3 + j) as f32 / 16.0);
        let set = |x: ndarray::ArrayView2<'_, f32>| {
            DataFingerprint::of(&TrainSet { x, labels: None, binarize: true })
        };
        let a = set(x.view());
        // The same values in column-major memory (not a contiguous row-major slice).
        let mut fortran = Array2::zeros(x.raw_dim().f());
        fortran.assign(&x);
        assert!(fortran.as_slice().is_none());
        assert_eq!(set(fortran.view()), a);
        // An odd count (15 values): the last value is hashed too.
        let mut y = x.clone();
        y[(4, 2)] = 0.5;
        assert_ne!(set(y.view()).values, a.values);
        let labels = [0, 1, 2, 3, 4];
        let with =
            |l: &[usize]| DataFingerprint::of(&TrainSet { x: x.view(), labels: Some(l), binarize: true });
        assert_ne!(with(&labels).labels, with(&[0, 1, 2, 4, 3]).labels);
    }

    #[test]
    fn unit_tests_store_outside_the_checkouts_build_folder() {
        if std::env::var_os(STORE_ENV).is_none_or(|d| d.is_empty()) {
            let store = ModelStore::from_env();
            assert!(!store.dir().starts_with(DEFAULT_DIR), "{}", store.dir().display());
        }
        assert_eq!(ModelStore::at(DEFAULT_DIR).shown(), "build/models");
    }

    #[test]
    fn stored_metrics_replay_bit_for_bit() {
        let m = EpochMetrics {
            epoch: 3,
            train_loss: 0.1 + 0.2,
            train_elbo: -f64::MIN_POSITIVE,
            train_rate: 1.0 / 3.0,
            train_distortion: 123.456_789_012_345_67,
            beta: 1e-300,
            test: None,
            seconds: 0.0,
        };
        let json = serde_json::to_string(&StoredEpoch::of(&m)).unwrap();
        let back: StoredEpoch = serde_json::from_str(&json).unwrap();
        assert_eq!(back.metrics(), m);
        assert_eq!(back.metrics().train_elbo.to_bits(), m.train_elbo.to_bits());
    }
}
