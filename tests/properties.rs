//! Property tests (issue 15): every loader and every command that takes user input either returns
//! a valid result with finite numbers or a typed error with a one-line message. It never panics.
//!
//! Generated inputs: model JSON (built from random shapes and number tokens, and shipped model
//! files with random byte edits), checkpoints (random truncations, bit flips, NaN/±inf written
//! into tensor bytes, metadata edits, with and without the checksum), IDX files (random headers
//! and bodies, plain and gzip) and MNIST folders built from them, and `vaelab` argument vectors
//! made of the real option names with random values, parsed by clap and run through the library.
//!
//! Cases: `VAELAB_PROPTEST_CASES` (default: each test's own count, chosen so that the test takes
//! a few seconds at most on one core). The long variant, as in the README:
//!
//! ```text
//! VAELAB_PROPTEST_CASES=100000 cargo test --release --test properties
//! ```
//!
//! The generator's seed is fixed ([`SEED`]), so a CI failure reproduces locally; failures are not
//! persisted to a regressions file (a found case becomes a plain `#[test]` below).
//!
//! Bugs these properties found are plain regression tests at the end, each with its minimal input
//! (all fixed; they run with the rest). Numbers range over all of f64 (subnormals, ±1e300,
//! ±f64::MAX) and sizes up to 2^64 − 1 wherever an argument takes a size; what stays out is named
//! at each strategy (sizes between ~10^9 and 2^63 that a machine cannot hold abort in the
//! allocator, which no in-process test can catch, and long runs that are asked for).

use std::cell::RefCell;
use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Parser as _;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, RngSeed};

use vaelab::cli::{Cli, Command, DataSource, TrainArgs};
use vaelab::engine::data::{load_mnist_dir, read_idx_images, read_idx_labels};
use vaelab::engine::nn::Parameters;
use vaelab::engine::train::Trainer;
use vaelab::engine::vae::LatentPrior;
use vaelab::lessons::toy::{LatentModel, Model};

/// The generator's seed for every property (any fixed value; this one is the issue's number).
const SEED: u64 = 15;

/// The runner's configuration: `default_cases` unless `VAELAB_PROPTEST_CASES` says otherwise, a
/// fixed seed, no failure persistence, and shrinking bounded so a failure reports within seconds.
fn config(default_cases: u32) -> ProptestConfig {
    let cases =
        std::env::var("VAELAB_PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(default_cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(SEED),
        max_shrink_iters: 512,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Panics as values
// ---------------------------------------------------------------------------------------------

thread_local! {
    /// While `Some`, this thread is inside [`no_panic`]: a panic's message and location land here
    /// instead of on stderr.
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f`; a panic becomes `Err("message at file:line:col")`.
fn no_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: OnceLock<()> = OnceLock::new();
    HOOK.get_or_init(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let inside = CAUGHT.with(|c| c.borrow().is_some());
            if inside {
                let msg = info
                    .payload()
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| info.payload().downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(non-string payload)".into());
                let at = info.location().map(|l| l.to_string()).unwrap_or_default();
                CAUGHT.with(|c| *c.borrow_mut() = Some(format!("{msg} at {at}")));
            } else {
                default(info);
            }
        }));
    });
    CAUGHT.with(|c| *c.borrow_mut() = Some(String::new()));
    let r = catch_unwind(AssertUnwindSafe(f));
    let msg = CAUGHT.with(|c| c.borrow_mut().take()).unwrap_or_default();
    r.map_err(|_| msg)
}

/// A typed error's message is one non-empty line (the README's `vaelab: <what was wrong>`).
fn one_line(e: &vaelab::Error) -> Result<(), TestCaseError> {
    let s = e.to_string();
    prop_assert!(!s.trim().is_empty() && !s.contains('\n'), "not one line: {s:?}");
    Ok(())
}

/// A fresh path under this test run's scratch folder (each path is used once).
fn fresh_path(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    scratch().join(format!("{}-{tag}", N.fetch_add(1, Ordering::Relaxed)))
}

/// This run's scratch folder, `$CARGO_TARGET_TMPDIR/properties/<pid>`. A run writes 0.3–2 GB of
/// checkpoints and data sets here, and a static is never dropped, so a temp folder in /tmp was
/// never removed (73 of them, 17 GB, had piled up): instead each run removes the folders of runs
/// that are no longer running (on Linux, where /proc tells; elsewhere `cargo clean` does), and
/// all of it lives under `target/`.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("properties");
        if Path::new("/proc/self").exists() {
            for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                // A pid folder whose process is gone (this run's own pid is alive in /proc).
                if name.parse::<u32>().is_ok() && !Path::new("/proc").join(&name).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = base.join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

// ---------------------------------------------------------------------------------------------
// Model JSON
// ---------------------------------------------------------------------------------------------

/// A JSON number token, or something in its place that is not one: out-of-range literals,
/// `NaN`, `null`, strings. Finite values are biased to the edges (0, subnormal, tiny σ).
///
/// Magnitudes range over all of f64: where the exact log p(x) is below f64's range a named
/// error is due (`mixture_log_marginal_for_huge_x_is_a_named_error`), elsewhere a finite value
/// (`quadratic_log_marginal_is_finite_for_extreme_models`).
fn number_token() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "0", "-0", "1", "-1", "0.5", "0.4", "2", "1e-200", "1e-300", "5e-324", "1e6", "-1e6",
            "0.999999999", "1e-17", "1e-6", "1e300", "-1e300", "1e150", "-1e150", "2.2e-308", "1e-310",
            "1.7976931348623157e308", "-1.7976931348623157e308",
        ])
        .prop_map(str::to_string),
        3 => (-1e6f64..1e6).prop_map(|v| format!("{v:e}")),
        1 => (prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO | prop::num::f64::NEGATIVE | prop::num::f64::POSITIVE)
            .prop_map(|v| format!("{v:e}")),
        4 => (-3.0f64..3.0).prop_map(|v| v.to_string()),
        1 => prop::sample::select(vec!["NaN", "1e400", "-1e400", "null", "\"1\"", "[]", "true", ""])
            .prop_map(str::to_string),
    ]
}

/// The pieces of a model file: kind, shapes (sometimes ragged), number tokens, and a field to drop
/// or an unknown one to add.
#[derive(Debug, Clone)]
struct ModelText {
    kind: usize,
    d: usize,
    z: usize,
    ragged: bool,
    tokens: Vec<String>,
    drop_field: Option<usize>,
    extra_field: bool,
}

impl ModelText {
    fn render(&self) -> String {
        let mut t = self.tokens.iter().cycle();
        let t = &mut t;
        fn vec<'a>(t: &mut impl Iterator<Item = &'a String>, n: usize) -> String {
            format!("[{}]", t.take(n).map(String::as_str).collect::<Vec<_>>().join(","))
        }
        fn matrix<'a>(
            t: &mut impl Iterator<Item = &'a String>,
            rows: usize,
            cols: usize,
            ragged: bool,
        ) -> String {
            let rows: Vec<String> =
                (0..rows).map(|i| vec(t, if ragged && i == 0 { cols + 1 } else { cols })).collect();
            format!("[{}]", rows.join(","))
        }
        let (d, z, ragged) = (self.d, self.z, self.ragged);
        let (kind, fields): (&str, Vec<(&str, String)>) = match self.kind {
            0 => (
                "linear_gaussian",
                vec![("w", matrix(t, d, z, ragged)), ("b", vec(t, d)), ("sigma", t.next().unwrap().clone())],
            ),
            1 => (
                "mixture",
                vec![
                    ("weights", vec(t, z)),
                    ("means", matrix(t, z, d, ragged)),
                    ("sigmas", matrix(t, z, d, false)),
                ],
            ),
            2 => (
                "binary_latent",
                vec![("prior", vec(t, z)), ("w", matrix(t, d, z, ragged)), ("b", vec(t, d))],
            ),
            3 => (
                "quadratic",
                vec![
                    ("a", vec(t, d)),
                    ("c", vec(t, d + usize::from(ragged))),
                    ("sigma", t.next().unwrap().clone()),
                ],
            ),
            _ => ("gaussian_process", vec![]),
        };
        let mut parts = vec![format!("\"kind\": \"{kind}\"")];
        for (i, (k, v)) in fields.into_iter().enumerate() {
            if self.drop_field != Some(i) {
                parts.push(format!("\"{k}\": {v}"));
            }
        }
        if self.extra_field {
            parts.push("\"extra\": 1".into());
        }
        format!("{{{}}}", parts.join(", "))
    }
}

fn model_text() -> impl Strategy<Value = ModelText> {
    (
        0usize..5,
        0usize..5,
        0usize..4,
        prop::bool::weighted(0.1),
        prop::collection::vec(number_token(), 1..24),
        prop::option::weighted(0.1, 0usize..3),
        prop::bool::weighted(0.05),
    )
        .prop_map(|(kind, d, z, ragged, mut tokens, drop_field, extra_field)| {
            // Quadratic models: numbers beyond ±100 are clamped to ±100; a large a or c gives an
            // exact log p(x) of −inf today (`quadratic_log_marginal_is_finite_or_a_named_error_for_extreme_models`).
            if kind == 3 {
                for t in &mut tokens {
                    if let Ok(v) = t.parse::<f64>()
                        && v.abs() > 100.0
                    {
                        *t = (100.0f64.copysign(v)).to_string();
                    }
                }
            }
            ModelText { kind, d, z, ragged, tokens, drop_field, extra_field }
        })
}

/// A finite data point x of length `d` (the CLI's `parse_list` refuses non-finite numbers), over
/// all of f64 (see [`number_token`], and the two `*_log_marginal_*` regression tests).
fn data_point(d: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(vec![0.0, 1.0, -1.0, 0.5, 1e6, -1e6, 1e-300, 5e-324, 1e300, -1e300, 1e150, f64::MAX, f64::MIN]),
            3 => -5.0f64..5.0,
            1 => -1e6f64..1e6,
            1 => prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO,
        ],
        d..=d,
    )
}

/// What a loaded model must satisfy: its exact log p(x) at `x` is finite or a one-line error,
/// and it survives a round trip through its JSON form.
fn check_model(model: &Model, x: &[f64]) -> Result<(), TestCaseError> {
    let x = ndarray::Array1::from(x.to_vec());
    let lp = no_panic(|| model.check_x(x.view()).and_then(|()| model.log_marginal(x.view())));
    match lp {
        Err(p) => prop_assert!(false, "log_marginal panicked: {p}\nmodel: {}\nx: {x}", model.to_json()),
        Ok(Ok(v)) => {
            prop_assert!(v.is_finite(), "log p(x) = {v} for x = {x}\nmodel: {}", model.to_json())
        }
        Ok(Err(e)) => one_line(&e)?,
    }
    let back = Model::from_json(&model.to_json());
    prop_assert!(back.as_ref().is_ok_and(|b| b == model), "round trip: {back:?}");
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    /// `Model::from_json` on model files assembled from random shapes and number tokens (any kind,
    /// ragged matrices, missing or unknown fields, NaN and out-of-range literals): no panic; a
    /// one-line error, or a model whose exact log p(x) at a random finite x is finite (or a
    /// one-line error) and which round-trips through JSON. Shapes are at most 4×3 so a case costs
    /// microseconds (the Simpson normaliser of the quadratic model is the slowest, ~1 ms).
    #[test]
    fn model_json_gives_a_finite_model_or_a_one_line_error(text in model_text(), x in data_point(4)) {
        let json = text.render();
        match no_panic(|| Model::from_json(&json)) {
            Err(p) => prop_assert!(false, "from_json panicked: {p}\ninput: {json}"),
            Ok(Err(e)) => one_line(&e)?,
            Ok(Ok(model)) => {
                let d = model.data_dim();
                check_model(&model, &x[..d.min(4)])?;
            }
        }
    }

    /// `Model::load` on the shipped model files after 1–4 random byte edits (overwrite, delete,
    /// insert; possibly invalid UTF-8): no panic; a one-line error or a model as above.
    #[test]
    fn edited_model_files_load_or_fail_in_one_line(
        file in 0usize..4,
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..5),
        x in data_point(3),
    ) {
        let name = ["linear_gaussian", "mixture", "binary_latent", "quadratic"][file];
        let mut bytes = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("data/models/{name}.json"))).unwrap();
        for (at, op, b) in edits {
            let i = at.index(bytes.len() + 1);
            match op {
                0 if i < bytes.len() => bytes[i] = b,
                1 if i < bytes.len() => { bytes.remove(i); }
                _ => bytes.insert(i, b),
            }
        }
        let path = fresh_path("model.json");
        std::fs::write(&path, &bytes).unwrap();
        match no_panic(|| Model::load(&path)) {
            Err(p) => prop_assert!(false, "load panicked: {p}\ninput: {:?}", String::from_utf8_lossy(&bytes)),
            Ok(Err(e)) => one_line(&e)?,
            Ok(Ok(model)) => {
                let d = model.data_dim().min(3);
                check_model(&model, &x[..d])?;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// IDX files and MNIST folders
// ---------------------------------------------------------------------------------------------

const IMAGES_MAGIC: u32 = 0x0803;
const LABELS_MAGIC: u32 = 0x0801;

/// A header field: small values, edge values, any u32.
fn header_u32() -> impl Strategy<Value = u32> {
    prop_oneof![3 => 0u32..5, 1 => prop::sample::select(vec![28, 255, 256, 65536, 1 << 31, u32::MAX]), 1 => any::<u32>()]
}

/// An IDX file: a magic (either kind or any), the three header numbers, a body whose length is the
/// promised one give or take a few bytes (capped at 4 KiB), and whether it is gzipped; or, rarely,
/// random bytes (also under a `.gz` name).
#[derive(Debug, Clone)]
struct IdxFile {
    magic: u32,
    dims: [u32; 3],
    /// Added to the promised body length (saturating at 0).
    delta: i64,
    fill: u8,
    gz: bool,
    raw: Option<Vec<u8>>,
}

impl IdxFile {
    fn header_len(&self) -> usize {
        if self.magic == LABELS_MAGIC { 8 } else { 16 }
    }
    fn promised(&self) -> u128 {
        let [n, r, c] = self.dims.map(u128::from);
        if self.magic == LABELS_MAGIC { n } else { n * r * c }
    }
    fn bytes(&self) -> Vec<u8> {
        if let Some(raw) = &self.raw {
            return raw.clone();
        }
        let mut b = self.magic.to_be_bytes().to_vec();
        for d in self.dims {
            b.extend(d.to_be_bytes());
        }
        b.truncate(self.header_len());
        let body = (self.promised().min(4096) as i64 + self.delta).clamp(0, 4096) as usize;
        b.extend((0..body).map(|i| self.fill.wrapping_add(i as u8)));
        b
    }
    fn file_bytes(&self) -> Vec<u8> {
        let plain = self.bytes();
        if self.gz && self.raw.is_none() {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&plain).unwrap();
            enc.finish().unwrap()
        } else {
            plain
        }
    }
}

fn idx_file() -> impl Strategy<Value = IdxFile> {
    let magic = prop_oneof![4 => Just(IMAGES_MAGIC), 4 => Just(LABELS_MAGIC), 1 => any::<u32>()];
    prop_oneof![
        9 => (magic, [header_u32(), header_u32(), header_u32()], prop_oneof![4 => Just(0i64), 1 => -3i64..4], any::<u8>(), any::<bool>())
            .prop_map(|(magic, dims, delta, fill, gz)| IdxFile { magic, dims, delta, fill, gz, raw: None }),
        1 => (prop::collection::vec(any::<u8>(), 0..40), any::<bool>())
            .prop_map(|(raw, gz)| IdxFile { magic: 0, dims: [0; 3], delta: 0, fill: 0, gz, raw: Some(raw) }),
    ]
}

proptest! {
    #![proptest_config(config(512))]

    /// `read_idx_images` and `read_idx_labels` on random IDX files: no panic, and the result is
    /// exactly what the format says. Images load iff the magic is the images' one, rows and cols
    /// are ≥ 1 and the body is exactly N·rows·cols bytes, and then the array is N × rows·cols;
    /// labels load iff the magic is the labels' one and the body is exactly N bytes. Anything else
    /// is a one-line error. Bodies are capped at 4 KiB, so a header promising more is always
    /// "truncated" (the reader must say so without allocating what the header promises).
    #[test]
    fn idx_readers_accept_exactly_the_valid_files(file in idx_file()) {
        let path = fresh_path(if file.gz { "f.gz" } else { "f" });
        std::fs::write(&path, file.file_bytes()).unwrap();
        let plain_len = file.bytes().len() as u128;
        for as_images in [true, false] {
            let valid = file.raw.is_none()
                && plain_len == file.header_len() as u128 + file.promised()
                && if as_images {
                    file.magic == IMAGES_MAGIC && file.dims[1] >= 1 && file.dims[2] >= 1
                } else {
                    file.magic == LABELS_MAGIC
                };
            let got = no_panic(|| if as_images {
                read_idx_images(&path).map(|im| (im.pixels.nrows(), im.pixels.ncols(), im.image_shape))
            } else {
                read_idx_labels(&path).map(|l| (l.len(), 0, [0, 0]))
            });
            match got {
                Err(p) => prop_assert!(false, "panicked: {p}\nfile: {file:?}"),
                Ok(Err(e)) => {
                    one_line(&e)?;
                    // Random bytes may happen to form a valid file; anything generated as valid must load.
                    prop_assert!(!valid, "valid file refused ({e})\nfile: {file:?}");
                }
                Ok(Ok((n, d, shape))) => {
                    prop_assert!(valid || file.raw.is_some(), "invalid file loaded\nfile: {file:?}");
                    if file.raw.is_none() {
                        let [n0, r, c] = file.dims.map(|v| v as usize);
                        prop_assert_eq!(n, n0);
                        if as_images {
                            prop_assert_eq!((d, shape), (r * c, [r, c]));
                        }
                    }
                }
            }
        }
    }
}

/// A folder of four IDX files, each valid or spoiled in one way.
#[derive(Debug, Clone, Copy)]
enum Spoil {
    None,
    Missing,
    Gzip,
    DotName,
    Truncate(u8),
    Append,
    /// Byte at this offset (mod length) set to the value.
    Poke(u16, u8),
    /// Another image size (images) or count (labels).
    OtherShape,
}

fn spoil() -> impl Strategy<Value = Spoil> {
    prop_oneof![
        6 => Just(Spoil::None),
        1 => Just(Spoil::Missing),
        1 => Just(Spoil::Gzip),
        1 => Just(Spoil::DotName),
        1 => (1u8..20).prop_map(Spoil::Truncate),
        1 => Just(Spoil::Append),
        2 => (any::<u16>(), any::<u8>()).prop_map(|(a, b)| Spoil::Poke(a, b)),
        1 => Just(Spoil::OtherShape),
    ]
}

/// Writes a tiny MNIST-like folder: `n_train` / `n_test` images of `rows × cols` with labels
/// 0..=9 (`spoils` for train-images, train-labels, t10k-images, t10k-labels).
fn write_idx_dir(dir: &Path, n: [usize; 2], rows: usize, cols: usize, spoils: [Spoil; 4]) {
    std::fs::create_dir_all(dir).unwrap();
    for (k, (set, kind)) in [("train", "images"), ("train", "labels"), ("t10k", "images"), ("t10k", "labels")]
        .into_iter()
        .enumerate()
    {
        let count = n[k / 2];
        let spoil = spoils[k];
        let (r, c, count) = match (spoil, kind) {
            (Spoil::OtherShape, "images") => (rows + 1, cols, count),
            (Spoil::OtherShape, _) => (rows, cols, count + 1),
            _ => (rows, cols, count),
        };
        let mut b: Vec<u8>;
        if kind == "images" {
            b = [IMAGES_MAGIC, count as u32, r as u32, c as u32]
                .iter()
                .flat_map(|v| v.to_be_bytes())
                .collect();
            b.extend((0..count * r * c).map(|i| (i * 37 % 256) as u8));
        } else {
            b = [LABELS_MAGIC, count as u32].iter().flat_map(|v| v.to_be_bytes()).collect();
            b.extend((0..count).map(|i| (i % 10) as u8));
        }
        match spoil {
            Spoil::Truncate(t) => b.truncate(b.len().saturating_sub(usize::from(t))),
            Spoil::Append => b.push(0),
            Spoil::Poke(at, v) => {
                let i = usize::from(at) % b.len();
                b[i] = v;
            }
            _ => {}
        }
        let idx = if kind == "images" { "idx3" } else { "idx1" };
        let name = match spoil {
            Spoil::Missing => continue,
            Spoil::DotName => format!("{set}-{kind}.{idx}-ubyte"),
            Spoil::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(&b).unwrap();
                b = enc.finish().unwrap();
                format!("{set}-{kind}-{idx}-ubyte.gz")
            }
            _ => format!("{set}-{kind}-{idx}-ubyte"),
        };
        std::fs::write(dir.join(name), b).unwrap();
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// `load_mnist_dir` on tiny folders (1–8 images of at most 3×3 per set) whose files are each
    /// valid, missing, gzipped, dot-named, truncated, extended, poked at a random byte or of
    /// another shape: no panic; a one-line error, or train and test sets with as many labels as
    /// images, labels in 0..=9, grey levels in [0, 1] and one image size. An unspoiled folder
    /// (only renames and gzip) must load.
    #[test]
    fn mnist_dirs_load_consistently_or_fail_in_one_line(
        n in [1usize..9, 1usize..9], rows in 1usize..4, cols in 1usize..4, spoils in [spoil(), spoil(), spoil(), spoil()],
    ) {
        let dir = fresh_path("mnist");
        write_idx_dir(&dir, n, rows, cols, spoils);
        let harmless = spoils.iter().all(|s| matches!(s, Spoil::None | Spoil::Gzip | Spoil::DotName));
        match no_panic(|| load_mnist_dir(&dir)) {
            Err(p) => prop_assert!(false, "panicked: {p}\nspoils: {spoils:?}"),
            Ok(Err(e)) => {
                one_line(&e)?;
                prop_assert!(!harmless, "valid folder refused: {e}");
            }
            Ok(Ok(split)) => {
                for set in [&split.train, &split.test] {
                    prop_assert_eq!(set.images.nrows(), set.labels.len());
                    prop_assert!(set.labels.iter().all(|&l| l <= 9));
                    prop_assert!(set.images.iter().all(|&v| (0.0..=1.0).contains(&v)));
                    prop_assert_eq!(set.images.ncols(), set.image_shape[0] * set.image_shape[1]);
                }
                prop_assert_eq!(split.train.image_shape, split.test.image_shape);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Checkpoints
// ---------------------------------------------------------------------------------------------

/// The tiny data set the checkpoint and CLI properties train on: 64 train and 16 test images of
/// 2×2 pixels (D = 4).
fn tiny_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch().join("tiny-2x2");
        write_idx_dir(&dir, [64, 16], 2, 2, [Spoil::None; 4]);
        dir
    })
}

/// The same with 1×3 images (D = 3, not a square: the report draws them as one row).
fn tiny_dir_1x3() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch().join("tiny-1x3");
        write_idx_dir(&dir, [64, 16], 1, 3, [Spoil::None; 4]);
        dir
    })
}

fn tiny_train_args(out: PathBuf, prior: LatentPrior) -> TrainArgs {
    TrainArgs {
        data: DataSource::MnistDir,
        mnist_dir: Some(tiny_dir().to_path_buf()),
        epochs: 1,
        latent: 2,
        hidden: vec![3],
        beta: 1.0,
        warmup_epochs: 0,
        free_bits: None,
        prior,
        batch: 8,
        lr: 1e-2,
        seed: 3,
        out,
        threads: 1,
    }
}

/// Checkpoints of one epoch on [`tiny_dir`] (a 4-3-2 VAE with N(0, I), and with a learned
/// 2-component mixture prior, so the prior's tensors are in the file too), written by the crate's
/// own `vaelab train` path.
fn tiny_checkpoints() -> &'static [PathBuf; 2] {
    static CK: OnceLock<[PathBuf; 2]> = OnceLock::new();
    CK.get_or_init(|| {
        [LatentPrior::StandardNormal, LatentPrior::Mixture { components: 2 }].map(|prior| {
            let out = fresh_path("train");
            vaelab::cli::run_train(&tiny_train_args(out.clone(), prior), |_| {}).unwrap();
            out.join("checkpoint.safetensors")
        })
    })
}

/// A safetensors file split into its JSON header and its data.
fn split_file(bytes: &[u8]) -> (serde_json::Map<String, serde_json::Value>, &[u8]) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    (serde_json::from_slice(&bytes[8..8 + n]).unwrap(), &bytes[8 + n..])
}

fn join_file(header: &serde_json::Map<String, serde_json::Value>, data: &[u8]) -> Vec<u8> {
    let mut json = serde_json::to_vec(header).unwrap();
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend(json);
    out.extend(data);
    out
}

/// The same file without its `checksum` (a file as written before checksums: loaded unchecked,
/// so the finiteness and config checks are all that stand between a corrupt file and a model).
fn without_checksum(bytes: &[u8]) -> Vec<u8> {
    let (mut header, data) = split_file(bytes);
    header["__metadata__"].as_object_mut().unwrap().remove("checksum");
    join_file(&header, data)
}

/// One corruption of a checkpoint's bytes.
#[derive(Debug, Clone)]
enum Corruption {
    Truncate(prop::sample::Index),
    /// (byte, bit) pairs.
    BitFlips(Vec<(prop::sample::Index, u8)>),
    /// One f32 of the tensor data (index into the data's f32s) set to these bits.
    Inject(prop::sample::Index, u32),
    /// One metadata value replaced.
    Meta(usize, String),
}

/// Metadata values to put in place of a real one. Sizes inside `vae_config` stay small: a huge
/// `hidden_dims` or `latent_dim` in a file without a checksum panics in `Vae::new` (see
/// `huge_sizes_are_refused_not_panics`, the same root cause as the CLI's).
fn meta_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "0",
            "1",
            "2",
            "-1",
            "18446744073709551615",
            "18446744073709551616",
            "NaN",
            "1e3",
            "{}",
            "[]",
            "null",
            "vaelab-checkpoint",
            "2",
            "fnv1a64:0000000000000000",
            r#"{"data_dim":4,"hidden_dims":[3],"latent_dim":2,"activation":"Relu","likelihood":"Bernoulli"}"#,
            r#"{"data_dim":4,"hidden_dims":[],"latent_dim":0}"#,
            r#"{"data_dim":5,"hidden_dims":[3],"latent_dim":2}"#,
            r#"{"epochs":0,"batch_size":0}"#,
        ])
        .prop_map(str::to_string),
        any::<u64>().prop_map(|v| v.to_string()),
    ]
}

fn corruption() -> impl Strategy<Value = Corruption> {
    let nan_or_inf = prop_oneof![
        Just(f32::NAN.to_bits()),
        Just(f32::INFINITY.to_bits()),
        Just(f32::NEG_INFINITY.to_bits()),
        (0u32..(1 << 23)).prop_map(|m| 0x7f80_0000 | m), // NaN payloads (and +inf at m = 0)
        any::<u32>(), // any value: a finite one must still load (without a checksum)
    ];
    prop_oneof![
        any::<prop::sample::Index>().prop_map(Corruption::Truncate),
        prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..8).prop_map(Corruption::BitFlips),
        (any::<prop::sample::Index>(), nan_or_inf).prop_map(|(i, v)| Corruption::Inject(i, v)),
        (0usize..vaelab::engine::checkpoint::META_KEYS.len(), meta_value())
            .prop_map(|(k, v)| Corruption::Meta(k, v)),
    ]
}

fn corrupt(bytes: &[u8], c: &Corruption) -> Vec<u8> {
    match c {
        Corruption::Truncate(i) => bytes[..i.index(bytes.len())].to_vec(),
        Corruption::BitFlips(flips) => {
            let mut b = bytes.to_vec();
            for (i, bit) in flips {
                let at = i.index(b.len());
                b[at] ^= 1 << bit;
            }
            b
        }
        Corruption::Inject(i, bits) => {
            let (_, data) = split_file(bytes);
            let start = bytes.len() - data.len();
            let at = start + 4 * i.index(data.len() / 4);
            let mut b = bytes.to_vec();
            b[at..at + 4].copy_from_slice(&bits.to_le_bytes());
            b
        }
        Corruption::Meta(k, v) => {
            let (mut header, data) = split_file(bytes);
            let meta = header["__metadata__"].as_object_mut().unwrap();
            let key = vaelab::engine::checkpoint::META_KEYS[*k];
            meta.insert(key.into(), serde_json::Value::String(v.clone()));
            join_file(&header, data)
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// `Trainer::load` on a checkpoint written by `vaelab train` (tiny model, 1 epoch, with and
    /// without a learned prior), with and without its checksum, after one corruption: a truncation
    /// at a random length, 1–7 random bit flips, a NaN/±inf (or any f32) written over one tensor
    /// value, or a metadata value replaced. Asserts: no panic; a one-line error, or a trainer whose
    /// every parameter and Adam moment is finite and whose reconstructions are finite. With the
    /// checksum, any change to the bytes must be refused. A case costs one small file write and
    /// read (~0.2 ms).
    #[test]
    fn corrupt_checkpoints_are_refused_or_load_finite(
        which in 0usize..2, checksum in any::<bool>(), c in corruption(),
    ) {
        let good = std::fs::read(&tiny_checkpoints()[which]).unwrap();
        let original = if checksum { good } else { without_checksum(&good) };
        let bytes = corrupt(&original, &c);
        let path = fresh_path("ck.safetensors");
        std::fs::write(&path, &bytes).unwrap();
        match no_panic(|| Trainer::load(&path)) {
            Err(p) => prop_assert!(false, "load panicked: {p}\ncorruption: {c:?} (checksum: {checksum})"),
            Ok(Err(e)) => one_line(&e)?,
            Ok(Ok(t)) => {
                prop_assert!(!checksum || bytes == original, "a changed file with a checksum loaded: {c:?}");
                prop_assert!(t.vae.params.first_non_finite().is_none(), "non-finite parameter loaded: {c:?}");
                prop_assert!(t.optimizer.first_non_finite().is_none(), "non-finite Adam moment loaded: {c:?}");
                let x = ndarray::Array2::<f32>::from_elem((2, t.vae.config.data_dim), 0.5);
                let r = no_panic(|| t.vae.reconstruct(x.view(), None));
                prop_assert!(r.as_ref().is_ok_and(|r| r.iter().all(|v| v.is_finite())), "reconstruction: {r:?} after {c:?}");
            }
        }
        let _ = std::fs::remove_file(&path);
    }
}

// ---------------------------------------------------------------------------------------------
// The command line, through the library
// ---------------------------------------------------------------------------------------------

/// 2^64 − 1, the largest `usize`/`u64` a user can type.
const MAX: &str = "18446744073709551615";

/// Values no number option accepts (clap must refuse them with its typed error).
const BAD: [&str; 9] = ["", "-1", "abc", "NaN", "-inf", "1e3", "18446744073709551616", " 1", "0x10"];

/// `--name value` with the value from `good` (any of which keeps the command's work tiny) or, one
/// time in twenty, from [`BAD`] (rarely, so that most argv get past clap); absent with probability `1 − p`.
fn opt(name: &'static str, good: &[&'static str], p: f64) -> BoxedStrategy<Vec<String>> {
    let values: Vec<&'static str> = good.to_vec();
    let value = prop_oneof![19 => prop::sample::select(values), 1 => prop::sample::select(BAD.to_vec())];
    let word = move |v: &str| vec![format!("--{name}"), v.to_string()];
    if p >= 1.0 {
        return value.prop_map(word).boxed();
    }
    prop::option::weighted(p, value).prop_map(move |v| v.map(word).unwrap_or_default()).boxed()
}

/// [`opt`] for a size: one of `good`, or 2^64 − 1 about one time in ten (refused up front; more
/// often would leave few runs that do the work).
fn size_opt(name: &'static str, good: &[&'static str], p: f64) -> BoxedStrategy<Vec<String>> {
    let value = prop_oneof![
        18 => prop::sample::select(good.to_vec()),
        2 => Just(MAX),
        1 => prop::sample::select(BAD.to_vec()),
    ];
    let word = move |v: &str| vec![format!("--{name}"), v.to_string()];
    if p >= 1.0 {
        return value.prop_map(word).boxed();
    }
    prop::option::weighted(p, value).prop_map(move |v| v.map(word).unwrap_or_default()).boxed()
}

/// A flag, present with probability 1/2.
fn flag(name: &'static str) -> BoxedStrategy<Vec<String>> {
    any::<bool>().prop_map(move |b| if b { vec![format!("--{name}")] } else { vec![] }).boxed()
}

/// A float option: edge values, any f64 printed, and non-numbers. Finite values beyond `max_abs`
/// become ±`max_abs` (`f64::MAX` leaves them all).
fn float_opt(name: &'static str, p: f64, max_abs: f64) -> BoxedStrategy<Vec<String>> {
    let value = prop_oneof![
        3 => prop::sample::select(vec!["0", "1", "-1", "1e-3", "0.5", "1e39", "1e308", "-1e308", "5e-324", "NaN", "inf", "-inf", "", "abc"]).prop_map(str::to_string),
        1 => any::<f64>().prop_map(|v| v.to_string()),
    ]
    .prop_map(move |v| match v.parse::<f64>() {
        Ok(x) if x.is_finite() && x.abs() > max_abs => max_abs.copysign(x).to_string(),
        _ => v,
    });
    prop::option::weighted(p, value)
        .prop_map(move |v| v.map(|v| vec![format!("--{name}"), v]).unwrap_or_default())
        .boxed()
}

/// Concatenates option strategies (each yields zero or more argv words; clap does not care
/// about their order).
fn args(parts: Vec<BoxedStrategy<Vec<String>>>) -> BoxedStrategy<Vec<String>> {
    parts.prop_map(|v| v.concat()).boxed()
}

/// Paths a user might give: the tiny data folders, a folder that does not exist, a file where a
/// folder is expected, the empty path.
fn dir_opt(name: &'static str) -> BoxedStrategy<Vec<String>> {
    let dirs = vec![
        tiny_dir().display().to_string(),
        tiny_dir_1x3().display().to_string(),
        "/nonexistent/vaelab".to_string(),
        tiny_dir().join("train-images-idx3-ubyte").display().to_string(),
        String::new(),
    ];
    prop::option::weighted(0.9, prop::sample::select(dirs))
        .prop_map(move |v| v.map(|v| vec![format!("--{name}"), v]).unwrap_or_default())
        .boxed()
}

/// `vaelab train` with every option. Work stays tiny: `--data` is always `mnist-dir` (the 64-row
/// tiny folders, a missing folder or none), `--epochs` is 0 or 1, widths and latents ≤ 3,
/// `--batch` ≤ 64, or 2^64 − 1 (refused up front, `huge_sizes_are_refused_not_panics`); sizes
/// between ~10^9 and 2^63 would abort on allocation, which no in-process test can catch.
fn train_argv() -> BoxedStrategy<Vec<String>> {
    let head =
        Just(vec!["vaelab".to_string(), "train".to_string(), "--data".to_string(), "mnist-dir".to_string()])
            .boxed();
    let out = prop_oneof![
        6 => Just("fresh"),
        1 => Just("file"),
        1 => Just("empty"),
    ]
    .prop_map(|k| {
        let p = match k {
            "fresh" => fresh_path("out").display().to_string(),
            "file" => tiny_dir().join("t10k-labels-idx1-ubyte").display().to_string(),
            _ => String::new(),
        };
        vec!["--out".to_string(), p]
    })
    .boxed();
    args(vec![
        head,
        dir_opt("mnist-dir"),
        opt("epochs", &["0", "1"], 0.95),
        size_opt("latent", &["0", "1", "2", "3"], 0.9),
        opt("hidden", &["3", "2,3", "0", "1,0", "3,3,3", MAX, "3,18446744073709551615"], 0.9),
        float_opt("beta", 0.5, f64::MAX),
        // 2^64 − 1 overflows `warmup_epochs · steps_per_epoch`: refused (`warmup_epochs_overflow_is_refused`).
        size_opt("warmup-epochs", &["0", "1", "2"], 0.3),
        // Free bits beyond 1e6: refused (`huge_free_bits_are_refused`).
        float_opt("free-bits", 0.3, f64::MAX),
        opt(
            "prior",
            &[
                "normal",
                "mog:1",
                "mog:3",
                "mog:0",
                "mog:-1",
                "mog:",
                "mog",
                "Normal",
                "mog:18446744073709551615",
            ],
            0.4,
        ),
        size_opt("batch", &["0", "1", "7", "64"], 0.95),
        float_opt("lr", 0.5, f64::MAX),
        opt("seed", &["0", "1", MAX], 0.3),
        out,
        opt("threads", &["0", "1", "2", "1000", MAX], 0.3),
    ])
}

/// `vaelab eval` on the tiny checkpoints, a missing file or a non-checkpoint, with `--data
/// mnist-dir` (the tiny folders). `--k` ≤ 10 or absurd (10^12, 2^64 − 1: refused up front), and
/// likewise `--amortisation-steps` ≤ 3 or 2^64 − 1 (K and steps in between run as long as asked).
fn eval_argv() -> BoxedStrategy<Vec<String>> {
    let head =
        Just(vec!["vaelab".to_string(), "eval".to_string(), "--data".to_string(), "mnist-dir".to_string()])
            .boxed();
    let ck = prop::sample::select(vec![
        tiny_checkpoints()[0].display().to_string(),
        tiny_checkpoints()[1].display().to_string(),
        "/nonexistent.safetensors".to_string(),
        tiny_dir().join("t10k-images-idx3-ubyte").display().to_string(),
    ])
    .prop_map(|p| vec!["--checkpoint".to_string(), p])
    .boxed();
    args(vec![
        head,
        ck,
        size_opt("k", &["0", "1", "2", "10", "1000000000000"], 0.95),
        dir_opt("mnist-dir"),
        flag("allow-other-data"),
        opt("limit", &["0", "1", "2", "5", MAX], 0.5),
        opt("seed", &["0", MAX], 0.3),
        flag("json"),
        opt("amortisation-points", &["0", "1", "2", "3", MAX], 0.4),
        size_opt("amortisation-steps", &["0", "1", "3"], 0.95),
        opt("threads", &["0", "1", "2", "1000", MAX], 0.3),
    ])
}

/// `vaelab bounds` on the shipped models (or a missing one) at random x and q. `--samples` ≤ 100
/// and `--k` ≤ 10, or 2^64 − 1 (refused up front by the draws budget). x includes ±1e6 and ±1e12,
/// where the quadratic model's ELBO and KL integrals failed with named errors (issue 15).
fn bounds_argv() -> BoxedStrategy<Vec<String>> {
    let model = prop::sample::select(vec![
        "data/models/linear_gaussian.json",
        "data/models/mixture.json",
        "data/models/binary_latent.json",
        "data/models/quadratic.json",
        "data/models/none.json",
    ])
    .prop_map(|m| {
        vec!["--model".to_string(), Path::new(env!("CARGO_MANIFEST_DIR")).join(m).display().to_string()]
    })
    .boxed();
    let list = |name: &'static str, p: f64| {
        let item = prop_oneof![
            4 => prop::sample::select(vec!["0", "1", "-1", "0.5", "1.2", "1e300", "-1e300", "800", "-800", "701", "1e12", "-1e12", "1e6", "-1e6"]).prop_map(str::to_string),
            2 => (-3.0f64..3.0).prop_map(|v| format!("{v:.3}")),
            1 => prop::sample::select(vec!["", "NaN", "inf", "abc", " "]).prop_map(str::to_string),
        ];
        prop::option::weighted(p, prop::collection::vec(item, 0..5))
            .prop_map(move |v| v.map(|v| vec![format!("--{name}"), v.join(",")]).unwrap_or_default())
            .boxed()
    };
    args(vec![
        Just(vec!["vaelab".to_string(), "bounds".to_string()]).boxed(),
        model,
        list("x", 0.97),
        opt("q", &["posterior", "prior", "fit"], 0.6),
        list("q-mean", 0.15),
        list("q-log-var", 0.15),
        opt("family", &["diag", "full"], 0.3),
        size_opt("samples", &["0", "1", "2", "100"], 0.95),
        size_opt("k", &["0", "1", "2", "10"], 0.95),
        opt("seed", &["0", MAX], 0.3),
        flag("json"),
    ])
}

/// `vaelab bench` with every work-setting option present and tiny (the defaults would time a
/// 784-400-20 model for 200 steps), or 2^64 − 1 for the sizes (`--input`, `--batch`,
/// `--hidden`, `--latent`, `--points`, `--k`, `--chunk-rows`: refused up front).
fn bench_argv() -> BoxedStrategy<Vec<String>> {
    args(vec![
        Just(vec!["vaelab".to_string(), "bench".to_string()]).boxed(),
        size_opt("batch", &["0", "1", "8"], 1.0),
        size_opt("hidden", &["3", "2,3", "0"], 1.0),
        size_opt("latent", &["0", "1", "2"], 1.0),
        size_opt("input", &["0", "1", "4"], 1.0),
        size_opt("steps", &["0", "1", "2"], 1.0),
        size_opt("warmup", &["0", "1"], 1.0),
        size_opt("repeats", &["0", "1", "2"], 1.0),
        opt("threads", &["0", "1", "2", "1000", MAX], 0.3),
        prop_oneof![
            Just(vec![]),
            Just(vec!["--eval".to_string()]),
            Just(vec!["--toy".to_string()]),
            Just(vec!["--eval".to_string(), "--toy".to_string()])
        ]
        .boxed(),
        size_opt("k", &["0", "1", "5"], 1.0),
        size_opt("points", &["0", "1", "2", "5"], 1.0),
        size_opt("chunk-rows", &["0", "1", "3"], 1.0),
        size_opt("toy-latent", &["0", "1", "2"], 1.0),
        size_opt("toy-data", &["0", "1", "3"], 1.0),
        opt("seed", &["0", MAX], 0.3),
        flag("json"),
    ])
}

/// A size for `vaelab experiment`: any u64 in decimal (small, large, 2^64 − 1), or [`BAD`].
fn any_size(name: &'static str) -> BoxedStrategy<Vec<String>> {
    let value = prop_oneof![
        4 => (0u64..10_000).prop_map(|v| v.to_string()),
        4 => any::<u64>().prop_map(|v| v.to_string()),
        1 => Just(MAX.to_string()),
        1 => prop::sample::select(BAD.to_vec()).prop_map(str::to_string),
    ];
    prop::option::weighted(0.5, value)
        .prop_map(move |v| v.map(|v| vec![format!("--{name}"), v]).unwrap_or_default())
        .boxed()
}

/// `vaelab experiment NAME` with any sizes for its size options (list options get one or two
/// sizes). Only the guard runs ([`vaelab::cli::experiment::work`] and `Work::check`): the
/// experiments themselves take seconds to minutes.
fn experiment_argv() -> BoxedStrategy<Vec<String>> {
    let named = |name: &'static str, sizes: &'static [&'static str]| {
        let mut parts =
            vec![Just(vec!["vaelab".to_string(), "experiment".to_string(), name.to_string()]).boxed()];
        parts.extend(sizes.iter().map(|s| any_size(s)));
        args(parts)
    };
    prop_oneof![
        named("amortised", &["steps", "train", "eval", "digit-points", "digit-epochs", "hidden-sizes"]),
        named("prior", &["epochs", "components", "k", "test"]),
        named(
            "minibatch",
            &["batches", "epochs", "train", "test", "noise-n", "noise-repeats", "noise-epochs"]
        ),
        named("rate-distortion", &["epochs"]),
        named("collapses", &["epochs", "n-train", "n-test", "n-is", "k"]),
        named("cvae", &["epochs", "n-train", "n-test", "hidden", "latent", "k", "columns"]),
        named(
            "minimal-representation",
            &["latent-dims", "epochs", "digit-epochs", "digit-latent", "digit-test"]
        ),
        named("gradients", &["dims", "draws", "sample-counts", "repeats"]),
    ]
    .prop_map(|mut v| {
        v.extend(["--out".to_string(), fresh_path("experiment").display().to_string()]);
        v
    })
    .boxed()
}

/// The cheap commands: `book-assets` into a fresh folder or onto a file, `data
/// convert-mnist-json` from a folder without the JSON files; and argv that is not a command.
fn misc_argv() -> BoxedStrategy<Vec<String>> {
    prop_oneof![
        prop::sample::select(vec!["fresh", "file"]).prop_map(|k| {
            let out =
                if k == "fresh" { fresh_path("assets") } else { tiny_dir().join("train-labels-idx1-ubyte") };
            vec!["vaelab".into(), "book-assets".into(), "--out".into(), out.display().to_string()]
        }),
        Just(()).prop_map(|()| vec![
            "vaelab".into(),
            "data".into(),
            "convert-mnist-json".into(),
            "--digits-dir".into(),
            tiny_dir().display().to_string(),
            "--out".into(),
            fresh_path("digits.bin.gz").display().to_string(),
        ]),
        prop::collection::vec(
            prop::sample::select(vec![
                "train",
                "eval",
                "--help",
                "--version",
                "-x",
                "",
                "bounds",
                "--k",
                "1"
            ]),
            0..4
        )
        .prop_map(|v| std::iter::once("vaelab").chain(v).map(str::to_string).collect()),
    ]
    .boxed()
}

/// Every number in a JSON value is finite (serde_json writes a NaN or an infinity as `null`; the
/// one documented `null` is eval's `"amortisation"` when it was not asked for).
fn json_finite(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => false,
        serde_json::Value::Number(n) => n.as_f64().is_some_and(f64::is_finite),
        serde_json::Value::Array(a) => a.iter().all(json_finite),
        serde_json::Value::Object(o) => {
            o.iter().all(|(k, v)| (k == "amortisation" && v.is_null()) || json_finite(v))
        }
        _ => true,
    }
}

/// Text output names no NaN or infinity.
fn text_finite(s: &str) -> bool {
    !s.split(|c: char| c.is_whitespace() || ",:;()[]{}=±".contains(c))
        .any(|w| matches!(w.trim_start_matches(['-', '+']), "NaN" | "inf" | "Infinity" | "nan"))
}

/// Runs a parsed command the way `main` does, but returning what it would print, so the output can
/// be checked for NaN.
fn run_cli(cli: Cli) -> vaelab::Result<String> {
    match cli.command {
        Command::Train(a) => vaelab::cli::run_train(&a, |_| {}).map(|h| serde_json::to_string(&h).unwrap()),
        Command::Eval(a) => vaelab::cli::run_eval(&a),
        Command::Bounds(a) => vaelab::cli::bounds::run(&a),
        Command::Bench(a) => vaelab::cli::bench::run(&a).map(|r| serde_json::to_string(&r).unwrap()),
        other => vaelab::cli::run(Cli { command: other }).map(|()| String::new()),
    }
}

/// The property of every CLI test: clap refuses the argv (its own typed error; one line is not
/// asserted, see `clap_errors_are_one_line`), or the command returns output with
/// no NaN or infinity in it, or a one-line `vaelab::Error`; never a panic.
fn check_cli(argv: &[String]) -> Result<(), TestCaseError> {
    let Ok(cli) = Cli::try_parse_from(argv) else { return Ok(()) };
    match no_panic(|| run_cli(cli)) {
        Err(p) => prop_assert!(false, "panicked: {p}\nargv: {argv:?}"),
        Ok(Err(e)) => one_line(&e)?,
        Ok(Ok(out)) => {
            let finite = match serde_json::from_str::<serde_json::Value>(&out) {
                Ok(v) => json_finite(&v),
                Err(_) => text_finite(&out),
            };
            prop_assert!(finite, "non-finite number in the output of {argv:?}:\n{out}");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    /// `vaelab train` argv (see [`train_argv`] for the bounds): no panic; a clap error, a
    /// one-line error, or metrics with every number finite. A successful case trains 1 epoch of
    /// 64 rows of D ≤ 4 and writes the report page (~5 ms).
    #[test]
    fn cli_train_never_panics(argv in train_argv()) {
        check_cli(&argv)?;
    }

    /// `vaelab eval` argv (see [`eval_argv`]): no panic; a clap error, a one-line error, or a
    /// report with every number finite (16 test points, K ≤ 10, ≤ 3 fit steps per point).
    #[test]
    fn cli_eval_never_panics(argv in eval_argv()) {
        check_cli(&argv)?;
    }

    /// `vaelab bounds` argv (see [`bounds_argv`]): no panic; a clap error, a one-line error, or a
    /// report with every number finite. `--q fit` runs its default 3,000 Adam steps (the slowest
    /// case, tens of milliseconds).
    #[test]
    fn cli_bounds_never_panics(argv in bounds_argv()) {
        check_cli(&argv)?;
    }

    /// `vaelab bench` argv (see [`bench_argv`]): no panic; a clap error, a one-line error, or a
    /// report with every number finite (timings of ≤ 2 steps of a ≤ 4-3-2 model, so a timer
    /// resolution of zero must not print an infinite rate).
    #[test]
    fn cli_bench_never_panics(argv in bench_argv()) {
        check_cli(&argv)?;
    }

    /// `book-assets`, `data convert-mnist-json` and words that are not a command: no panic; a
    /// clap error or a one-line error.
    #[test]
    fn cli_misc_never_panics(argv in misc_argv()) {
        check_cli(&argv)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Bugs found by the properties above (issue 15): plain regression tests with the minimal input.
// ---------------------------------------------------------------------------------------------

/// Found by `model_json_gives_a_finite_model_or_a_one_line_error` (shrunk by hand): a quadratic
/// model with a large offset c (a = 0: p(x) is then N(x; c, σ²), log p(0) ≈ −c²/2 = −5e39 for
/// c = −1e20), or a large a against a small σ (a = −2e5, σ = 0.05), returned Ok(−inf) from
/// `log_marginal` (the integrand exp(log p(x, z) − peak) loses every digit when both are ~1e39),
/// then a named error. Every one of these p(x) is within f64's range (log p(x) ≥ −5e213), and
/// with the integrand's difference from the peak computed analytically each is now finite.
#[test]
fn quadratic_log_marginal_is_finite_for_extreme_models() {
    let mut bad = Vec::new();
    for (a, c, sigma) in [
        (0.0, -1e107, 1.0),
        (-2e5, 0.0, 0.05),
        (-1e3, 0.0, 0.05),
        (-1e2, 0.0, 0.05),
        (-1e3, 0.0, 1.0),
        (0.0, -1e3, 1.0),
        (0.0, -1e20, 1.0),
    ] {
        let m = Model::from_json(&format!(
            r#"{{"kind": "quadratic", "a": [{a:e}], "c": [{c:e}], "sigma": {sigma}}}"#
        ))
        .unwrap();
        let lp = m.log_marginal(ndarray::arr1(&[0.0]).view());
        if !lp.as_ref().is_ok_and(|v| v.is_finite()) {
            bad.push(format!("a = {a:e}, c = {c:e}, σ = {sigma}: {lp:?}"));
        }
    }
    // Found at 2,000 cases: 4-D, x far from c in units of σ (log p(x) ≈ −(1e12)²/2 = −5e23).
    let m =
        Model::from_json(r#"{"kind": "quadratic", "a": [1e-6, 0, 0, 0], "c": [0, 0, 0, 0], "sigma": 1e-6}"#)
            .unwrap();
    let lp = m.log_marginal(ndarray::arr1(&[-1.0, 0.0, 0.0, 1e6]).view());
    if !lp.as_ref().is_ok_and(|v| v.is_finite()) {
        bad.push(format!("a = [1e-6, 0, 0, 0], c = 0, σ = 1e-6, x = [-1, 0, 0, 1e6]: {lp:?}"));
    }
    assert!(bad.is_empty(), "log p(x):\n{}", bad.join("\n"));
}

/// Found by `edited_model_files_load_or_fail_in_one_line`: the shipped mixture model at a huge
/// (finite) x. log p(x) ≈ −x²/(2σ²) ≈ −4e393 is below f64's range: a named error is due (the CLI
/// refuses it only because `bounds` checks its report), but `log_marginal` returns Ok(−inf).
#[test]
fn mixture_log_marginal_for_huge_x_is_a_named_error() {
    let m = Model::load(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/models/mixture.json")).unwrap();
    let lp = m.log_marginal(ndarray::arr1(&[-4.8e196, 0.0]).view());
    assert!(lp.as_ref().map_or(true, |v| v.is_finite()), "log p(x) = {lp:?}");
}

/// Sizes of 2^64 − 1 panic in ndarray ("Shape too large") or in `Vec` ("capacity overflow")
/// instead of a one-line refusal; left out of the CLI strategies and of the checkpoint
/// `vae_config` edits above. Each argv here is otherwise tiny.
#[test]
fn huge_sizes_are_refused_not_panics() {
    let dir = tiny_dir().display().to_string();
    // Tiny defaults; `over` replaces the value of one option.
    let argv = |base: &[&str], over: (&str, &str)| {
        let mut v: Vec<String> = base.iter().map(|s| s.to_string()).collect();
        let i = v.iter().position(|w| w == over.0).unwrap();
        v[i + 1] = over.1.to_string();
        v
    };
    let out = fresh_path("out").display().to_string();
    let train_base = [
        "vaelab",
        "train",
        "--data",
        "mnist-dir",
        "--mnist-dir",
        &dir,
        "--epochs",
        "1",
        "--hidden",
        "3",
        "--latent",
        "2",
        "--batch",
        "8",
        "--prior",
        "normal",
        "--out",
        &out,
    ];
    let bench_base = [
        "vaelab",
        "bench",
        "--steps",
        "1",
        "--warmup",
        "0",
        "--repeats",
        "1",
        "--hidden",
        "3",
        "--latent",
        "2",
        "--input",
        "4",
        "--batch",
        "2",
        "--k",
        "2",
        "--points",
        "2",
    ];
    let train = |o: &str, v: &str| argv(&train_base, (o, v));
    let bench = |o: &str, v: &str| argv(&bench_base, (o, v));
    let mog = format!("mog:{MAX}");
    let mut failures = Vec::new();
    for argv in [
        train("--hidden", MAX),
        train("--latent", MAX),
        train("--batch", MAX),
        train("--prior", &mog),
        bench("--input", MAX),
        bench("--batch", MAX),
    ] {
        let cli = Cli::try_parse_from(&argv).unwrap();
        if let Err(p) = no_panic(|| run_cli(cli)) {
            failures.push(format!("{argv:?}: {p}"));
        }
    }
    assert!(failures.is_empty(), "panics:\n{}", failures.join("\n"));
}

/// Found by `cli_train_never_panics` at 2,000 cases: `--warmup-epochs 2^64 − 1` panics with
/// "attempt to multiply with overflow" at `src/cli/mod.rs:357` (`args.warmup_epochs *
/// steps_per_epoch`) before any validation.
#[test]
fn warmup_epochs_overflow_is_refused() {
    let argv = [
        "vaelab",
        "train",
        "--data",
        "mnist-dir",
        "--mnist-dir",
        &tiny_dir().display().to_string(),
        "--epochs",
        "1",
        "--hidden",
        "3",
        "--latent",
        "2",
        "--batch",
        "8",
        "--warmup-epochs",
        MAX,
        "--out",
        &fresh_path("out").display().to_string(),
    ]
    .map(str::to_string);
    let r = no_panic(|| run_cli(Cli::try_parse_from(&argv).unwrap()));
    assert!(r.is_ok(), "{}", r.err().unwrap_or_default());
}

/// Found by `cli_train_never_panics` at 2,000 cases: `--free-bits 1e308` trains to the end and
/// returns (and writes to metrics.csv / metrics.json) a `train_loss` of inf (JSON `null`) every
/// epoch, with no error: either refuse such λ up front or report a finite loss.
#[test]
fn huge_free_bits_are_refused() {
    let mut args = tiny_train_args(fresh_path("out"), LatentPrior::StandardNormal);
    args.latent = 1;
    args.free_bits = Some(1e308);
    match vaelab::cli::run_train(&args, |_| {}) {
        Ok(h) => assert!(h.iter().all(|m| m.train_loss.is_finite()), "train_loss {:?}", h[0].train_loss),
        Err(e) => assert!(!e.to_string().contains('\n')),
    }
}

/// The README promises one line `vaelab: …` and exit code 2 for bad arguments; clap's own errors
/// (a negative number, a missing option) print `error: …` on several lines.
#[test]
fn clap_errors_are_one_line() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vaelab"))
        .args(["train", "--epochs", "-1", "--out", "/nonexistent"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.starts_with("vaelab: ") && err.trim_end().lines().count() == 1, "{err}");
}

proptest! {
    #![proptest_config(config(512))]

    /// `vaelab experiment` argv with any sizes (see [`experiment_argv`]): the guard that runs
    /// before any work never panics, and either accepts the sizes (then the estimate is within
    /// the budget) or refuses them in one line.
    #[test]
    fn experiment_guards_accept_or_refuse_any_size_in_one_line(argv in experiment_argv()) {
        let Ok(cli) = Cli::try_parse_from(&argv) else { return Ok(()) };
        let Command::Experiment(args) = cli.command else { unreachable!("parsed an experiment") };
        match no_panic(|| vaelab::cli::experiment::work(&args).and_then(|w| w.check().map(|_| w))) {
            Err(p) => prop_assert!(false, "panicked: {p}\nargv: {argv:?}"),
            Ok(Err(e)) => one_line(&e)?,
            Ok(Ok(w)) => prop_assert!(w.total <= vaelab::base::budget::MAX_WORK, "{argv:?}"),
        }
    }
}
