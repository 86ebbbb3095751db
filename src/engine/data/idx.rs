//! The standard MNIST files (IDX format), for a user who has them: `--mnist-dir` in the CLI.
//!
//! The format is documented on [`read_idx_images`].

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use ndarray::Array2;

use super::{CLASSES, DigitSplit, Digits};
use crate::base::error::{Error, Result};

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

/// The images of one IDX file, as bytes.
///
/// # Shapes
///
/// - `pixels`: N×D with `D = rows · cols`, each row one image, row-major
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// N×D grey levels, 0 (background) to 255 (ink).
    pub pixels: Array2<u8>,
    /// `[rows, cols]` of one image, from the header.
    pub image_shape: [usize; 2],
}

/// Reads an IDX image file (`0x00000803`: unsigned bytes, 3 dimensions), plain or `.gz`.
///
/// IDX (LeCun et al., the MNIST page): all integers big-endian.
///
/// ```text
/// images (…-images-idx3-ubyte)          labels (…-labels-idx1-ubyte)
/// offset  size    field                 offset  size  field
/// 0       4       magic 0x00000803      0       4     magic 0x00000801
/// 4       4       N images              4       4     N labels
/// 8       4       rows (28)             8       N     labels 0..9 (u8)
/// 12      4       cols (28)
/// 16      N·R·C   pixels (u8), image after image, row-major; 0 = background, 255 = ink
/// ```
///
/// The magic's third byte is the element type (0x08 = unsigned byte) and its fourth the number of
/// dimensions. Files may be gzip-compressed (`.gz`), as they are distributed.
///
/// Errors name the file and what was wrong: a wrong magic number, a zero image size, a header or
/// body shorter than the header promises, or bytes after the last image ([`Error::Format`]); the
/// file missing or its gzip stream corrupt ([`Error::Io`]).
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("vaelab-idx-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("two-images-idx3-ubyte");
/// // Header: magic, N = 2, rows = 1, cols = 3; then 2 images of 3 bytes.
/// let mut bytes = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 3];
/// bytes.extend([0, 128, 255, 1, 2, 3]);
/// std::fs::write(&path, &bytes).unwrap();
/// let images = vaelab::engine::data::read_idx_images(&path).unwrap();
/// assert_eq!(images.image_shape, [1, 3]);
/// assert_eq!(images.pixels.row(0).to_vec(), vec![0, 128, 255]);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<IdxImages> {
    let path = path.as_ref();
    let what = path.display().to_string();
    let mut reader = open(path)?;
    let header = read_header(&mut reader, path, 16)?;
    check_magic(&header, IMAGES_MAGIC, LABELS_MAGIC, "an image file", &what)?;
    let [n, rows, cols] =
        [4, 8, 12].map(|at| u32::from_be_bytes(header[at..at + 4].try_into().unwrap()) as usize);
    if rows == 0 || cols == 0 {
        return Err(Error::format(
            what,
            format!("image size in the header is {rows}×{cols}; both must be ≥ 1"),
        ));
    }
    // u32 · u32 · u32 can overflow a 64-bit usize only past 2^64; checked anyway.
    let len = n
        .checked_mul(rows)
        .and_then(|v| v.checked_mul(cols))
        .ok_or_else(|| Error::format(&what, format!("header says {n} images of {rows}×{cols}: too large")))?;
    let body = read_body(reader, path, len, &format!("{n} images of {rows}×{cols} pixels"), 16)?;
    let pixels = Array2::from_shape_vec((n, rows * cols), body).expect("body is N·rows·cols bytes, checked");
    Ok(IdxImages { pixels, image_shape: [rows, cols] })
}

/// Reads an IDX label file (`0x00000801`: unsigned bytes, 1 dimension), plain or `.gz`.
///
/// Errors as for [`read_idx_images`]. The labels' values are not checked here
/// ([`load_mnist_dir`] requires `0..=9`).
///
/// # Shapes
///
/// - returns N labels
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    let what = path.display().to_string();
    let mut reader = open(path)?;
    let header = read_header(&mut reader, path, 8)?;
    check_magic(&header, LABELS_MAGIC, IMAGES_MAGIC, "a label file", &what)?;
    let n = u32::from_be_bytes(header[4..8].try_into().unwrap()) as usize;
    read_body(reader, path, n, &format!("{n} labels"), 8)
}

/// Loads MNIST (or a set in the same format, e.g. Fashion-MNIST) from the four standard files in
/// `dir`: `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
/// `t10k-labels-idx1-ubyte`, each also found as `….gz` or with a dot before `idx`
/// (`train-images.idx3-ubyte`). Grey levels become `k/255` as `f32`.
///
/// Beyond the checks of [`read_idx_images`] and [`read_idx_labels`]: each image file must have as
/// many images as its label file has labels ([`Error::Shape`], naming both files), labels must be
/// in `0..=9` and sets non-empty ([`Error::Format`]), and train and test images must be the same
/// size ([`Error::Shape`]).
///
/// # Shapes
///
/// - `train.images`: N_train×D, `test.images`: N_test×D (60000×784 and 10000×784 for MNIST)
pub fn load_mnist_dir(dir: impl AsRef<Path>) -> Result<DigitSplit> {
    let dir = dir.as_ref();
    let train = load_pair(dir, "train")?;
    let test = load_pair(dir, "t10k")?;
    if train.image_shape != test.image_shape {
        return Err(Error::shape(
            format!("image size of the t10k images vs the train images in {}", dir.display()),
            format!("{:?}", train.image_shape),
            format!("{:?}", test.image_shape),
        ));
    }
    Ok(DigitSplit { train, test })
}

fn load_pair(dir: &Path, set: &str) -> Result<Digits> {
    let images_path = find(dir, set, "images", "idx3")?;
    let labels_path = find(dir, set, "labels", "idx1")?;
    let images = read_idx_images(&images_path)?;
    let labels = read_idx_labels(&labels_path)?;
    if images.pixels.nrows() != labels.len() {
        return Err(Error::shape(
            format!("count of images in {} vs labels in {}", images_path.display(), labels_path.display()),
            format!("{} labels (one per image)", images.pixels.nrows()),
            format!("{} labels", labels.len()),
        ));
    }
    if labels.is_empty() {
        return Err(Error::format(
            images_path.display().to_string(),
            "0 images in the header; need at least 1",
        ));
    }
    if let Some(i) = labels.iter().position(|&l| usize::from(l) >= CLASSES) {
        return Err(Error::format(
            labels_path.display().to_string(),
            format!("label {i} (byte offset {}) is {}, expected 0..=9", 8 + i, labels[i]),
        ));
    }
    let scale: [f32; 256] = std::array::from_fn(|k| k as f32 / 255.0);
    Ok(Digits {
        images: images.pixels.mapv(|k| scale[usize::from(k)]),
        labels,
        image_shape: images.image_shape,
    })
}

/// The first of `set-kind-idxN-ubyte`, `….gz`, `set-kind.idxN-ubyte`, `….gz` that exists in `dir`.
fn find(dir: &Path, set: &str, kind: &str, idx: &str) -> Result<PathBuf> {
    let names = [
        format!("{set}-{kind}-{idx}-ubyte"),
        format!("{set}-{kind}-{idx}-ubyte.gz"),
        format!("{set}-{kind}.{idx}-ubyte"),
        format!("{set}-{kind}.{idx}-ubyte.gz"),
    ];
    names.iter().map(|name| dir.join(name)).find(|p| p.is_file()).ok_or_else(|| {
        Error::io(
            dir.join(&names[0]),
            io::Error::new(io::ErrorKind::NotFound, format!("not found (nor {})", names[1..].join(", "))),
        )
    })
}

fn open(path: &Path) -> Result<Box<dyn Read>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file = io::BufReader::new(file);
    if path.extension().is_some_and(|e| e == "gz") {
        Ok(Box::new(GzDecoder::new(file)))
    } else {
        Ok(Box::new(file))
    }
}

fn read_header(reader: &mut dyn Read, path: &Path, len: usize) -> Result<Vec<u8>> {
    let mut header = Vec::with_capacity(len);
    reader.take(len as u64).read_to_end(&mut header).map_err(|e| Error::io(path, e))?;
    if header.len() < len {
        return Err(Error::format(
            path.display().to_string(),
            format!("truncated: {} bytes, shorter than the {len}-byte header", header.len()),
        ));
    }
    Ok(header)
}

fn check_magic(header: &[u8], expected: u32, other: u32, kind: &str, what: &str) -> Result<()> {
    let magic = u32::from_be_bytes(header[..4].try_into().unwrap());
    if magic == expected {
        return Ok(());
    }
    let hint = if magic == other {
        ": the magic of the other kind of IDX file; are images and labels swapped?"
    } else {
        ""
    };
    Err(Error::format(
        what,
        format!("magic number {magic:#010x}, expected {expected:#010x} for {kind}{hint}"),
    ))
}

/// Reads exactly `len` bytes after the header and checks that nothing follows.
fn read_body(
    reader: Box<dyn Read>,
    path: &Path,
    len: usize,
    promised: &str,
    header: usize,
) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    reader.take(len as u64 + 1).read_to_end(&mut body).map_err(|e| Error::io(path, e))?;
    if body.len() != len {
        let detail = if body.len() < len {
            format!(
                "truncated: the header promises {promised} = {len} bytes after the {header}-byte header, found {}",
                body.len()
            )
        } else {
            format!(
                "bytes after the {promised} the header promises ({len} bytes after the {header}-byte header)"
            )
        };
        return Err(Error::format(path.display().to_string(), detail));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    /// A folder under the system temp dir, removed when dropped.
    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("vaelab-idx-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
        fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn images_bytes(n: u32, rows: u32, cols: u32, first: u8) -> Vec<u8> {
        let mut b = IMAGES_MAGIC.to_be_bytes().to_vec();
        for v in [n, rows, cols] {
            b.extend(v.to_be_bytes());
        }
        b.extend((0..n * rows * cols).map(|i| first.wrapping_add(i as u8)));
        b
    }

    fn labels_bytes(labels: &[u8]) -> Vec<u8> {
        let mut b = LABELS_MAGIC.to_be_bytes().to_vec();
        b.extend((labels.len() as u32).to_be_bytes());
        b.extend(labels);
        b
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// 3 training images and 2 test images of 2×3 pixels (not square, so rows and cols can't be
    /// confused), labels 0..9.
    fn write_set(tmp: &TempDir, gzip: bool) {
        let files = [
            ("train-images-idx3-ubyte", images_bytes(3, 2, 3, 0)),
            ("train-labels-idx1-ubyte", labels_bytes(&[5, 0, 9])),
            ("t10k-images-idx3-ubyte", images_bytes(2, 2, 3, 250)),
            ("t10k-labels-idx1-ubyte", labels_bytes(&[7, 2])),
        ];
        for (name, bytes) in files {
            if gzip {
                std::fs::write(tmp.path(&format!("{name}.gz")), gz(&bytes)).unwrap();
            } else {
                std::fs::write(tmp.path(name), bytes).unwrap();
            }
        }
    }

    fn format_error(e: Error, file: &str, needle: &str) {
        let msg = e.to_string();
        assert!(matches!(e, Error::Format { .. }), "{e:?}");
        assert!(msg.contains(file) && msg.contains(needle), "{msg}");
    }

    #[test]
    fn reads_a_small_set_plain_and_gzipped_alike() {
        for gzip in [false, true] {
            let tmp = TempDir::new(if gzip { "gz" } else { "plain" });
            write_set(&tmp, gzip);
            let s = load_mnist_dir(&tmp.0).unwrap();
            assert_eq!(s.train.images.dim(), (3, 6));
            assert_eq!(s.train.image_shape, [2, 3]);
            assert_eq!(s.train.labels, vec![5, 0, 9]);
            assert_eq!(s.test.labels, vec![7, 2]);
            // Training pixels are the bytes 0, 1, …, 17 in order; test pixels 250, …, 255, 0, …
            assert_eq!(s.train.images[[1, 2]], 8.0 / 255.0);
            assert_eq!(s.test.images[[0, 5]], 1.0);
            assert_eq!(s.test.images[[1, 0]], 0.0);
            assert_eq!(s.train.class_counts()[5], 1);
        }
    }

    #[test]
    fn finds_the_dotted_file_names() {
        let tmp = TempDir::new("dotted");
        write_set(&tmp, false);
        std::fs::rename(tmp.path("t10k-images-idx3-ubyte"), tmp.path("t10k-images.idx3-ubyte")).unwrap();
        assert_eq!(load_mnist_dir(&tmp.0).unwrap().test.labels, vec![7, 2]);
    }

    #[test]
    fn truncated_files_say_how_many_bytes_were_promised_and_found() {
        let tmp = TempDir::new("trunc");
        let p = tmp.path("a-images-idx3-ubyte");
        let full = images_bytes(3, 2, 3, 0);
        std::fs::write(&p, &full[..full.len() - 1]).unwrap();
        format_error(
            read_idx_images(&p).unwrap_err(),
            "a-images-idx3-ubyte",
            "truncated: the header promises 3 images of 2×3 pixels = 18 bytes after the 16-byte header, found 17",
        );
        std::fs::write(&p, &full[..10]).unwrap();
        format_error(
            read_idx_images(&p).unwrap_err(),
            "a-images",
            "truncated: 10 bytes, shorter than the 16-byte header",
        );
        let q = tmp.path("a-labels-idx1-ubyte");
        std::fs::write(&q, &labels_bytes(&[1, 2, 3])[..10]).unwrap();
        format_error(
            read_idx_labels(&q).unwrap_err(),
            "a-labels",
            "promises 3 labels = 3 bytes after the 8-byte header, found 2",
        );
        // Truncated inside a gzip stream: the decoder reports it, as an I/O error on that file.
        let g = tmp.path("a-images-idx3-ubyte.gz");
        let z = gz(&full);
        std::fs::write(&g, &z[..z.len() / 2]).unwrap();
        let e = read_idx_images(&g).unwrap_err();
        assert!(matches!(e, Error::Io { ref path, .. } if path.ends_with("a-images-idx3-ubyte.gz")), "{e:?}");
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let tmp = TempDir::new("trailing");
        let p = tmp.path("x-labels-idx1-ubyte");
        let mut b = labels_bytes(&[1, 2]);
        b.push(3);
        std::fs::write(&p, b).unwrap();
        format_error(
            read_idx_labels(&p).unwrap_err(),
            "x-labels",
            "bytes after the 2 labels the header promises",
        );
    }

    #[test]
    fn wrong_magic_numbers_are_named() {
        let tmp = TempDir::new("magic");
        let p = tmp.path("swapped");
        std::fs::write(&p, labels_bytes(&[1, 2, 3, 4, 5, 6, 7, 8, 9])).unwrap();
        format_error(
            read_idx_images(&p).unwrap_err(),
            "swapped",
            "magic number 0x00000801, expected 0x00000803 for an image file: the magic of the other kind",
        );
        std::fs::write(&p, images_bytes(1, 1, 1, 0)).unwrap();
        format_error(
            read_idx_labels(&p).unwrap_err(),
            "swapped",
            "magic number 0x00000803, expected 0x00000801",
        );
        let mut b = images_bytes(1, 1, 1, 0);
        b[2] = 0x0d; // float elements
        std::fs::write(&p, b).unwrap();
        format_error(
            read_idx_images(&p).unwrap_err(),
            "swapped",
            "magic number 0x00000d03, expected 0x00000803",
        );
        std::fs::write(&p, images_bytes(2, 0, 28, 0)).unwrap();
        format_error(read_idx_images(&p).unwrap_err(), "swapped", "image size in the header is 0×28");
    }

    #[test]
    fn mismatched_counts_name_both_files() {
        let tmp = TempDir::new("count");
        write_set(&tmp, false);
        std::fs::write(tmp.path("train-labels-idx1-ubyte"), labels_bytes(&[1, 2])).unwrap();
        let e = load_mnist_dir(&tmp.0).unwrap_err();
        assert!(matches!(e, Error::Shape { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("train-images-idx3-ubyte vs labels in")
                && msg.contains("train-labels-idx1-ubyte: expected 3 labels (one per image), got 2 labels"),
            "{msg}"
        );
    }

    #[test]
    fn bad_labels_empty_sets_and_size_mismatch_are_errors() {
        let tmp = TempDir::new("labels");
        write_set(&tmp, false);
        std::fs::write(tmp.path("t10k-labels-idx1-ubyte"), labels_bytes(&[7, 10])).unwrap();
        format_error(
            load_mnist_dir(&tmp.0).unwrap_err(),
            "t10k-labels-idx1-ubyte",
            "label 1 (byte offset 9) is 10, expected 0..=9",
        );
        std::fs::write(tmp.path("t10k-labels-idx1-ubyte"), labels_bytes(&[])).unwrap();
        std::fs::write(tmp.path("t10k-images-idx3-ubyte"), images_bytes(0, 2, 3, 0)).unwrap();
        format_error(load_mnist_dir(&tmp.0).unwrap_err(), "t10k-images-idx3-ubyte", "0 images");
        std::fs::write(tmp.path("t10k-labels-idx1-ubyte"), labels_bytes(&[1])).unwrap();
        std::fs::write(tmp.path("t10k-images-idx3-ubyte"), images_bytes(1, 3, 2, 0)).unwrap();
        let e = load_mnist_dir(&tmp.0).unwrap_err();
        assert!(
            matches!(e, Error::Shape { .. }) && e.to_string().contains("expected [2, 3], got [3, 2]"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let tmp = TempDir::new("missing");
        write_set(&tmp, false);
        std::fs::remove_file(tmp.path("t10k-labels-idx1-ubyte")).unwrap();
        let e = load_mnist_dir(&tmp.0).unwrap_err();
        assert!(matches!(e, Error::Io { ref path, .. } if path.ends_with("t10k-labels-idx1-ubyte")), "{e:?}");
        assert!(e.to_string().contains("not found (nor t10k-labels-idx1-ubyte.gz"), "{e}");
    }
}
