//! Helpers shared by the CLI integration tests (each test file uses some of them).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs the `vaelab` binary with `args`.
pub fn vaelab<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    // Models the commands train are stored under target/, not in the checkout's build/models/.
    let store = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("models");
    Command::new(env!("CARGO_BIN_EXE_vaelab"))
        .args(args)
        .env("VAELAB_MODEL_STORE", store)
        .output()
        .expect("run vaelab")
}

/// The argv of a tiny `vaelab train` into `out`: 1 epoch on the prototypes, Z = 2, H = 8, seed 3,
/// with `options` (`("epochs", "2")`, …) replacing these values or added after them.
pub fn tiny_train_argv(out: &Path, options: &[(&str, &str)]) -> Vec<String> {
    let mut pairs: Vec<(String, String)> =
        [("data", "prototypes"), ("epochs", "1"), ("latent", "2"), ("hidden", "8"), ("seed", "3")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    pairs.push(("out".into(), out.display().to_string()));
    for (k, v) in options {
        match pairs.iter_mut().find(|(name, _)| name == k) {
            Some(pair) => pair.1 = v.to_string(),
            None => pairs.push((k.to_string(), v.to_string())),
        }
    }
    let mut argv = vec!["train".to_string()];
    for (k, v) in pairs {
        argv.extend([format!("--{k}"), v]);
    }
    argv
}

/// Trains [`tiny_train_argv`]`(out, options)` and returns the checkpoint's path; panics with
/// vaelab's stderr if training fails.
pub fn tiny_checkpoint(out: &Path, options: &[(&str, &str)]) -> std::path::PathBuf {
    let o = vaelab(&tiny_train_argv(out, options)[..]);
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    out.join("checkpoint.safetensors")
}

/// The mean of an `Estimate` in JSON, after checking it is exactly `{"mean", "stderr", "samples"}`
/// with a finite mean, a finite SE ≥ 0 and at least 2 samples.
pub fn estimate(v: &serde_json::Value) -> f64 {
    let keys: Vec<&str> =
        v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().map(|k| k.as_str()).collect();
    assert_eq!(keys, ["mean", "samples", "stderr"], "{v}");
    let (mean, stderr) = (v["mean"].as_f64().unwrap(), v["stderr"].as_f64().unwrap());
    assert!(mean.is_finite() && stderr.is_finite() && stderr >= 0.0, "{v}");
    assert!(v["samples"].as_u64().unwrap() >= 2, "{v}");
    mean
}
