//! Runs the `vaelab` binary: train on a tiny configuration, evaluate the checkpoint, and check
//! that bad input gives one line on stderr and exit code 2.

mod common;
use common::{estimate, tiny_checkpoint, tiny_train_argv, vaelab};

#[test]
fn train_then_eval_a_tiny_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    tiny_checkpoint(&out, &[("epochs", "2"), ("hidden", "16"), ("batch", "64")]);
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
    // The Monte-Carlo SE, from all 30 points drawn twice: finite, positive, beside the SE across points.
    assert_eq!(report["mc_points"], 30);
    let mc = report["log_likelihood_mc_stderr"].as_f64().unwrap();
    assert!(mc.is_finite() && mc > 0.0, "{report}");
    assert_eq!(
        (report["data"].as_str(), report["trained_on"].as_str()),
        (Some("prototypes (seed 3)"), Some("prototypes (seed 3)"))
    );
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
    let ckpt =
        tiny_checkpoint(&out, &[("epochs", "2"), ("hidden", "16"), ("batch", "64"), ("prior", "mog:3")]);
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

    // clap's own usage errors also exit with 2, in one line that names what is wrong.
    let o = vaelab(&["train", "--epochs", "many"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.lines().count() == 1 && err.contains("'many'") && err.contains("--epochs"), "{err}");
    let o = vaelab(&["bounds", "--json"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        "vaelab: the following required arguments were not provided: --model <MODEL>, --x <X> (see vaelab --help)"
    );
}

#[test]
fn a_run_that_diverges_on_its_last_step_writes_nothing_over_a_good_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let train = |lr: &str| vaelab(&tiny_train_argv(&out, &[("batch", "1000"), ("lr", lr)])[..]);
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
    let argv = std::iter::once("vaelab".to_string()).chain(tiny_train_argv(&file, &[]));
    let cli = <vaelab::cli::Cli as clap::Parser>::try_parse_from(argv).unwrap();
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

#[test]
fn absurd_draw_counts_are_refused_at_once_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = tiny_checkpoint(&dir.path().join("run"), &[]);
    let ckpt = ckpt.to_str().unwrap();
    for (argv, start) in [
        (
            vec!["eval", "--checkpoint", ckpt, "--data", "prototypes", "--k", "1000000000000"],
            "vaelab: eval of 200 test points × --k 1000000000000 needs 400000000000000 random draws, more than",
        ),
        (
            vec![
                "eval",
                "--checkpoint",
                ckpt,
                "--data",
                "prototypes",
                "--amortisation-points",
                "100",
                "--amortisation-steps",
                "100000000000",
            ],
            "vaelab: eval --amortisation-points 100 × --amortisation-steps 100000000000 needs",
        ),
        (
            vec!["bench", "--eval", "--k", "18446744073709551615"],
            "vaelab: bench --eval: (4 + --repeats 3 × --points 1000) × --k 18446744073709551615 needs",
        ),
        (
            vec!["bench", "--toy", "--k", "18446744073709551615"],
            "vaelab: bench --toy: (1 + --repeats 3) × --k",
        ),
    ] {
        let t = std::time::Instant::now();
        let o = vaelab(&argv);
        let secs = t.elapsed().as_secs_f64();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{argv:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{argv:?}: {err}");
        assert!(err.starts_with(start), "{argv:?}: {err}");
        assert!(secs < 10.0, "{argv:?} took {secs:.1} s to refuse");
    }
}

/// Rewrites a checkpoint as one written before checkpoints recorded their data: no `data` key,
/// and no checksum (such files load unchecked).
fn without_data_record(path: &std::path::Path) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let meta = header["__metadata__"].as_object_mut().unwrap();
    assert!(meta.remove("data").is_some() && meta.remove("checksum").is_some());
    let mut json = serde_json::to_vec(&header).unwrap();
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend(json);
    out.extend(&bytes[8 + n..]);
    std::fs::write(path, out).unwrap();
}

#[test]
fn eval_uses_the_recorded_training_data_and_refuses_other_data_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = tiny_checkpoint(&dir.path().join("run"), &[]);
    let ckpt = ckpt.to_str().unwrap();
    let small = ["--k", "5", "--limit", "20"];
    // No --data: the data it was trained on (not mnist10k, eval's data when nothing is recorded).
    let o = vaelab(&[&["eval", "--checkpoint", ckpt][..], &small[..]].concat());
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("data             prototypes (seed 3), the data it was trained on"), "{text}");
    // Other data: one line naming both, exit 2.
    let o = vaelab(&[&["eval", "--checkpoint", ckpt, "--data", "mnist10k"][..], &small[..]].concat());
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        err.trim_end(),
        "vaelab: invalid data = mnist10k: the checkpoint was trained on prototypes (seed 3); omit --data to evaluate on that, or pass --allow-other-data"
    );
    // Asked for explicitly: evaluated, and the report says so.
    let o = vaelab(
        &[&["eval", "--checkpoint", ckpt, "--data", "mnist10k", "--allow-other-data"][..], &small[..]]
            .concat(),
    );
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("data             mnist10k, NOT the data it was trained on, prototypes (seed 3)"),
        "{text}"
    );
    // A checkpoint from before the record: unknown, said so; --data is taken as given.
    without_data_record(std::path::Path::new(ckpt));
    let o =
        vaelab(&[&["eval", "--checkpoint", ckpt, "--data", "prototypes", "--json"][..], &small[..]].concat());
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["trained_on"], "unknown", "{report}");
    let o = vaelab(&[&["eval", "--checkpoint", ckpt, "--data", "prototypes"][..], &small[..]].concat());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("trained on unknown data: the checkpoint does not record it"), "{text}");
}

#[test]
fn a_weights_only_checkpoint_is_evaluated_and_refused_for_resuming_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let full = tiny_checkpoint(&dir.path().join("run"), &[]);
    let weights = dir.path().join("weights.safetensors");
    vaelab::engine::train::Trainer::load(&full).unwrap().save_weights(&weights).unwrap();
    let w = weights.to_str().unwrap();
    let o = vaelab(&["eval", "--checkpoint", w, "--k", "5", "--limit", "20", "--json"]);
    assert!(o.status.success(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    let a: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let o = vaelab(&["eval", "--checkpoint", full.to_str().unwrap(), "--k", "5", "--limit", "20", "--json"]);
    let b: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // The same model, so the same numbers (only the checkpoint's name differs).
    assert_eq!(a["log_likelihood"], b["log_likelihood"]);
    assert_eq!(a["test"], b["test"]);
    let e = vaelab::engine::train::Trainer::load(&weights).unwrap_err().to_string();
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.ends_with("a weights-only checkpoint (no optimiser state): it can be evaluated, but training cannot resume from it"), "{e}");
}

/// An epoch count no machine can finish is refused in one line before the data is trained on
/// (it used to start, and allocate per-epoch metrics for the whole run).
#[test]
fn absurd_epoch_counts_are_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    for epochs in ["1000000000000", &u64::MAX.to_string()] {
        let o = vaelab(&tiny_train_argv(&out, &[("epochs", epochs)])[..]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.starts_with("vaelab: train (--epochs") && err.lines().count() == 1, "{err}");
        assert!(!out.exists());
    }
}

/// Bench sizes that would overflow, abort in the allocator or run for days are refused in one
/// line before any timing.
#[test]
fn absurd_bench_sizes_are_refused_up_front() {
    let max = u64::MAX.to_string();
    for case in [
        vec!["bench", "--steps", &max],
        vec!["bench", "--steps", "1000000000000"],
        vec!["bench", "--warmup", &max],
        vec!["bench", "--repeats", &max],
        vec!["bench", "--toy", "--toy-latent", &max],
        vec!["bench", "--toy", "--toy-data", &max],
        vec!["bench", "--toy", "--toy-data", "100000", "--toy-latent", "100000"],
    ] {
        let o = vaelab(&case);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{case:?}: {err}");
        assert!(err.starts_with("vaelab: ") && err.lines().count() == 1, "{case:?}: {err}");
    }
}
