//! Helpers shared by the CLI integration tests.

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
