//! File output that never leaves a torn file: every file the crate writes (checkpoints, metrics,
//! pages) goes through [`write_atomically`].

use std::path::Path;

use crate::base::error::{Error, Result};

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a reader
/// never sees half a file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let file_name =
        path.file_name().ok_or_else(|| Error::format(path.display().to_string(), "not a file path"))?;
    let tmp = dir.join(format!(".{}.tmp{}", file_name.to_string_lossy(), std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}
