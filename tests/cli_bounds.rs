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
    // Under target/ (removed by `cargo clean`), not /tmp, where nothing removed them.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-bounds-{}", std::process::id()));
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

/// `vaelab bounds --json` on a model at one x with extra arguments; the parsed report.
fn bounds_json(model: &str, x: f64, extra: &[&str]) -> serde_json::Value {
    let x = format!("{x:?}");
    let mut args = vec!["bounds", "--model", model, "--x", &x, "--samples", "2000", "--k", "10", "--json"];
    args.extend_from_slice(extra);
    let out = vaelab(&args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn num(v: &serde_json::Value, key: &str) -> f64 {
    let mut at = v;
    for part in key.split('.') {
        at = &at[part];
    }
    at.as_f64().unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

/// Derivation 2 by separate routes: the gap log p(x) − ELBO (Monte Carlo) is within 4 SE of the
/// KL computed directly.
#[track_caller]
fn gap_matches_kl(v: &serde_json::Value) {
    let (gap, kl, se) = (num(v, "gap"), num(v, "kl_q_posterior"), num(v, "elbo.stderr"));
    assert!((gap - kl).abs() <= 4.0 * se, "gap {gap} vs KL {kl} (4 SE = {})\n{v}", 4.0 * se);
}

/// KL(N(μ₁, v₁) ‖ N(μ₂, v₂)) in closed form, from d = μ₁ − μ₂.
fn kl_gauss(d: f64, v1: f64, v2: f64) -> f64 {
    0.5 * (v1 / v2 + d * d / v2 - 1.0 - (v1 / v2).ln())
}

/// The shipped quadratic model (a = 1, c = 0, σ = 0.4) at x = ±1e12 printed named errors ("non-finite
/// value in integrand", "quadrature did not converge") where every answer is finite, and at
/// x = −1e12 with `--q fit` a KL of 0 next to a gap of −1.6e9 (both rounding of numbers near
/// −3e24). Now every number is finite and checked against closed forms that share no code with
/// the crate:
///
/// ```text
/// x = 1e12:  s = x − σ²/2, r = √s, τ = σ/(2r): the posterior is ½N(r, τ²) + ½N(−r, τ²) to a relative
///            w/r ≈ 1e-13 (log p(x, z) − m = −(z² − s)²/(2σ²) = −(z − r)²(2r + w)²/(2σ²), w = z − r), so
///            for q = N(μ, v) near r:  KL(q ‖ p(z|x)) = ln 2 + KL(N(μ, v) ‖ N(r, τ²));
///            log p(x) = m + ln(2√(2π) τ) (Laplace), m = −s/2 − σ²/8 − ½ ln 2π − ½ ln(2πσ²);
///            for q = p(z):  KL = E[log φ] − E[Δ] + ln(2√(2π)τ), E[Δ] = −E[(z² − s)²]/(2σ²) = −(s² − 2s + 3)/(2σ²)
/// x = −1e12: one mode at 0, log p(x, z) − m = −z²(1 − 2x/σ²)/2 − z⁴/(2σ²): N(0, τ²), τ² = 1/(1 − 2x/σ²),
///            the quartic term 1e-26 at z ~ τ
/// ```
/// Tolerances: 1e-8 on KLs of order 1 (the crate's quadratures are good to 1e-10; the Gaussian
/// approximations above to 1e-12); 8 ulps of m for log p(x).
#[test]
fn quadratic_model_at_extreme_x_is_finite_and_matches_closed_forms() {
    let quad = "data/models/quadratic.json";
    let sigma: f64 = 0.4;
    let ln2pi = (2.0 * std::f64::consts::PI).ln();

    // x = 1e12, a given narrow q near the mode r.
    let x = 1e12;
    let s = x - sigma * sigma / 2.0;
    let r = s.sqrt();
    let tau = sigma / (2.0 * r);
    let (mu, lv) = (r + 0.5 * tau, 2.0 * tau.ln() + 0.3);
    // μ − r to full precision: (μ² − s)/(μ + r), μ² − 1e12 by one fused multiply-add.
    let offset = (mu.mul_add(mu, -x) + sigma * sigma / 2.0) / (mu + r);
    let v = bounds_json(quad, x, &["--q-mean", &format!("{mu:?}"), "--q-log-var", &format!("{lv:?}")]);
    let kl = std::f64::consts::LN_2 + kl_gauss(offset, lv.exp(), tau * tau);
    assert!((num(&v, "kl_q_posterior") - kl).abs() < 1e-8, "KL {} vs {kl}\n{v}", num(&v, "kl_q_posterior"));
    gap_matches_kl(&v);
    let m = -s / 2.0 - sigma * sigma / 8.0 - 0.5 * ln2pi - 0.5 * (ln2pi + (sigma * sigma).ln());
    let laplace = m + (2.0 * (2.0 * std::f64::consts::PI).sqrt() * tau).ln();
    assert!((num(&v, "log_px") - laplace).abs() <= 8.0 * f64::EPSILON * m.abs(), "{v}");

    // x = 1e12, q = the prior: the KL from the prior's moments (relative 1e-12: it is 3e24).
    let v = bounds_json(quad, x, &["--q", "prior"]);
    let e_delta = -(s * s - 2.0 * s + 3.0) / (2.0 * sigma * sigma);
    let kl = -0.5 * ln2pi - 0.5 - e_delta + (2.0 * (2.0 * std::f64::consts::PI).sqrt() * tau).ln();
    assert!((num(&v, "kl_q_posterior") / kl - 1.0).abs() < 1e-12, "{v}");
    gap_matches_kl(&v);

    // x = −1e12, a given q near the single mode at 0.
    let x = -1e12;
    let tau2 = 1.0 / (1.0 - 2.0 * x / (sigma * sigma));
    let (mu, lv) = (0.3 * tau2.sqrt(), tau2.ln() - 0.4);
    let v = bounds_json(quad, x, &["--q-mean", &format!("{mu:?}"), "--q-log-var", &format!("{lv:?}")]);
    let kl = kl_gauss(mu, lv.exp(), tau2);
    assert!((num(&v, "kl_q_posterior") - kl).abs() < 1e-8, "KL {} vs {kl}\n{v}", num(&v, "kl_q_posterior"));
    gap_matches_kl(&v);

    // --q fit: the fitted Gaussian sits on one mode (x = 1e12: KL ≥ ln 2, the other mode's half
    // of the posterior) or on the single one (x = −1e12: KL ≥ 0), within 0.01 of the bound.
    for (x, floor) in [(1e12, std::f64::consts::LN_2), (-1e12, 0.0)] {
        for family in ["diag", "full"] {
            let v = bounds_json(quad, x, &["--q", "fit", "--family", family]);
            let kl = num(&v, "kl_q_posterior");
            assert!(kl >= floor - 1e-9 && kl < floor + 0.01, "x = {x:e}, {family}: KL {kl}\n{v}");
            gap_matches_kl(&v);
            for key in [
                "elbo.mean",
                "elbo.stderr",
                "elbo_analytic_kl.mean",
                "elbo_analytic_kl.stderr",
                "iwae.mean",
                "iwae.stderr",
                "log_px",
            ] {
                assert!(num(&v, key).is_finite(), "{key}\n{v}");
            }
        }
    }
}

/// a = 0 at x = 1e12: p(x) = N(x; 0, σ²) and p(z|x) = p(z) exactly, so for any q the KL is
/// KL(q ‖ N(0, 1)) in closed form; log p(x) ≈ −3e24 has an ulp of 5e8 nats, in which the ELBO's
/// per-draw terms of a few nats were lost (a gap of 0 ± 0 or a multiple of 5e8).
#[test]
fn a_model_blind_to_z_far_from_c_keeps_the_gap() {
    let model = model_file("blind.json", r#"{"kind": "quadratic", "a": [0.0], "c": [0.0], "sigma": 0.4}"#);
    let model = model.display().to_string();
    let x: f64 = 1e12;
    let v = bounds_json(&model, x, &["--q-mean", "3", "--q-log-var", "0.5"]);
    let log_px = -x * x / (2.0 * 0.16) - 0.5 * (2.0 * std::f64::consts::PI * 0.16).ln();
    assert!((num(&v, "log_px") - log_px).abs() <= 8.0 * f64::EPSILON * log_px.abs(), "{v}");
    let kl = 0.5 * (0.5f64.exp() + 9.0 - 1.0 - 0.5);
    assert!((num(&v, "kl_q_posterior") - kl).abs() < 1e-8, "{v}");
    // The spread of log p(z) − log q(z) under q (sd ≈ 4, so SE ≈ 0.09 at N = 2000) survives.
    assert!(num(&v, "elbo.stderr") > 0.04, "{v}");
    gap_matches_kl(&v);
}

/// At x = 3e17 (σ = 0.4) the posterior's peaks are 1.2e-9 wide at z = 5.5e8, where f64's steps are
/// 6e-8: no Gaussian q there can be sampled. One line saying so, not numbers from a few repeated draws.
#[test]
fn a_posterior_narrower_than_f64_resolves_is_refused_in_one_line() {
    let out = vaelab(&["bounds", "--model", "data/models/quadratic.json", "--x", "3e17", "--q", "fit"]);
    assert_fails(
        &out,
        &["invalid q = N(μ = 5.477", "below 64 ulps of its mean", "cannot be told apart in f64"],
    );
}
