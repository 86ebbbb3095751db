//! Runs the `vaelab` binary: train on a tiny configuration, evaluate the checkpoint, and check
//! that bad input gives one line on stderr and exit code 2.

use std::process::Command;

mod common;
use common::estimate;

fn vaelab(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vaelab")).args(args).output().expect("run vaelab")
}

#[test]
fn train_then_eval_a_tiny_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    let o = vaelab(&[
        "train",
        "--data",
        "prototypes",
        "--epochs",
        "2",
        "--latent",
        "2",
        "--hidden",
        "16",
        "--batch",
        "64",
        "--seed",
        "3",
        "--out",
        out_s,
    ]);
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    for f in ["metrics.csv", "metrics.json", "checkpoint.safetensors", "report.html"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "header + one line per epoch:\n{csv}");
    // metrics.json reads back (no NaN SE written as null), and its test means are the CSV's columns.
    let history: Vec<vaelab::engine::train::EpochMetrics> =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    for (m, line) in history.iter().zip(csv.lines().skip(1)) {
        let cols: Vec<f64> = line.split(',').map(|c| c.parse().unwrap()).collect();
        let t = m.test.unwrap();
        // serde_json's default float parser may be 1 ulp off the shortest round-trip text: 1e-15 relative.
        for (c, v) in [cols[6], cols[7], cols[8]].iter().zip([t.elbo.mean, t.rate.mean, t.distortion.mean]) {
            assert!((c - v).abs() <= 1e-15 * v.abs(), "{line}: {c} vs {v}");
        }
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(
        html.matches("class=\"vaelab-plot\"").count(),
        3,
        "reconstructions, prior samples, learning curves"
    );

    let ckpt = out.join("checkpoint.safetensors");
    let o = vaelab(&[
        "eval",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--data",
        "prototypes",
        "--k",
        "20",
        "--limit",
        "30",
        "--json",
        "--amortisation-points",
        "3",
        "--amortisation-steps",
        "50",
    ]);
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["n"], 30);
    assert_eq!(report["k"], 20);
    let (ll, elbo) = (estimate(&report["log_likelihood"]), estimate(&report["test"]["elbo"]));
    // Both are negative log-probabilities of 784 binary pixels; finite and below 0.
    assert!(ll.is_finite() && ll < 0.0 && elbo < 0.0, "{report}");
    // The amortisation gap: 3 points, each with both ELBOs and their difference.
    let a = &report["amortisation"];
    assert_eq!(a["points"].as_array().unwrap().len(), 3, "{a}");
    assert_eq!(a["fit_steps"], 50);
    let (fitted, encoder, gap) =
        (estimate(&a["fitted_elbo"]), estimate(&a["encoder_elbo"]), estimate(&a["gap"]));
    assert!((fitted - encoder - gap).abs() < 1e-9 && encoder < 0.0, "{a}");
    // One test point has no standard error: one line on stderr, exit code 2 (not a NaN in the JSON).
    let o = vaelab(&["eval", "--checkpoint", ckpt.to_str().unwrap(), "--data", "prototypes", "--limit", "1"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("invalid limit = 1: must be >= 2"), "{err}");
    let o = vaelab(&[
        "eval",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--data",
        "prototypes",
        "--amortisation-points",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid amortisation_points = 1"));
}

#[test]
fn train_then_eval_with_a_learned_mixture_prior() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mog");
    let out_s = out.to_str().unwrap();
    let o = vaelab(&[
        "train",
        "--data",
        "prototypes",
        "--epochs",
        "2",
        "--latent",
        "2",
        "--hidden",
        "16",
        "--batch",
        "64",
        "--prior",
        "mog:3",
        "--seed",
        "3",
        "--out",
        out_s,
    ]);
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    let ckpt = out.join("checkpoint.safetensors");
    let o = vaelab(&[
        "eval",
        "--checkpoint",
        ckpt.to_str().unwrap(),
        "--data",
        "prototypes",
        "--k",
        "20",
        "--limit",
        "30",
        "--json",
    ]);
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (ll, elbo) = (estimate(&report["log_likelihood"]), estimate(&report["test"]["elbo"]));
    assert!(ll.is_finite() && ll < 0.0 && elbo < 0.0, "{report}");
    // The mixture's KL does not split by unit.
    assert_eq!(report["kl_per_unit"].as_array().unwrap().len(), 0, "{report}");
    // Free bits with a mixture prior: refused, one line, exit code 2.
    let o =
        vaelab(&["train", "--data", "prototypes", "--prior", "mog:3", "--free-bits", "0.5", "--out", out_s]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not supported with a learned mixture prior"));
    let o = vaelab(&["train", "--prior", "mog:0", "--out", out_s]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("expected `normal` or `mog:K`"));
}

#[test]
fn bad_input_is_one_line_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.safetensors");
    let o = vaelab(&["eval", "--checkpoint", missing.to_str().unwrap(), "--k", "5"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("vaelab: ") && err.contains("nope.safetensors"), "{err}");

    let corrupt = dir.path().join("corrupt.safetensors");
    std::fs::write(&corrupt, b"not a checkpoint").unwrap();
    let o = vaelab(&["eval", "--checkpoint", corrupt.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&o.stderr).lines().count(), 1);

    let o = vaelab(&[
        "train",
        "--data",
        "prototypes",
        "--epochs",
        "1",
        "--latent",
        "0",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&o.stderr).trim(), "vaelab: invalid latent_dim = 0: must be >= 1");

    // clap's own usage errors also exit with 2.
    let o = vaelab(&["train", "--epochs", "many"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_run_that_diverges_on_its_last_step_writes_nothing_over_a_good_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let out_s = out.to_str().unwrap();
    let train = |lr: &str| {
        vaelab(&[
            "train",
            "--data",
            "prototypes",
            "--epochs",
            "1",
            "--latent",
            "2",
            "--hidden",
            "8",
            "--batch",
            "1000",
            "--lr",
            lr,
            "--out",
            out_s,
        ])
    };
    let o = train("1e-3");
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    let files = ["metrics.csv", "metrics.json", "checkpoint.safetensors", "report.html"];
    let before: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(out.join(f)).unwrap()).collect();
    // 1,000 rows in one batch: one step, the last, whose update overflows f32.
    let o = train("1e39");
    assert_eq!(o.status.code(), Some(2), "stdout: {}", String::from_utf8_lossy(&o.stdout));
    let err = String::from_utf8_lossy(&o.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(last.starts_with("vaelab: non-finite ") && last.contains("at epoch 1, step 1"), "{err}");
    for (f, b) in files.iter().zip(&before) {
        assert!(&std::fs::read(out.join(f)).unwrap() == b, "{f} was overwritten");
    }
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), files.len(), "no temporary file left");
}

#[test]
fn out_naming_a_file_is_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("run");
    std::fs::write(&file, b"keep me").unwrap();
    let cli = <vaelab::cli::Cli as clap::Parser>::try_parse_from([
        "vaelab",
        "train",
        "--data",
        "prototypes",
        "--epochs",
        "1",
        "--latent",
        "2",
        "--hidden",
        "8",
        "--out",
        file.to_str().unwrap(),
    ])
    .unwrap();
    let vaelab::cli::Command::Train(args) = cli.command else { unreachable!() };
    let mut epochs = 0;
    let e = vaelab::cli::run_train(&args, |_| epochs += 1).unwrap_err().to_string();
    assert_eq!(epochs, 0, "training ran before the refusal");
    assert_eq!(
        e,
        format!("invalid out = {}: is not a folder (--out names the output folder)", file.display())
    );
    assert_eq!(e.lines().count(), 1);
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}
