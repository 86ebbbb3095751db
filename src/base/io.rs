//! File output that never leaves a torn file: every file the crate writes (checkpoints, metrics,
//! pages) goes through [`write_atomically`].

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::base::error::{Error, Result};

/// Numbers the temporary files of this process, so two threads writing the same file at once
/// never share a temporary file.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` through a temporary file in the same folder (unique to this process
/// and call) and a rename, so a reader never sees half a file; of two concurrent writers of the same
/// path, the last rename wins.
///
/// # Errors
/// `Io` naming `path` (never the temporary file, which is removed if the write or the rename
/// fails, so `path`'s folder is left as it was).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let file_name =
        path.file_name().ok_or_else(|| Error::format(path.display().to_string(), "not a file path"))?;
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{}.tmp{}-{n}", file_name.to_string_lossy(), std::process::id()));
    if let Err(e) = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path)) {
        // Best effort: the temporary file may not exist (its creation failed).
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_names_the_destination_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // A folder where the file should go: the temporary file is written, the rename fails.
        let path = dir.path().join("metrics.csv");
        std::fs::create_dir(&path).unwrap();
        let e = write_atomically(&path, b"epoch\n").unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: ", path.display())), "{e}");
        assert!(!e.contains(".metrics.csv.tmp"), "{e}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|f| f.unwrap().file_name()).collect();
        assert_eq!(left, ["metrics.csv"], "a temporary file was left behind");

        let ok = dir.path().join("ok.csv");
        write_atomically(&ok, b"1").unwrap();
        assert_eq!(std::fs::read(&ok).unwrap(), b"1");
    }
}
