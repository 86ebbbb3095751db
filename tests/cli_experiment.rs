//! Runs `vaelab experiment ...`: each experiment writes NAME.json and an offline NAME.html, and a bad
//! argument is one line on stderr with exit code 2.

use std::process::Command;

fn vaelab(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vaelab")).args(args).output().expect("run vaelab")
}

fn read_json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn rate_distortion_writes_json_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = vaelab(&["experiment", "rate-distortion", "--out", out, "--betas", "0.5,4", "--epochs", "2"]);
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    let v = read_json(&dir.path().join("rate-distortion.json"));
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(points[0]["beta"], 0.5);
    assert_eq!(points[1]["beta"], 4.0);
    for p in points {
        for key in ["rate", "distortion", "slack", "rate_se"] {
            assert!(p[key].as_f64().unwrap().is_finite(), "{key} in {p}");
        }
    }
    let html = std::fs::read_to_string(dir.path().join("rate-distortion.html")).unwrap();
    assert_eq!(html.matches("class=\"vaelab-plot\"").count(), 3, "three plots on the page");
    assert!(!html.contains("<script src="), "plotly.js is inlined, not loaded from the network");
}

#[test]
fn bad_beta_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = vaelab(&["experiment", "rate-distortion", "--out", dir.path().to_str().unwrap(), "--betas=-1"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("betas[0]"), "stderr names the bad value: {err}");
}

#[test]
fn minimal_representation_writes_json_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let args =
        ["experiment", "minimal-representation", "--out", out, "--latent-dims", "2,3", "--epochs", "1"];
    let o =
        vaelab(&[&args[..], &["--digit-epochs", "1", "--digit-latent", "4", "--digit-test", "50"]].concat());
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    let v = read_json(&dir.path().join("minimal-representation.json"));
    let points = v["blobs"]["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    for (p, z) in points.iter().zip([2, 3]) {
        assert_eq!(p["latent_dim"], z);
        let report = &p["report"];
        let count = report["active"]["count"].as_u64().unwrap();
        assert!(count <= z, "{count} active of {z}");
        assert_eq!(report["kl_per_unit"].as_array().unwrap().len(), z as usize);
        assert_eq!(p["factor_correlation"].as_array().unwrap().len(), z as usize);
        assert!(report["elbo"].as_f64().unwrap().is_finite());
    }
    assert_eq!(v["blobs"]["factor_names"], serde_json::json!(["x", "y", "width"]));
    assert_eq!(v["digits"]["latent_dim"], 4);
    let html = std::fs::read_to_string(dir.path().join("minimal-representation.html")).unwrap();
    // KL bars, active units vs Z, the traversal grid, the digits' units.
    assert_eq!(html.matches("class=\"vaelab-plot\"").count(), 4);
    assert!(!html.contains("<script src="), "plotly.js is inlined, not loaded from the network");
}

#[test]
fn zero_latent_size_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = vaelab(&[
        "experiment",
        "minimal-representation",
        "--out",
        out,
        "--latent-dims",
        "2,0",
        "--digit-epochs",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("latent_dims[1]"), "stderr names the bad value: {err}");
}
