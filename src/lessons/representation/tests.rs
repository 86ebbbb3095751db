use super::*;
use crate::engine::data::BlobConfig;

use crate::engine::vae::{Vae, VaeConfig};
use ndarray::{Array1, Array2};
use rand::rngs::StdRng;

#[test]
fn active_unit_count_is_exact_on_synthetic_encoder_means() {
    // An "encoder output" where exactly k = 3 of Z = 8 units move with the data: units 1, 4 and 6
    // are affine in three independent factors, the others constant or wobbling below δ = 0.01.
    // Every value is a dyadic rational, so the population variances are exact in f64.
    let n = 1000;
    let mut mean = Array2::<f64>::zeros((n, 8));
    for i in 0..n {
        let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
        let f = [(i % 10) as f64, ((i / 10) % 10) as f64, (i % 4) as f64]; // three factors
        mean[[i, 1]] = 0.5 * f[0] - 2.0;
        mean[[i, 4]] = -0.25 * f[1];
        mean[[i, 6]] = f[2];
        mean[[i, 0]] = 0.3; // constant: A = 0
        mean[[i, 2]] = 0.0625 * sign; // A = 0.0625² = 0.00390625 < 0.01
        mean[[i, 3]] = 0.125 * sign; // A = 0.015625 > 0.01: active at δ = 0.01 ...
        mean[[i, 5]] = -1.0; // constant
        mean[[i, 7]] = 0.09375 * sign; // A = 0.0087890625 < 0.01
    }
    let units = active_units(mean.view(), 0.01);
    // ... so the count is 4: the criterion sees variance, not meaning (unit 3 carries one bit).
    assert_eq!(units.count, 4);
    // The variances by hand: Var(0.5·U{0..9}) = 0.25·8.25, Var(0.25·U{0..9}) = 0.0625·8.25,
    // Var(U{0..3}) = 1.25, Var(±c) = c². ndarray's streaming variance rounds the first three
    // (a few ulps: 1e-12 relative); the ±c units have mean exactly 0 and come out exact, which the
    // strict-threshold check below relies on.
    let by_hand = [0.0, 2.0625, 0.00390625, 0.015625, 0.515625, 0.0, 1.25, 0.0087890625];
    for (u, (&a, &b)) in units.variances.iter().zip(&by_hand).enumerate() {
        assert!((a - b).abs() <= 1e-12 * b, "unit {u}: {a} vs {b}");
    }
    assert_eq!(units.variances[3], 0.015625);
    // At δ = A_3 exactly the strict inequality A_u > δ leaves unit 3 out: k = 3 active units.
    let units = active_units(mean.view(), 0.015625);
    assert_eq!(units.count, 3);
    let active: Vec<usize> = (0..8).filter(|&u| units.variances[u] > units.threshold).collect();
    assert_eq!(active, vec![1, 4, 6]);
}

/// A Bernoulli VAE whose encoder and decoder use only units `live` of Z: for every other unit the
/// mean and log-variance heads are zero (so q(z_u|x) = N(0, 1) exactly) and the decoder's weights
/// from z_u are zero (so the decoder ignores it). The live units' mean weights are scaled up so
/// their means vary far above δ.
fn vae_with_live_units(d: usize, zd: usize, live: &[usize]) -> Vae<f32> {
    let mut vae: Vae<f32> =
        Vae::new(VaeConfig::bernoulli(d, vec![8], zd), &mut StdRng::seed_from_u64(3)).unwrap();
    for u in 0..zd {
        if live.contains(&u) {
            vae.params.mean_head.weight.column_mut(u).mapv_inplace(|w| 20.0 * w);
        } else {
            for head in [&mut vae.params.mean_head, &mut vae.params.log_var_head] {
                head.weight.column_mut(u).fill(0.0);
                head.bias[u] = 0.0;
            }
            vae.params.decoder.layers[0].weight.row_mut(u).fill(0.0); // W is fan_in × fan_out = Z × H
        }
    }
    vae
}

fn uniform_images(n: usize, d: usize, seed: u64) -> Array2<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((n, d), || rand::Rng::random::<f32>(&mut rng))
}

#[test]
fn unit_report_counts_the_live_units_of_a_constructed_encoder() {
    let live = [1, 3, 4];
    let vae = vae_with_live_units(16, 6, &live);
    let x = uniform_images(200, 16, 4);
    let report = unit_report(&vae, x.view(), &UnitMeasureConfig::default()).unwrap();
    assert_eq!(report.active.count, live.len());
    let (active, inactive) = report.split_active();
    let mut sorted = active.clone();
    sorted.sort();
    assert_eq!(sorted, live);
    for &u in &inactive {
        // μ_u ≡ 0 and log σ²_u ≡ 0 exactly: A_u = 0, KL_u = ½(0 + 1 − 1 − 0) = 0, σ_u = 1, and a
        // decoder with zero weights from z_u cannot move: Δ_u = 0. All exact, no tolerance.
        assert_eq!(report.active.variances[u], 0.0, "unit {u}");
        assert_eq!(report.kl_per_unit[u], 0.0, "unit {u}");
        assert_eq!(report.sigma_per_unit[u], 1.0, "unit {u}");
        assert_eq!(report.traversal_change[u], 0.0, "unit {u}");
    }
    for &u in &active {
        assert!(report.active.variances[u] > 0.01 && report.kl_per_unit[u] > 0.0, "unit {u}");
        assert!(report.traversal_change[u] > 0.0, "unit {u}: a live decoder column moves the image");
    }
    // The rate is the sum of the per-unit KLs (both from elbo_stats, summed in different orders).
    let sum: f64 = report.kl_per_unit.iter().sum();
    let rate = report.rate.mean;
    assert!((sum - rate).abs() <= 1e-12 * rate.max(1.0), "{sum} vs {rate}");
    // The per-point values are the ones the three estimates average: one per row, same means.
    let pp = &report.per_point;
    for (values, e) in [(&pp.elbo, report.elbo), (&pp.rate, report.rate), (&pp.distortion, report.distortion)]
    {
        assert_eq!(values.len(), 200);
        let mean = values.iter().sum::<f64>() / 200.0;
        assert!((mean - e.mean).abs() <= 1e-12 * e.mean.abs().max(1.0), "{mean} vs {}", e.mean);
    }
    // ELBO = −(distortion + rate), point by point (β = 1 bookkeeping).
    for i in 0..200 {
        assert!((pp.elbo[i] + pp.distortion[i] + pp.rate[i]).abs() < 1e-9, "row {i}");
    }
}

#[test]
fn traversal_decodes_the_base_code_with_one_unit_replaced() {
    let vae = vae_with_live_units(16, 4, &[0, 2]);
    let x = uniform_images(1, 16, 5);
    let (mean, _) = vae.encode(x.view(), None);
    let values = [-3.0, f64::from(mean[[0, 2]]), 3.0];
    let images = traversal(&vae, x.row(0), 2, &values).unwrap();
    assert_eq!(images.dim(), (3, 16));
    // Setting unit 2 to its own μ is the reconstruction, bit for bit (same z, same decoder).
    assert_eq!(images.row(1), vae.reconstruct(x.view(), None).row(0));
    assert_ne!(images.row(0), images.row(2));
    // A dead unit (1): every value decodes to the same image.
    let dead = traversal(&vae, x.row(0), 1, &values).unwrap();
    assert_eq!(dead.row(0), dead.row(2));
    // The grid stacks unit blocks of T rows.
    let grid = traversal_grid(&vae, x.row(0), &[2, 1], &values).unwrap();
    assert_eq!(grid.dim(), (6, 16));
    assert_eq!(grid.slice(s![..3, ..]), images);
    assert_eq!(grid.slice(s![3.., ..]), dead);
}

#[test]
fn traversal_change_matches_its_definition() {
    // Δ_u by the formula, one base point and one value at a time, with the crate's traversal.
    let vae = vae_with_live_units(9, 3, &[0, 1]);
    let x = uniform_images(4, 9, 6);
    let values = [-2.0, 0.5, 2.0];
    let change = traversal_change(&vae, x.view(), &values).unwrap();
    for (u, &c) in change.iter().enumerate() {
        let mut total = 0.0f64;
        for row in x.rows() {
            let base = vae.reconstruct(row.insert_axis(Axis(0)), None);
            let images = traversal(&vae, row, u, &values).unwrap();
            for image in images.rows() {
                total += image.iter().zip(base.row(0)).map(|(&a, &b)| f64::from((a - b).abs())).sum::<f64>();
            }
        }
        let by_hand = total / (4 * 3 * 9) as f64;
        // Same f32 pixels, summed in f64 in the same order: equal to rounding of the sums.
        assert!((c - by_hand).abs() <= 1e-12, "unit {u}: {c} vs {by_hand}");
    }
    assert_eq!(change[2], 0.0);
}

#[test]
fn bad_inputs_are_named() {
    let vae = vae_with_live_units(4, 2, &[0]);
    let x = Array1::from_elem(4, 0.5f32);
    let msg = |r: Result<Array2<f32>>| r.unwrap_err().to_string();
    assert_eq!(msg(traversal(&vae, x.view(), 2, &[0.0])), "invalid unit = 2: must be < Z = 2");
    assert_eq!(
        msg(traversal(&vae, x.view(), 0, &[])),
        "traversal values is empty: at least one value is needed"
    );
    assert_eq!(
        msg(traversal(&vae, x.view(), 0, &[1.0, f64::NAN])),
        "non-finite value in traversal values at index 1: NaN"
    );
    let short = Array1::from_elem(3, 0.5f32);
    assert!(msg(traversal(&vae, short.view(), 0, &[0.0])).contains("shape mismatch in x columns"));
    let mut bad = Array1::from_elem(4, 0.5f32);
    bad[2] = f32::INFINITY;
    assert!(msg(traversal(&vae, bad.view(), 0, &[0.0])).starts_with("non-finite value in x"));
    assert_eq!(
        msg(traversal_grid(&vae, x.view(), &[], &[0.0])),
        "units is empty: at least one unit is needed"
    );
    let xs = Array2::from_elem((2, 4), 0.5f32);
    assert!(traversal_change(&vae, xs.view(), &[f64::INFINITY]).is_err());
    let measure = UnitMeasureConfig { steps: 0, ..Default::default() };
    assert_eq!(
        unit_report(&vae, xs.view(), &measure).unwrap_err().to_string(),
        "invalid steps = 0: must be ≥ 1"
    );
    let measure = UnitMeasureConfig { threshold: f64::NAN, ..Default::default() };
    assert!(unit_report(&vae, xs.view(), &measure).unwrap_err().to_string().starts_with("invalid threshold"));
    let config = LatentSweepConfig::small(vec![2, 0], 1, 0);
    assert_eq!(config.validate().unwrap_err().to_string(), "invalid latent_dims[1] = 0: must be ≥ 1");
    let config = LatentSweepConfig::small(vec![], 1, 0);
    assert!(config.validate().is_err());
    let config = LatentSweepConfig { n_test: 1, ..LatentSweepConfig::small(vec![2], 1, 0) };
    assert!(config.validate().unwrap_err().to_string().starts_with("invalid n_test = 1"));
}

#[test]
fn factor_correlation_agrees_with_a_direct_sum() {
    // Independent route: the textbook formula with explicit sums, per pair.
    let mut rng = StdRng::seed_from_u64(7);
    let mean = Array2::from_shape_simple_fn((50, 3), || rand::Rng::random::<f64>(&mut rng));
    let mut factors = Array2::from_shape_simple_fn((50, 2), || rand::Rng::random::<f64>(&mut rng));
    // Make factor 1 depend on unit 2, so one correlation is large.
    for i in 0..50 {
        factors[[i, 1]] += 3.0 * mean[[i, 2]];
    }
    let rho = factor_correlation(mean.view(), factors.view()).unwrap();
    for u in 0..3 {
        for f in 0..2 {
            let (a, b) = (mean.column(u), factors.column(f));
            let (ma, mb) = (a.sum() / 50.0, b.sum() / 50.0);
            let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
            for i in 0..50 {
                sab += (a[i] - ma) * (b[i] - mb);
                saa += (a[i] - ma).powi(2);
                sbb += (b[i] - mb).powi(2);
            }
            let direct = sab / (saa * sbb).sqrt();
            assert!((rho[[u, f]] - direct).abs() < 1e-12, "ρ[{u}, {f}] {} vs {direct}", rho[[u, f]]);
        }
    }
    assert!(rho[[2, 1]] > 0.9);
    assert!(factor_correlation(mean.slice(s![..1, ..]), factors.slice(s![..1, ..])).is_err());
    assert!(factor_correlation(mean.view(), factors.slice(s![..49, ..])).is_err());
}

#[test]
fn a_trained_model_leaves_the_units_it_does_not_need_at_the_prior() {
    // Blobs with k = 2 known factors (the centre x, y), a model with Z = 6 units, 60 epochs,
    // fixed seed (about 2 s here). What the claim predicts, each bound stated, none fitted:
    let config = LatentSweepConfig {
        blobs: BlobConfig::default(), // ThirdFactor::None: k = 2
        ..LatentSweepConfig::small(vec![6], 60, 0)
    };
    assert_eq!(config.factors(), 2);
    let (_, point) = train_blob_model(&config, 6, &mut |_| {}).unwrap();
    let r = &point.report;
    let (active, inactive) = r.split_active();
    println!("{}", r.table());
    // 1. At least k units are active: the images vary along two independent continuous factors,
    //    and a decoder fed one varying unit can only produce a 1-D curve of images.
    assert!(active.len() >= config.factors(), "{} active", active.len());
    // 2. Not every unit is used: the claim itself (some units stay at the prior).
    assert!(!inactive.is_empty(), "all {} units active", r.latent_dim);
    for &u in &inactive {
        // 3. An inactive unit is (nearly) the prior: KL_u < 0.01 nats, i.e. it tells the decoder
        //    at most 0.01 nats about x (I(x; z_u) ≤ KL_u, lesson 07), 1% of a nat.
        assert!(r.kl_per_unit[u] < 0.01, "inactive z{u} has KL {}", r.kl_per_unit[u]);
        // 4. ... and the decoder ignores it: sweeping it over ±3 prior sds moves the image less than
        //    a tenth as much as sweeping any of the k units with the largest KL.
        let weakest_needed =
            active[..config.factors()].iter().map(|&a| r.traversal_change[a]).fold(f64::INFINITY, f64::min);
        assert!(
            r.traversal_change[u] < 0.1 * weakest_needed,
            "inactive z{u}: Δ {} vs {weakest_needed}",
            r.traversal_change[u]
        );
    }
    // 5. The k units with the largest KL each follow one factor: |ρ| > 0.8 (the factor explains
    //    over 64% of the unit's variance), x and y one each.
    let mut followed: Vec<usize> = active[..2]
        .iter()
        .map(|&u| {
            let row = &point.factor_correlation[u];
            assert!(row.iter().any(|v| v.abs() > 0.8), "z{u}: ρ = {row:?}");
            if row[0].abs() > row[1].abs() { 0 } else { 1 }
        })
        .collect();
    followed.sort();
    assert_eq!(followed, vec![0, 1], "the top two units follow x and y");
}

#[test]
fn training_in_steps_is_training_in_one_go() {
    // BlobTraining split 1 + 2 epochs gives the model train_blob_model trains in 3, bit for bit
    // (same seed, same generator stream, same data).
    let config = LatentSweepConfig { n_train: 100, n_test: 20, ..LatentSweepConfig::small(vec![3], 3, 5) };
    let (vae, point) = train_blob_model(&config, 3, &mut |_| {}).unwrap();
    let mut training = BlobTraining::new(&config, 3).unwrap();
    training.train_epochs(1, &mut |_| {}).unwrap();
    training.train_epochs(2, &mut |_| {}).unwrap();
    let err = training.train_epochs(1, &mut |_| {}).unwrap_err().to_string();
    assert_eq!(err, "invalid epochs = 1: must be ≥ 1, with 0 epochs left to train");
    let (vae_steps, point_steps) = training.finish().unwrap();
    assert_eq!(vae.params, vae_steps.params);
    // Everything but the wall-clock seconds of the last epoch.
    let seconds = |mut p: LatentPoint| {
        p.last_epoch.seconds = 0.0;
        p
    };
    assert_eq!(seconds(point), seconds(point_steps));
}

#[test]
fn a_mixture_prior_model_is_refused_not_a_panic() {
    // Its KL does not split by unit, so the report's per-unit table would index an empty vector.
    let config = VaeConfig::bernoulli(6, vec![5], 2)
        .with_prior(crate::engine::vae::LatentPrior::Mixture { components: 3 });
    let vae: Vae<f32> = Vae::new(config, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
    let e = unit_report(&vae, Array2::zeros((4, 6)).view(), &UnitMeasureConfig::default()).unwrap_err();
    assert!(e.to_string().contains("mixture of 3"), "{e}");
}
