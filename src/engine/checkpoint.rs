//! Checkpoints: a training run's full state in one safetensors file, written atomically.
//!
//! Layout (format `vaelab-checkpoint`, version 1):
//! - tensors, all `f32`, little-endian: `params/<name>` for every parameter tensor
//!   (`params/trunk.0.weight`, …, and for a learned mixture prior `params/prior.logits`,
//!   `params/prior.means`, `params/prior.log_vars`), and for Adam `adam_m/<name>`, `adam_v/<name>`;
//! - metadata (string → string): `format`, `version`, `vae_config` and `train_config` (JSON),
//!   `epoch`, `step`, `adam_step`, `rng` (the ChaCha8 generator's state as JSON), and `data`
//!   ([`Trainer::data`], what the model was trained on, as its caller described it; files written
//!   before it have none: the data is unknown), and in a trained-model store's entries only,
//!   `store` ([`crate::engine::store`]: the stage's full key and its per-epoch metrics, JSON).
//!
//! A weights-only file ([`Trainer::save_weights`]) has no `adam_m/…`, `adam_v/…` tensors and no
//! `adam_step`: [`load_checkpoint`] and [`load_model`] read it (to evaluate or sample), and
//! [`Trainer::load`], which resumes training, refuses it in one line.
//!
//! The header's keys are written sorted, so the same state always gives the same bytes.
//!
//! `checksum` (`fnv1a64:` and 16 hex digits) is a 64-bit FNV-1a over every other metadata entry
//! and every tensor's name, dtype, shape and bytes: a flipped bit anywhere is refused on load.
//! Files written before the checksum have no such key and still load, unchecked.
//!
//! Loading checks the format name, the version, that every metadata key is known, the checksum
//! (if present), every tensor's presence, dtype and shape, and that every value is finite: a
//! corrupt or mismatched file is a typed one-line [`Error`], never a panic or a NaN model.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use rand_chacha::ChaCha8Rng;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::base::error::{Error, Result};
use crate::engine::nn::{Optimizer, Parameters};
use crate::engine::train::{TrainConfig, Trainer};
use crate::engine::vae::{Vae, VaeConfig};

/// The format name stored in every checkpoint.
pub const FORMAT: &str = "vaelab-checkpoint";
/// The version this crate writes and reads.
pub const VERSION: u32 = 1;

fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn non_finite_tensor(name: &str, index: usize, value: f32) -> Error {
    Error::NonFinite { name: format!("checkpoint tensor {name}"), index, value: value as f64 }
}

/// 64-bit FNV-1a, continued from `hash` over `bytes`.
fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

/// The `checksum` metadata value: FNV-1a 64 over every other metadata entry (sorted by key) and
/// every tensor (sorted by name: name, dtype, shape, bytes), each field preceded by its length.
fn checksum<'a>(
    meta: impl IntoIterator<Item = (&'a str, &'a str)>,
    tensors: impl IntoIterator<Item = (&'a str, Dtype, &'a [usize], &'a [u8])>,
) -> String {
    let field = |h: u64, bytes: &[u8]| fnv1a(fnv1a(h, &(bytes.len() as u64).to_le_bytes()), bytes);
    let mut meta: Vec<_> = meta.into_iter().filter(|(k, _)| *k != CHECKSUM_KEY).collect();
    meta.sort_unstable();
    let mut tensors: Vec<_> = tensors.into_iter().collect();
    tensors.sort_unstable_by_key(|t| t.0);
    let mut h = 0xcbf2_9ce4_8422_2325;
    for (k, v) in meta {
        h = field(field(h, k.as_bytes()), v.as_bytes());
    }
    for (name, dtype, shape, data) in tensors {
        h = field(field(h, name.as_bytes()), format!("{dtype:?}").as_bytes());
        let dims: Vec<u8> = shape.iter().flat_map(|&d| (d as u64).to_le_bytes()).collect();
        h = field(field(h, &dims), data);
    }
    format!("fnv1a64:{h:016x}")
}

/// The metadata key of the checksum.
const CHECKSUM_KEY: &str = "checksum";
/// The metadata key of the training data's description.
const DATA_KEY: &str = "data";
/// The metadata key of a store entry's record ([`crate::engine::store`]).
const STORE_KEY: &str = "store";
/// Every metadata key a checkpoint may hold (the property tests corrupt each of them).
pub const META_KEYS: [&str; 11] = [
    "format",
    "version",
    "vae_config",
    "train_config",
    "epoch",
    "step",
    "adam_step",
    "rng",
    DATA_KEY,
    STORE_KEY,
    CHECKSUM_KEY,
];

fn encode(trainer: &Trainer, edit: impl FnOnce(&mut HashMap<String, String>)) -> Result<Vec<u8>> {
    encode_with(trainer, edit, |_, _| {}, true, false)
}

/// [`encode`] with hooks for tests: `edit` changes the metadata, `edit_tensor` a tensor's bytes
/// (after the finiteness check), and `with_checksum: false` writes a file as before checksums;
/// `weights_only` leaves out the optimiser's state.
fn encode_with(
    trainer: &Trainer,
    edit: impl FnOnce(&mut HashMap<String, String>),
    mut edit_tensor: impl FnMut(&str, &mut [u8]),
    with_checksum: bool,
    weights_only: bool,
) -> Result<Vec<u8>> {
    let json = |what: &str, r: serde_json::Result<String>| r.map_err(|e| Error::format(what, e.to_string()));
    let p = &trainer.vae.params;
    // A diverged trainer is never written (it would replace a good file with NaN).
    if let Some((i, j, v)) = p.first_non_finite() {
        return Err(non_finite_tensor(&format!("params/{}", p.tensor_name(i)), j, v));
    }
    if !weights_only && let Some((moment, i, j, v)) = trainer.optimizer.first_non_finite() {
        return Err(non_finite_tensor(&format!("{moment}/{}", p.tensor_name(i)), j, v));
    }
    let mut names = Vec::new();
    let mut blobs: Vec<(Vec<usize>, Vec<u8>)> = Vec::new();
    for i in 0..p.tensor_count() {
        names.push(format!("params/{}", p.tensor_name(i)));
        blobs.push((p.tensor_shape(i), to_bytes(p.tensor(i))));
    }
    let mut adam_step = 0;
    if let Optimizer::Adam(a) = &trainer.optimizer
        && !weights_only
    {
        adam_step = a.step;
        for (prefix, moments) in [("adam_m", &a.m), ("adam_v", &a.v)] {
            for (i, moment) in moments.iter().enumerate() {
                names.push(format!("{prefix}/{}", p.tensor_name(i)));
                blobs.push((p.tensor_shape(i), to_bytes(moment)));
            }
        }
    }
    let mut meta = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("version".to_string(), VERSION.to_string()),
        ("vae_config".to_string(), json("vae_config", serde_json::to_string(&trainer.vae.config))?),
        ("train_config".to_string(), json("train_config", serde_json::to_string(&trainer.config))?),
        ("epoch".to_string(), trainer.epoch.to_string()),
        ("step".to_string(), trainer.step.to_string()),
        ("adam_step".to_string(), adam_step.to_string()),
        ("rng".to_string(), json("rng", serde_json::to_string(&trainer.rng))?),
    ]);
    if weights_only {
        meta.remove("adam_step");
    }
    if let Some(data) = &trainer.data {
        meta.insert(DATA_KEY.into(), data.clone());
    }
    edit(&mut meta);
    for (n, (_, bytes)) in names.iter().zip(&mut blobs) {
        edit_tensor(n, bytes);
    }
    if with_checksum {
        let sum = checksum(
            meta.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            names
                .iter()
                .zip(&blobs)
                .map(|(n, (shape, bytes))| (n.as_str(), Dtype::F32, &shape[..], &bytes[..])),
        );
        meta.insert(CHECKSUM_KEY.into(), sum);
    }
    let views: Vec<(String, TensorView)> = names
        .into_iter()
        .zip(&blobs)
        .map(|(n, (shape, bytes))| {
            let view = TensorView::new(Dtype::F32, shape.clone(), bytes)
                .map_err(|e| Error::format(&n, e.to_string()))?;
            Ok((n, view))
        })
        .collect::<Result<_>>()?;
    let bytes =
        safetensors::serialize(views, Some(meta)).map_err(|e| Error::format("checkpoint", e.to_string()))?;
    canonical_header(&bytes)
}

/// The same file with its JSON header's keys sorted (the metadata's too), so the same state always
/// gives the same bytes: `safetensors::serialize` writes the metadata in a `HashMap`'s order, which
/// changes from one map to the next. The tensors' data offsets are relative to the end of the
/// header, so the data bytes are copied unchanged.
fn canonical_header(bytes: &[u8]) -> Result<Vec<u8>> {
    let bad = |e: String| Error::format("checkpoint header", e);
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let mut header: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).map_err(|e| bad(e.to_string()))?;
    if let Some(meta) = header.remove("__metadata__") {
        let meta: BTreeMap<String, String> = serde_json::from_value(meta).map_err(|e| bad(e.to_string()))?;
        header.insert("__metadata__".into(), serde_json::to_value(meta).map_err(|e| bad(e.to_string()))?);
    }
    let mut json = serde_json::to_vec(&header).map_err(|e| bad(e.to_string()))?;
    // safetensors aligns the data to 8 bytes with trailing spaces.
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + json.len() + bytes.len() - 8 - n);
    out.extend((json.len() as u64).to_le_bytes());
    out.extend(json);
    out.extend(&bytes[8 + n..]);
    Ok(out)
}

impl Trainer {
    /// Writes the run's full state to `path` (temporary file + rename).
    ///
    /// # Errors
    /// `NonFinite` naming the tensor if a parameter or an Adam moment is NaN or infinite (a
    /// diverged run; nothing is written); `Io` if the file cannot be written.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::base::io::write_atomically(path.as_ref(), &encode(self, |_| {})?)
    }

    /// Writes the model without the optimiser's state (a smaller file that can be evaluated or
    /// sampled with [`load_checkpoint`], but not resumed), atomically.
    ///
    /// # Errors
    /// `NonFinite` naming the tensor if a parameter is NaN or infinite; `Io`.
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        crate::base::io::write_atomically(path.as_ref(), &encode_with(self, |_| {}, |_, _| {}, true, true)?)
    }

    /// Reads a run saved by [`Trainer::save`]; training continues exactly where it stopped.
    ///
    /// # Errors
    /// `Io` (unreadable), `Format` (not a safetensors file, truncated, another format or version,
    /// unknown or missing field, checksum mismatch, missing tensor, wrong dtype, a NaN or an
    /// infinity in a tensor, named; a weights-only file, which has no optimiser state to resume
    /// from), `Shape` (a tensor that does not fit the config).
    pub fn load(path: impl AsRef<Path>) -> Result<Trainer> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        decode(&bytes, &path.display().to_string(), true).map(|(t, _)| t)
    }
}

/// A store entry's bytes: the full checkpoint of `trainer` with the store's record under the
/// `store` metadata key (covered by the checksum like every other entry). Used by
/// [`crate::engine::store`], which writes them atomically.
///
/// # Errors
/// As [`Trainer::save`], without the `Io`.
pub(crate) fn encode_store_entry(trainer: &Trainer, record: &str) -> Result<Vec<u8>> {
    encode(trainer, |m| {
        m.insert(STORE_KEY.into(), record.into());
    })
}

/// The full checkpoint bytes of `trainer` (what [`Trainer::save`] writes): the store digests them
/// as the training state a stage starts from.
///
/// # Errors
/// `NonFinite` for a diverged trainer.
pub(crate) fn encode_state(trainer: &Trainer) -> Result<Vec<u8>> {
    encode(trainer, |_| {})
}

/// Decodes a store entry for resuming: the trainer and the `store` record (`None` if the file has
/// none). `what` names the file in errors.
///
/// # Errors
/// As [`Trainer::load`].
pub(crate) fn decode_store_entry(bytes: &[u8], what: &str) -> Result<(Trainer, Option<String>)> {
    let (trainer, _) = decode(bytes, what, true)?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| Error::format(what, e.to_string()))?;
    let record = header.metadata().as_ref().and_then(|m| m.get(STORE_KEY).cloned());
    Ok((trainer, record))
}

/// A checkpoint read to use its model: evaluate, sample, reconstruct.
#[derive(Debug)]
pub struct Checkpoint {
    /// The model.
    pub vae: Vae<f32>,
    /// How it was trained.
    pub config: TrainConfig,
    /// Epochs it was trained.
    pub epoch: usize,
    /// What it was trained on ([`Trainer::data`]); `None` when the file does not say (written
    /// before checkpoints recorded it, or by a caller that did not set it).
    pub data: Option<String>,
    /// The file holds no optimiser state ([`Trainer::save_weights`]).
    pub weights_only: bool,
}

/// Reads a checkpoint's model, full or weights-only, with what it records of its training.
///
/// # Errors
/// As [`Trainer::load`], except that a weights-only file loads.
pub fn load_checkpoint(path: impl AsRef<Path>) -> Result<Checkpoint> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let (t, weights_only) = decode(&bytes, &path.display().to_string(), false)?;
    Ok(Checkpoint { vae: t.vae, config: t.config, epoch: t.epoch, data: t.data, weights_only })
}

/// Reads only the model (and its training configuration and epoch) from a checkpoint, full or
/// weights-only.
///
/// # Errors
/// As [`load_checkpoint`].
pub fn load_model(path: impl AsRef<Path>) -> Result<(Vae<f32>, TrainConfig, usize)> {
    let c = load_checkpoint(path)?;
    Ok((c.vae, c.config, c.epoch))
}

/// Decodes a checkpoint; `resume` requires the optimiser's state. Returns the trainer and whether
/// the file is weights-only (then the optimiser is freshly initialised).
fn decode(bytes: &[u8], what: &str, resume: bool) -> Result<(Trainer, bool)> {
    let bad = |detail: String| Error::format(what, detail);
    let st =
        SafeTensors::deserialize(bytes).map_err(|e| bad(format!("not a readable safetensors file ({e})")))?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let field = |k: &str| meta.get(k).ok_or_else(|| bad(format!("metadata has no `{k}`")));
    if field("format")? != FORMAT {
        return Err(bad(format!("format `{}` is not `{FORMAT}`", field("format")?)));
    }
    let version = field("version")?;
    if version != &VERSION.to_string() {
        return Err(bad(format!("checkpoint version {version}; this build reads version {VERSION}")));
    }
    if let Some(k) = meta.keys().find(|k| !META_KEYS.contains(&k.as_str())) {
        return Err(bad(format!("unknown metadata key `{}` (a corrupt file?)", k.escape_debug())));
    }
    // Files written before checksums have none; they load unchecked.
    if let Some(stored) = meta.get(CHECKSUM_KEY) {
        let tensors: Vec<_> = st.iter().collect();
        let computed = checksum(
            meta.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            tensors.iter().map(|(n, t)| (*n, t.dtype(), t.shape(), t.data())),
        );
        if *stored != computed {
            return Err(bad(format!(
                "checksum mismatch (stored {}, computed {computed}): the file is corrupt",
                stored.escape_debug()
            )));
        }
    }
    let parse_json = |k: &str| -> Result<serde_json::Value> {
        serde_json::from_str(field(k)?).map_err(|e| bad(format!("`{k}` is not valid JSON: {e}")))
    };
    let vae_config: VaeConfig =
        serde_json::from_value(parse_json("vae_config")?).map_err(|e| bad(format!("`vae_config`: {e}")))?;
    let config: TrainConfig = serde_json::from_value(parse_json("train_config")?)
        .map_err(|e| bad(format!("`train_config`: {e}")))?;
    let number =
        |k: &str| -> Result<u64> { field(k)?.parse().map_err(|_| bad(format!("`{k}` is not a number"))) };
    // Weights only: no optimiser tensors (and no `adam_step`).
    let weights_only = !st.names().iter().any(|n| n.starts_with("adam_"));
    let adam = matches!(config.optimizer, crate::engine::nn::OptimizerConfig::Adam { .. });
    if weights_only && adam && resume {
        return Err(bad(
            "a weights-only checkpoint (no optimiser state): it can be evaluated, but training cannot resume from it"
                .into(),
        ));
    }
    let epoch = number("epoch")? as usize;
    // A model of the right shape (values overwritten below).
    let mut trainer = Trainer::new(vae_config, config)?;
    // The training state: required to resume; a weights-only file may leave it out.
    let (step, rng) = if resume || meta.contains_key("step") || meta.contains_key("rng") {
        let rng: ChaCha8Rng =
            serde_json::from_value(parse_json("rng")?).map_err(|e| bad(format!("`rng`: {e}")))?;
        (number("step")?, rng)
    } else {
        (0, trainer.rng.clone())
    };
    let adam_step = if weights_only && adam { 0 } else { number("adam_step")? };
    let read = |name: &str, shape: &[usize], dst: &mut [f32]| -> Result<()> {
        let t = st.tensor(name).map_err(|_| bad(format!("tensor `{name}` is missing")))?;
        if t.dtype() != Dtype::F32 {
            return Err(bad(format!("tensor `{name}` is {:?}, not F32", t.dtype())));
        }
        if t.shape() != shape {
            return Err(Error::shape(
                format!("checkpoint tensor {name}"),
                format!("{shape:?}"),
                format!("{:?}", t.shape()),
            ));
        }
        for (d, c) in dst.iter_mut().zip(t.data().chunks_exact(4)) {
            *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        if let Some((j, v)) = crate::engine::nn::first_non_finite(dst) {
            return Err(bad(format!("tensor `{name}` holds {v} at index {j}")));
        }
        Ok(())
    };
    let n = trainer.vae.params.tensor_count();
    for i in 0..n {
        let (name, shape) = (trainer.vae.params.tensor_name(i), trainer.vae.params.tensor_shape(i));
        read(&format!("params/{name}"), &shape, trainer.vae.params.tensor_mut(i))?;
    }
    if let Optimizer::Adam(a) = &mut trainer.optimizer
        && !weights_only
    {
        a.step = adam_step;
        for i in 0..n {
            let (name, shape) = (trainer.vae.params.tensor_name(i), trainer.vae.params.tensor_shape(i));
            read(&format!("adam_m/{name}"), &shape, &mut a.m[i])?;
            read(&format!("adam_v/{name}"), &shape, &mut a.v[i])?;
        }
    }
    let (vae, optimizer, config) = (trainer.vae, trainer.optimizer, trainer.config);
    let mut trainer = Trainer::from_parts(vae, optimizer, config, epoch, step, rng);
    trainer.data = meta.get(DATA_KEY).cloned();
    Ok((trainer, weights_only && adam))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::nn::OptimizerConfig;
    use crate::engine::train::TrainSet;

    fn setup(epochs: usize) -> (Trainer, ndarray::Array2<f32>) {
        setup_with(epochs, VaeConfig::bernoulli(16, vec![12], 2))
    }

    fn setup_with(epochs: usize, config: VaeConfig) -> (Trainer, ndarray::Array2<f32>) {
        let grey = crate::engine::train::tests::prototypes(40, 16, 9);
        let mut tc = TrainConfig::anchor(epochs, 11);
        tc.batch_size = 16;
        tc.optimizer = OptimizerConfig::adam(1e-2);
        (Trainer::new(config, tc).unwrap(), grey)
    }

    fn bits(t: &Trainer) -> Vec<u32> {
        let p = &t.vae.params;
        (0..p.tensor_count()).flat_map(|i| p.tensor(i).iter().map(|v| v.to_bits())).collect()
    }

    #[test]
    fn save_load_continue_is_bit_identical_to_not_stopping() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.safetensors");
        let (mut straight, grey) = setup(3);
        let data = TrainSet { x: grey.view(), labels: None, binarize: true };
        straight.fit(&data, None, |_| {}).unwrap();

        let (mut first, _) = setup(3);
        first.train_epoch(&data).unwrap();
        first.save(&path).unwrap();
        drop(first);
        let mut resumed = Trainer::load(&path).unwrap();
        assert_eq!(resumed.epoch, 1);
        resumed.fit(&data, None, |_| {}).unwrap();
        assert_eq!(bits(&resumed), bits(&straight));
        assert_eq!(resumed.optimizer, straight.optimizer);
        assert_eq!(resumed.step, straight.step);
    }

    #[test]
    fn a_learned_mixture_prior_is_trained_saved_and_resumed_bit_identically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mog.safetensors");
        let config = || {
            VaeConfig::bernoulli(16, vec![12], 2)
                .with_prior(crate::engine::vae::LatentPrior::Mixture { components: 3 })
        };
        let (mut straight, grey) = setup_with(3, config());
        let data = TrainSet { x: grey.view(), labels: None, binarize: true };
        let initial = straight.vae.params.prior.mixture().unwrap().clone();
        straight.fit(&data, None, |_| {}).unwrap();
        // Adam moved every prior tensor.
        let trained = straight.vae.params.prior.mixture().unwrap().clone();
        assert!(trained.logits != initial.logits && trained.means != initial.means);
        assert!(trained.log_vars != initial.log_vars);

        let (mut first, _) = setup_with(3, config());
        first.train_epoch(&data).unwrap();
        first.save(&path).unwrap();
        let mut resumed = Trainer::load(&path).unwrap();
        assert_eq!(resumed.vae.params.prior, first.vae.params.prior);
        resumed.fit(&data, None, |_| {}).unwrap();
        assert_eq!(bits(&resumed), bits(&straight));
        assert_eq!(resumed.optimizer, straight.optimizer);
    }

    #[test]
    fn a_checkpoint_written_before_learned_priors_still_loads() {
        // Version-1 files from before the `prior` field: no such key in `vae_config`.
        let (t, _) = setup(1);
        let old = encode(&t, |m| {
            let mut c: serde_json::Value = serde_json::from_str(&m["vae_config"]).unwrap();
            c.as_object_mut().unwrap().remove("prior").unwrap();
            m.insert("vae_config".into(), c.to_string());
        })
        .unwrap();
        let loaded = decode(&old, "old", true).map(|(t, _)| t).unwrap();
        assert_eq!(loaded.vae, t.vae);
    }

    #[test]
    fn corrupt_or_mismatched_files_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (t, _) = setup(1);
        let good = encode(&t, |_| {}).unwrap();

        let truncated = dir.path().join("truncated.safetensors");
        std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
        let e = Trainer::load(&truncated).unwrap_err();
        assert!(matches!(e, Error::Format { .. }), "{e}");

        let future = encode(&t, |m| {
            m.insert("version".into(), "99".into());
        })
        .unwrap();
        let e = decode(&future, "future", true).map(|(t, _)| t).unwrap_err();
        assert_eq!(e.to_string(), "future: checkpoint version 99; this build reads version 1");

        // The config says hidden width 10; the tensors were saved for width 12.
        let narrower = encode(&t, |m| {
            let c = serde_json::to_string(&VaeConfig::bernoulli(16, vec![10], 2)).unwrap();
            m.insert("vae_config".into(), c);
        })
        .unwrap();
        let e = decode(&narrower, "narrow", true).map(|(t, _)| t).unwrap_err();
        assert_eq!(
            e.to_string(),
            "shape mismatch in checkpoint tensor params/trunk.0.weight: expected [16, 10], got [16, 12]"
        );

        let e = Trainer::load(dir.path().join("missing.safetensors")).unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
    }

    #[test]
    fn a_diverged_trainer_is_not_written_over_a_good_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.safetensors");
        let (mut t, _) = setup(1);
        t.save(&path).unwrap();
        let good = std::fs::read(&path).unwrap();
        t.vae.params.tensor_mut(1)[3] = f32::NAN;
        let e = t.save(&path).unwrap_err();
        assert_eq!(
            e.to_string(),
            "non-finite value in checkpoint tensor params/trunk.0.bias at index 3: NaN"
        );
        t.vae.params.tensor_mut(1)[3] = 0.0;
        let Optimizer::Adam(a) = &mut t.optimizer else { unreachable!() };
        a.v[0][5] = f32::INFINITY;
        let e = t.save(&path).unwrap_err();
        assert_eq!(
            e.to_string(),
            "non-finite value in checkpoint tensor adam_v/trunk.0.weight at index 5: inf"
        );
        assert_eq!(std::fs::read(&path).unwrap(), good);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
    }

    #[test]
    fn the_same_state_gives_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (t, _) = setup(1);
        let first = encode(&t, |_| {}).unwrap();
        for _ in 0..5 {
            assert!(encode(&t, |_| {}).unwrap() == first, "metadata written in a different order");
        }
        let (a, b) = (dir.path().join("a.safetensors"), dir.path().join("b.safetensors"));
        t.save(&a).unwrap();
        Trainer::load(&a).unwrap().save(&b).unwrap();
        assert!(
            std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
            "save, load, save changed the bytes"
        );
    }

    #[test]
    fn non_finite_values_in_a_file_are_refused_naming_the_tensor() {
        let (t, _) = setup(1);
        for (with_checksum, value) in [(true, f32::NAN), (false, f32::NEG_INFINITY)] {
            let bytes = encode_with(
                &t,
                |_| {},
                |name, data| {
                    if name == "params/mean_head.bias" {
                        data[4..8].copy_from_slice(&value.to_le_bytes());
                    }
                },
                with_checksum,
                false,
            )
            .unwrap();
            let e = decode(&bytes, "nan.safetensors", true).map(|(t, _)| t).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!("nan.safetensors: tensor `params/mean_head.bias` holds {value} at index 1")
            );
        }
    }

    #[test]
    fn a_flipped_bit_in_the_metadata_or_a_tensor_is_refused_by_the_checksum() {
        let (mut t, grey) = setup(2);
        t.train_epoch(&TrainSet { x: grey.view(), labels: None, binarize: true }).unwrap();
        let good = encode(&t, |_| {}).unwrap();
        assert_eq!(decode(&good, "good", true).map(|(t, _)| t).unwrap().epoch, 1);
        let header_len = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&good[8..header_len]).unwrap();
        // The epoch "1" → "3" (one bit: 0x31 → 0x33), a still-valid number.
        let at = 8 + header.find("\"epoch\":\"1\"").unwrap() + "\"epoch\":\"".len();
        let mut flipped = good.clone();
        flipped[at] ^= 0b10;
        let e = decode(&flipped, "f", true).map(|(t, _)| t).unwrap_err().to_string();
        assert!(e.starts_with("f: checksum mismatch (stored fnv1a64:"), "{e}");
        assert!(e.ends_with("the file is corrupt"), "{e}");
        // Every bit of the last byte of tensor data, and of a byte in the middle.
        for at in [good.len() - 1, (header_len + good.len()) / 2] {
            for bit in 0..8 {
                let mut flipped = good.clone();
                flipped[at] ^= 1 << bit;
                let e = decode(&flipped, "f", true).map(|(t, _)| t).unwrap_err().to_string();
                assert!(e.contains("checksum mismatch") || e.contains("holds"), "byte {at} bit {bit}: {e}");
            }
        }
        // Renaming the checksum's key does not turn the check off.
        let at = 8 + header.find("\"checksum\"").unwrap() + 1;
        let mut flipped = good.clone();
        flipped[at] ^= 0b100;
        let e = decode(&flipped, "f", true).map(|(t, _)| t).unwrap_err().to_string();
        assert_eq!(e, "f: unknown metadata key `ghecksum` (a corrupt file?)");
    }

    #[test]
    fn a_checkpoint_written_before_checksums_still_loads() {
        let (t, _) = setup(1);
        let old = encode_with(&t, |_| {}, |_, _| {}, false, false).unwrap();
        assert!(!String::from_utf8_lossy(&old).contains("checksum"));
        assert_eq!(decode(&old, "old", true).map(|(t, _)| t).unwrap().vae, t.vae);
    }

    #[test]
    fn the_training_data_is_recorded_and_a_file_without_it_says_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.safetensors"), dir.path().join("b.safetensors"));
        let (mut t, _) = setup(1);
        t.data = Some(r#"{"source":"prototypes","seed":3}"#.into());
        t.save(&a).unwrap();
        let c = load_checkpoint(&a).unwrap();
        assert_eq!((c.data.as_deref(), c.weights_only), (t.data.as_deref(), false));
        // Resumed, it keeps the record; saved again, the same bytes.
        Trainer::load(&a).unwrap().save(&b).unwrap();
        assert!(
            std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
            "save, load, save changed the bytes"
        );
        // A file from before the record (no `data` key): unknown.
        t.data = None;
        t.save(&a).unwrap();
        assert!(!String::from_utf8_lossy(&std::fs::read(&a).unwrap()).contains("\"data\""));
        assert_eq!(load_checkpoint(&a).unwrap().data, None);
    }

    #[test]
    fn a_weights_only_file_is_evaluated_but_not_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let (full, weights) = (dir.path().join("full.safetensors"), dir.path().join("w.safetensors"));
        let (mut t, grey) = setup(2);
        t.train_epoch(&TrainSet { x: grey.view(), labels: None, binarize: true }).unwrap();
        t.save(&full).unwrap();
        t.save_weights(&weights).unwrap();
        let bytes = std::fs::read(&weights).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("adam_"), "optimiser state written");
        assert!(bytes.len() < std::fs::read(&full).unwrap().len() / 2);
        let c = load_checkpoint(&weights).unwrap();
        assert!(c.weights_only && c.vae == t.vae && c.epoch == 1);
        assert!(!load_checkpoint(&full).unwrap().weights_only);
        let (vae, _, epoch) = load_model(&weights).unwrap();
        assert!(vae == t.vae && epoch == 1);
        // Resuming needs the optimiser's state: one line that says so.
        let e = Trainer::load(&weights).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}: a weights-only checkpoint (no optimiser state): it can be evaluated, but training cannot resume from it",
                weights.display()
            )
        );
        // Parameters and configurations only (no `step`, `rng`, `adam_step`), as another tool may write.
        let bare = encode_with(
            &t,
            |m| {
                m.remove("step");
                m.remove("rng");
            },
            |_, _| {},
            true,
            true,
        )
        .unwrap();
        let (u, weights_only) = decode(&bare, "bare", false).unwrap();
        assert!(weights_only && u.vae == t.vae);
    }
}
