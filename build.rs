//! Computes the engine version of the trained-model store (`src/engine/store.rs`): a 64-bit FNV-1a
//! hash over every file of `src/engine/` and `src/base/` (path, length, bytes, in sorted order),
//! `Cargo.lock` (the versions of rand, ndarray, … that training draws and computes with), this
//! script and the target triple. Any edit to the training code changes it, so a stored model is
//! never reused by a build whose training could give other numbers; nobody has to remember to bump
//! a constant. Exported as the compile-time variable `VAELAB_ENGINE_VERSION`.

use std::path::{Path, PathBuf};

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(hash, |h, &b| (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3))
}

fn main() {
    let mut files = Vec::new();
    for dir in ["src/engine", "src/base"] {
        println!("cargo:rerun-if-changed={dir}");
        walk(Path::new(dir), &mut files);
    }
    for f in ["Cargo.lock", "build.rs"] {
        println!("cargo:rerun-if-changed={f}");
        files.push(PathBuf::from(f));
    }
    files.sort();
    let mut h = 0xcbf2_9ce4_8422_2325;
    for f in &files {
        // Path separators normalised so the same sources hash the same on every platform.
        let name = f.to_string_lossy().replace('\\', "/");
        let bytes = std::fs::read(f).unwrap_or_default();
        h = fnv1a(h, &(name.len() as u64).to_le_bytes());
        h = fnv1a(h, name.as_bytes());
        h = fnv1a(h, &(bytes.len() as u64).to_le_bytes());
        h = fnv1a(h, &bytes);
    }
    h = fnv1a(h, std::env::var("TARGET").unwrap_or_default().as_bytes());
    println!("cargo:rustc-env=VAELAB_ENGINE_VERSION={h:016x}");
}
