//! `vaelab bounds` run as a user would: the example model files, the JSON keys, and bad input.

use std::path::PathBuf;
use std::process::{Command, Output};

fn vaelab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vaelab"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run vaelab")
}

fn model_file(name: &str, body: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vaelab-cli-bounds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

/// Exit code 2, exactly one line on stderr, starting `vaelab: ` and containing every `needle`.
#[track_caller]
fn assert_fails(out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(err.starts_with("vaelab: ") && err.trim_end().lines().count() == 1, "one line: {err:?}");
    for n in needles {
        assert!(err.contains(n), "{err:?} should mention {n:?}");
    }
    assert!(out.stdout.is_empty());
}

#[test]
fn every_example_model_prints_exactly_the_documented_keys() {
    let runs = [
        ("data/models/linear_gaussian.json", "1.2,0.4,-0.5", "posterior"),
        ("data/models/mixture.json", "0.2,0.1", "prior"),
        ("data/models/binary_latent.json", "1,0,1", "prior"),
        ("data/models/quadratic.json", "1.5", "fit"),
    ];
    for (model, x, q) in runs {
        let out = vaelab(&[
            "bounds",
            "--model",
            model,
            "--x",
            x,
            "--q",
            q,
            "--samples",
            "500",
            "--k",
            "5",
            "--seed",
            "1",
            "--json",
        ]);
        assert!(out.status.success(), "{model}: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let obj = v.as_object().unwrap();
        let mut keys: Vec<_> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["elbo", "elbo_analytic_kl", "gap", "iwae", "kl_q_posterior", "log_px"], "{model}");
        for e in ["elbo", "elbo_analytic_kl"] {
            let mut k: Vec<_> = v[e].as_object().unwrap().keys().map(String::as_str).collect();
            k.sort_unstable();
            assert_eq!(k, ["mean", "samples", "stderr"]);
            assert_eq!(v[e]["samples"], 500);
        }
        let mut k: Vec<_> = v["iwae"].as_object().unwrap().keys().map(String::as_str).collect();
        k.sort_unstable();
        assert_eq!(k, ["k", "mean", "samples", "stderr"]);
        assert_eq!(v["iwae"]["k"], 5);
        let (log_px, elbo, gap) =
            (v["log_px"].as_f64().unwrap(), v["elbo"]["mean"].as_f64().unwrap(), v["gap"].as_f64().unwrap());
        // Equal up to the last digit JSON keeps (serde_json prints the shortest round-trip form).
        assert!(
            (gap - (log_px - elbo)).abs() <= 1e-14 * log_px.abs().max(1.0),
            "{model}: gap = log_px − elbo.mean"
        );
        assert!(v["kl_q_posterior"].is_number(), "{model}: exact KL for these models");
    }
    // Same seed, same numbers.
    let a =
        vaelab(&["bounds", "--model", "data/models/mixture.json", "--x", "0.2,0.1", "--seed", "3", "--json"]);
    let b =
        vaelab(&["bounds", "--model", "data/models/mixture.json", "--x", "0.2,0.1", "--seed", "3", "--json"]);
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn table_output_and_given_q() {
    let out = vaelab(&[
        "bounds",
        "--model",
        "data/models/linear_gaussian.json",
        "--x",
        "1.2,0.4,-0.5",
        "--q-mean",
        "0.3,0.2",
        "--q-log-var",
        "-1,-1.5",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    for line in [
        "log p(x)",
        "ELBO = E_q[log p(x,z) − log q(z|x)]",
        "IWAE L_10",
        "KL(q ‖ p(z|x))",
        "gap = log p(x) − ELBO",
    ] {
        assert!(text.contains(line), "{text}");
    }
}

#[test]
fn bad_input_is_one_line_naming_the_field_with_exit_code_2() {
    let lg = "data/models/linear_gaussian.json";
    assert_fails(&vaelab(&["bounds", "--model", lg, "--x", "1.0,2.0"]), &["x", "length 3", "length 2"]);
    assert_fails(&vaelab(&["bounds", "--model", lg, "--x", "1.0,abc,2"]), &["x[1]", "\"abc\""]);
    assert_fails(&vaelab(&["bounds", "--model", lg, "--x", "1,2,3", "--samples", "0"]), &["samples = 0"]);
    assert_fails(&vaelab(&["bounds", "--model", lg, "--x", "1,2,3", "--k", "0"]), &["k = 0"]);
    assert_fails(
        &vaelab(&["bounds", "--model", lg, "--x", "1,2,3", "--q-mean", "0", "--q-log-var", "0"]),
        &["q", "latent dimension 2"],
    );
    assert_fails(
        &vaelab(&["bounds", "--model", "data/models/quadratic.json", "--x", "1", "--q", "posterior"]),
        &["no closed form"],
    );
    assert_fails(&vaelab(&["bounds", "--model", "no/such/file.json", "--x", "1"]), &["no/such/file.json"]);

    let cases = [
        ("malformed.json", r#"{"kind": "linear_gaussian", "w": [[1.0]], "b": [0.0], "sigma": 1.0"#.to_string(), "1", vec!["malformed.json", "EOF"]),
        ("missing.json", r#"{"kind": "linear_gaussian", "w": [[1.0]], "b": [0.0]}"#.into(), "1", vec!["missing field `sigma`"]),
        ("sigma.json", r#"{"kind": "linear_gaussian", "w": [[1.0]], "b": [0.0], "sigma": -0.5}"#.into(), "1", vec!["sigma = -0.5"]),
        ("dims.json", r#"{"kind": "linear_gaussian", "w": [[1.0], [2.0]], "b": [0.0], "sigma": 1}"#.into(), "1,2", vec!["b", "length 1"]),
        (
            "weights.json",
            r#"{"kind": "mixture", "weights": [0.5, 0.6], "means": [[0.0], [1.0]], "sigmas": [[1.0], [1.0]]}"#.into(),
            "0",
            vec!["weights", "sum 1.1"],
        ),
        (
            "binary.json",
            format!(r#"{{"kind": "binary_latent", "prior": [{}], "w": [[{}]], "b": [0.0]}}"#, vec!["0.5"; 21].join(","), vec!["0"; 21].join(",")),
            "1",
            vec!["21 binary latents", "at most 20"],
        ),
        ("kind.json", r#"{"kind": "flow"}"#.into(), "1", vec!["unknown variant `flow`"]),
        ("nonfinite.json", r#"{"kind": "quadratic", "a": [1e999], "c": [0.0], "sigma": 1}"#.into(), "1", vec!["number out of range"]),
        ("tiny.json", r#"{"kind": "quadratic", "a": [1.0], "c": [0.0], "sigma": 1e-320}"#.into(), "1", vec!["sigma = 1e-320", "≥ 1e-6"]),
    ];
    for (name, body, x, needles) in cases {
        let path = model_file(name, &body);
        assert_fails(&vaelab(&["bounds", "--model", path.to_str().unwrap(), "--x", x]), &needles);
    }
}

/// Output into a pipe whose reader has gone (`vaelab bounds … | head -0`) ends the command quietly
/// with status 141 (as SIGPIPE would), not with a panic (exit 101) or an error line.
#[test]
fn a_closed_output_pipe_ends_quietly() {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader); // every write to `writer` now fails with EPIPE
    let out = Command::new(env!("CARGO_BIN_EXE_vaelab"))
        .args(["bounds", "--model", "data/models/mixture.json", "--x", "0.2,0.1", "--seed", "3"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(writer)
        .output()
        .expect("run vaelab");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "stderr: {stderr}");
    assert!(stderr.is_empty(), "stderr: {stderr}");
}
