//! Runs `vaelab experiment ...`: each experiment writes NAME.json and an offline NAME.html, and a bad
//! argument is one line on stderr with exit code 2.

mod common;
use common::{estimate, vaelab};

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
        for key in ["rate", "distortion", "slack"] {
            estimate(&p[key]);
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
fn minibatch_writes_json_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = vaelab(&[
        "experiment",
        "minibatch",
        "--out",
        out,
        "--batches",
        "32",
        "--epochs",
        "1",
        "--train",
        "128",
        "--test",
        "50",
        "--noise-n",
        "32",
        "--noise-repeats",
        "10",
        "--noise-epochs",
        "1",
    ]);
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    let v = read_json(&dir.path().join("minibatch.json"));
    let runs = v["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "one run per scheme");
    let schemes: Vec<&str> = runs.iter().map(|r| r["weights"].as_str().unwrap()).collect();
    assert_eq!(schemes, ["per_example", "uniform", "blundell"]);
    for r in runs {
        assert_eq!(r["batches_per_epoch"], 4);
        for key in ["elbo", "rate", "distortion"] {
            estimate(&r["test"][key]);
        }
    }
    // 128 rows in batches of 32: Blundell's first batch has β₁ = π₁ N/B = (8/15) · 4.
    assert!((runs[2]["first_beta"].as_f64().unwrap() - 32.0 / 15.0).abs() < 1e-12);
    let noise = &v["noise"];
    assert_eq!(noise["batch_sizes"], serde_json::json!([1, 2, 4, 8, 16, 32]));
    assert_eq!(noise["recon"].as_array().unwrap().len(), 6);
    let html = std::fs::read_to_string(dir.path().join("minibatch.html")).unwrap();
    assert_eq!(html.matches("class=\"vaelab-plot\"").count(), 3, "three plots on the page");
}

#[test]
fn minibatch_bad_noise_size_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = vaelab(&[
        "experiment",
        "minibatch",
        "--out",
        dir.path().to_str().unwrap(),
        "--train",
        "100",
        "--noise-n",
        "500",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("noise_n"), "stderr names the bad value: {err}");
}

#[test]
fn collapses_writes_json_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = vaelab(&[
        "experiment",
        "collapses",
        "--out",
        out,
        "--betas",
        "0.1,100",
        "--epochs",
        "1",
        "--n-train",
        "200",
        "--n-test",
        "40",
        "--n-is",
        "10",
        "--k",
        "4",
    ]);
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    let v = read_json(&dir.path().join("collapses.json"));
    let points = v["sweep"]["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(points[1]["beta"], 100.0);
    for p in points.iter().chain(v["remedies"]["points"].as_array().unwrap()) {
        for key in ["rate", "marginal_kl", "is_log_likelihood", "reconstruction_rms"] {
            estimate(&p[key]);
        }
        assert!(p["encoder_sigma"].as_f64().unwrap().is_finite(), "encoder_sigma in {p}");
    }
    assert_eq!(v["remedies"]["points"].as_array().unwrap().len(), 3);
    estimate(&v["independent_pixels"]["points"][0]["exact_minus_is"]);
    let html = std::fs::read_to_string(dir.path().join("collapses.html")).unwrap();
    assert_eq!(html.matches("class=\"vaelab-plot\"").count(), 7, "seven plots on the page");
    assert!(!html.contains("<script src="), "plotly.js is inlined, not loaded from the network");
}

#[test]
fn collapses_bad_budget_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = vaelab(&["experiment", "collapses", "--out", dir.path().to_str().unwrap(), "--n-is", "900"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("n_is = 900"), "stderr names the bad value: {err}");
}

#[test]
fn cvae_writes_json_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = vaelab(&[
        "experiment",
        "cvae",
        "--out",
        out,
        "--epochs",
        "1",
        "--n-train",
        "300",
        "--n-test",
        "20",
        "--hidden",
        "16",
        "--latent",
        "2",
        "--k",
        "4",
        "--columns",
        "3",
    ]);
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    let v = read_json(&dir.path().join("cvae.json"));
    let models = v["models"].as_array().unwrap();
    let kinds: Vec<&str> = models.iter().map(|m| m["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["unconditional", "fixed_prior", "learned_prior"]);
    for m in models {
        for key in ["elbo", "kl", "log_px"] {
            estimate(&m[key]);
        }
        assert_eq!(m["kl_per_example"].as_array().unwrap().len(), 20);
    }
    assert!(models[0]["log_px_given_c"].is_null(), "the VAE has no P(x|c)");
    for m in &models[1..] {
        // log P(x|c) − log P(x) = log P(c|x) − log P(c) ≤ −log P(c) = log 10 for balanced classes.
        let told = estimate(&m["label_information"]);
        assert!(told <= 10f64.ln() + 1e-9, "{told}");
    }
    assert_eq!(v["learned_prior"].as_array().unwrap().len(), 10, "one Gaussian per class");
    let changes = v["grid_changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "one per CVAE");
    for g in changes {
        assert!(g["by_class"].as_f64().unwrap() >= 0.0 && g["by_noise"].as_f64().unwrap() > 0.0, "{g}");
    }
    let html = std::fs::read_to_string(dir.path().join("cvae.html")).unwrap();
    assert_eq!(
        html.matches("class=\"vaelab-plot\"").count(),
        4,
        "two grids, the KL histogram, the prior means"
    );
}

#[test]
fn cvae_bad_size_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = vaelab(&["experiment", "cvae", "--out", dir.path().to_str().unwrap(), "--n-test", "1"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("n_test"), "stderr names the bad value: {err}");
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
        estimate(&report["elbo"]);
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

#[test]
fn prior_writes_json_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = vaelab(&[
        "experiment",
        "prior",
        "--out",
        out,
        "--epochs",
        "1",
        "--components",
        "3",
        "--k",
        "5",
        "--test",
        "50",
    ]);
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    let v = read_json(&dir.path().join("prior.json"));
    let models = v["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    assert_eq!(models[1]["name"], "mixture K = 3");
    for m in models {
        for key in ["mutual_information", "marginal_kl", "sum"] {
            estimate(&m["surgery"][key]);
        }
        assert!(m["surgery"]["log_n"].as_f64().unwrap().is_finite(), "log_n in {m}");
        // Î ≤ log N holds draw by draw (q_agg(z) ≥ q(z|x_n)/N), so with no tolerance beyond
        // rounding (prior::ElboSurgery::information_within_bound allows 1e-12).
        let (i, log_n) =
            (estimate(&m["surgery"]["mutual_information"]), m["surgery"]["log_n"].as_f64().unwrap());
        assert!(i <= log_n + 1e-12, "I = {i} > log N = {log_n}");
        estimate(&m["is_log_likelihood"]);
        estimate(&m["elbo"]["elbo"]);
    }
    estimate(&v["elbo_difference"]);
    estimate(&v["log_likelihood_difference"]);
    let weights: Vec<f64> =
        v["mixture_weights"].as_array().unwrap().iter().map(|w| w.as_f64().unwrap()).collect();
    assert_eq!(weights.len(), 3);
    assert!((weights.iter().sum::<f64>() - 1.0).abs() < 1e-12, "softmax weights sum to 1: {weights:?}");
    let html = std::fs::read_to_string(dir.path().join("prior.html")).unwrap();
    assert_eq!(html.matches("class=\"vaelab-plot\"").count(), 2, "two plots on the page");
}

#[test]
fn prior_zero_components_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = vaelab(&["experiment", "prior", "--out", dir.path().to_str().unwrap(), "--components", "0"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("components"), "stderr names the bad value: {err}");
}

#[test]
fn gradients_writes_json_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = vaelab(&[
        "experiment",
        "gradients",
        "--out",
        out,
        "--dims",
        "1,16",
        "--draws",
        "4000",
        "--sample-counts",
        "1,8",
        "--repeats",
        "400",
    ]);
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    let v = read_json(&dir.path().join("gradients.json"));
    let rows = v["by_dimension"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["dim"], 1);
    assert_eq!(rows[1]["dim"], 16);
    for r in rows {
        for key in ["score_grad", "baseline_grad", "reparam_grad", "score_var", "baseline_var", "reparam_var"]
        {
            estimate(&r[key]);
        }
        // 4σ² with σ = 0.8, the reparameterisation's single-draw variance in closed form
        assert!((r["reparam_var_exact"].as_f64().unwrap() - 2.56).abs() < 1e-12);
    }
    // The score function's variance at Z = 16 exceeds that at Z = 1 (closed forms 416.4 vs 13.2).
    let exact = |i: usize| rows[i]["score_var_exact"].as_f64().unwrap();
    assert!(exact(1) > 10.0 * exact(0));
    let counts = v["by_sample_count"].as_array().unwrap();
    assert_eq!(counts.len(), 2);
    assert_eq!(counts[1]["draws"], 8);
    estimate(&counts[1]["score_var"]);
    let summary = String::from_utf8_lossy(&o.stdout);
    assert!(summary.contains("Var reparam"), "the table is printed: {summary}");
    let html = std::fs::read_to_string(dir.path().join("gradients.html")).unwrap();
    assert_eq!(html.matches("class=\"vaelab-plot\"").count(), 2, "two plots on the page");
    assert!(!html.contains("<script src="), "plotly.js is inlined, not loaded from the network");
}

#[test]
fn gradients_zero_dimension_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let o = vaelab(&["experiment", "gradients", "--out", dir.path().to_str().unwrap(), "--dims", "4,0"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("dims[1]"), "stderr names the bad value: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
}

#[test]
fn amortised_writes_json_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = vaelab(&[
        "experiment",
        "amortised",
        "--out",
        out,
        "--hidden-sizes",
        "1,4",
        "--steps",
        "300",
        "--train",
        "64",
        "--eval",
        "32",
        "--digit-points",
        "0",
    ]);
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    let v = read_json(&dir.path().join("amortised.json"));
    let rows = v["sweep"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "the linear encoder and one per hidden size");
    assert_eq!(rows[0]["spec"]["hidden"], serde_json::json!([]));
    assert_eq!(rows[2]["spec"]["hidden"], serde_json::json!([4]));
    // ½ (ln Λ₁₁ + ln Λ₂₂ − ln det Λ) with Λ = [[7.08, 4.4], [4.4, 11.64]] (W, σ of the shipped model).
    let expected = 0.5 * (7.08f64.ln() + 11.64f64.ln() - (7.08 * 11.64 - 4.4 * 4.4f64).ln());
    assert!((v["approximation_gap"].as_f64().unwrap() - expected).abs() < 1e-12);
    for r in rows {
        let approx = estimate(&r["approximation"]);
        assert!((approx - expected).abs() < 1e-10, "every encoder shares the family's gap");
        let amort = estimate(&r["amortisation"]);
        let total = estimate(&r["total"]);
        assert!(amort >= 0.0 && (total - approx - amort).abs() < 1e-9);
    }
    // The one-unit encoder cannot go below the floor of any encoder whose means lie on a line.
    assert!(estimate(&rows[1]["amortisation"]) >= v["line_floor"].as_f64().unwrap());
    assert!(v["digits"].is_null());
    let html = std::fs::read_to_string(dir.path().join("amortised.html")).unwrap();
    assert_eq!(html.matches("class=\"vaelab-plot\"").count(), 1, "one plot on the page");
}

#[test]
fn amortised_zero_width_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o =
        vaelab(&["experiment", "amortised", "--out", out, "--hidden-sizes", "2,0", "--digit-points", "0"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("hidden_sizes[1]") && err.lines().count() == 1, "stderr names the bad value: {err}");
}

/// Sizes whose work, draws or memory no machine should be asked for: each is refused before any
/// work in one line with exit code 2 (they used to run silently for hours, abort in the
/// allocator, or panic on an overflowing capacity), and nothing is written.
#[test]
fn absurd_sizes_are_refused_up_front_in_one_line() {
    let max = u64::MAX.to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec!["amortised", "--steps", &max, "--digit-points", "0"],
        vec!["amortised", "--train", "1000000000", "--digit-points", "0"],
        vec!["amortised", "--hidden-sizes", &max, "--digit-points", "0"],
        vec!["gradients", "--repeats", &max],
        vec!["prior", "--epochs", &max],
        vec!["minibatch", "--noise-repeats", &max],
        vec!["minibatch", "--noise-repeats", "1000000000"],
        vec!["rate-distortion", "--epochs", "1000000000"],
        vec!["collapses", "--epochs", "1000000"],
        vec!["cvae", "--columns", &max],
        vec!["minimal-representation", "--digit-test", &max],
        vec!["minimal-representation", "--epochs", &max],
    ];
    for case in cases {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut argv = vec!["experiment"];
        argv.extend(&case);
        argv.extend(["--out", out.to_str().unwrap()]);
        let o = vaelab(&argv);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{case:?}: {err}");
        assert!(err.starts_with("vaelab: ") && err.lines().count() == 1, "{case:?}: {err}");
        assert!(!out.exists(), "{case:?} wrote {}", out.display());
    }
}
