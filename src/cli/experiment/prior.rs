//! `vaelab experiment prior`: lesson 05's comparison of the fixed prior N(0, I) with a learned
//! mixture-of-Gaussians prior on the same 2-D model (same data, seed and epochs).
//!
//! The same steps as the notebook's, with the notebook's defaults: a 784-64-2 Bernoulli VAE on the
//! shipped digits, Adam 1e-3, B = 128, 12 epochs, seed 5; test ELBO (S = 10 draws per digit),
//! importance-sampled log p(x) (K = 20), ELBO surgery (`prior::elbo_surgery`) against each model's
//! own prior, and paired differences over the test digits.

use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::base::error::{Error, Result};
use crate::base::stats::{Estimate, paired_difference};
use crate::engine::data::{Mnist10k, binarize_fixed};
use crate::engine::eval::{ElboSummary, elbo_stats, importance_sampled_log_likelihood};
use crate::engine::train::{TrainConfig, TrainSet, Trainer};
use crate::engine::vae::{LatentPrior, Vae, VaeConfig};
use crate::lessons::prior::{ElboSurgery, elbo_surgery, sample_aggregate_posterior};
use crate::plot::Figure;

use super::{CommonArgs, Written, write_outputs};

/// Arguments of `vaelab experiment prior`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Epochs for each model (the notebook: 12).
    #[arg(long, default_value_t = 12)]
    pub epochs: usize,
    /// Components of the learned mixture prior (the notebook: 10).
    #[arg(long, default_value_t = 10)]
    pub components: usize,
    /// Importance samples per test digit for log p(x) (the notebook: 20).
    #[arg(long, default_value_t = 20)]
    pub k: usize,
    /// Test digits measured (at most 2,000; the notebook: all 2,000).
    #[arg(long, default_value_t = 2000)]
    pub test: usize,
}

/// One model's measurements on the test digits.
#[derive(Clone, Debug, Serialize)]
pub struct PriorModel {
    /// "N(0, I)" or "mixture K = …".
    pub name: String,
    /// Test ELBO, rate and distortion (S = 10 draws per digit).
    pub elbo: ElboSummary,
    /// Importance-sampled log p(x) with its SE across digits.
    pub is_log_likelihood: Estimate,
    /// ELBO surgery against the model's own prior.
    pub surgery: ElboSurgery,
}

/// The comparison: both models and the paired differences (mixture − N(0, I)).
#[derive(Clone, Debug, Serialize)]
pub struct PriorComparison {
    /// Epochs per model.
    pub epochs: usize,
    /// Mixture components.
    pub components: usize,
    /// K for the IS estimate.
    pub k: usize,
    /// Seed of data order, initialisation and evaluation draws.
    pub seed: u64,
    /// The fixed-prior model, then the learned-prior model.
    pub models: [PriorModel; 2],
    /// Mean over test digits of ELBO(mixture) − ELBO(N(0, I)), with its paired SE.
    pub elbo_difference: Estimate,
    /// The same for the IS log p(x).
    pub log_likelihood_difference: Estimate,
    /// The learned mixture weights π.
    pub mixture_weights: Vec<f64>,
}

/// One model's numbers, with what the comparison and the plot need per digit: ELBO per test digit,
/// IS log p(x) per test digit, and draws from the aggregate posterior (`2000 × 2`).
struct Measured {
    model: PriorModel,
    elbo: Vec<f64>,
    log_likelihood: Vec<f64>,
    draws: Array2<f64>,
}

fn measure(
    vae: &Vae<f32>,
    name: String,
    test: &Array2<f32>,
    k: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Measured> {
    let stats = elbo_stats(vae, test.view(), None, 10, 1000, rng)?;
    let is = importance_sampled_log_likelihood(vae, test.view(), None, k, 1000, rng)?;
    let prior = vae.mixture_prior();
    let surgery = elbo_surgery(stats.mean.view(), stats.log_var.view(), prior.as_ref(), 4, 1000, rng)?;
    let draws = sample_aggregate_posterior(stats.mean.view(), stats.log_var.view(), 2000, rng)?;
    let model = PriorModel { name, elbo: stats.summary()?, is_log_likelihood: is.estimate, surgery };
    Ok(Measured { model, elbo: stats.elbo.clone(), log_likelihood: is.per_example, draws })
}

/// Trains both models and writes `prior.json` ([`PriorComparison`]) and `prior.html` (draws from
/// each model's aggregate posterior, with the learned prior's contours).
///
/// # Errors
/// `InvalidParameter` for zero epochs, components or K, or fewer than 2 test digits; `Diverged`
/// from training; `Io` writing.
pub fn run(args: &Args) -> Result<Written> {
    for (name, v) in [("epochs", args.epochs), ("components", args.components), ("k", args.k)] {
        if v == 0 {
            return Err(Error::invalid(name, v, "must be ≥ 1"));
        }
    }
    if args.test < 2 {
        return Err(Error::invalid("test", args.test, "must be ≥ 2 (a standard error needs two digits)"));
    }
    let digits = Mnist10k::load()?;
    let n_test = args.test.min(digits.test.len());
    let test = binarize_fixed(digits.test.images.slice(ndarray::s![..n_test, ..]));
    let set = TrainSet { x: digits.train.images.view(), labels: None, binarize: true };
    let seed = args.common.seed;
    let base = VaeConfig::bernoulli(784, vec![64], 2);
    let mut fixed = Trainer::new(base.clone(), TrainConfig::anchor(args.epochs, seed))?;
    fixed.fit(&set, None, |_| {})?;
    let mixture_config = base.with_prior(LatentPrior::Mixture { components: args.components });
    let mut learned = Trainer::new(mixture_config, TrainConfig::anchor(args.epochs, seed))?;
    learned.fit(&set, None, |_| {})?;

    let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(1));
    let m0 = measure(&fixed.vae, "N(0, I)".into(), &test, args.k, &mut rng)?;
    let name = format!("mixture K = {}", args.components);
    let m1 = measure(&learned.vae, name, &test, args.k, &mut rng)?;
    let mixture = learned.vae.mixture_prior().expect("the learned model has a mixture prior");
    let result = PriorComparison {
        epochs: args.epochs,
        components: args.components,
        k: args.k,
        seed,
        elbo_difference: paired_difference(&m1.elbo, &m0.elbo)?,
        log_likelihood_difference: paired_difference(&m1.log_likelihood, &m0.log_likelihood)?,
        mixture_weights: mixture.weights().to_vec(),
        models: [m0.model, m1.model],
    };
    let (draws0, draws1) = (m0.draws, m1.draws);

    let column = |d: &Array2<f64>, j: usize| d.column(j).to_vec();
    let (lo, hi) = (-4.0_f64, 4.0_f64);
    let axis: Vec<f64> = (0..=80).map(|i| lo + (hi - lo) * f64::from(i) / 80.0).collect();
    let log_p = mixture.log_density_grid(&axis, &axis)?;
    let fixed_plot = Figure::new("N(0, I) prior: draws from q_agg(z)")
        .axes("z₁", "z₂")
        .points("2000 draws from q_agg(z)", &column(&draws0, 0), &column(&draws0, 1))
        .plot();
    let learned_plot = Figure::new("learned prior p_θ(z) (contours) over draws from q_agg(z)")
        .axes("z₁", "z₂")
        .points("2000 draws from q_agg(z)", &column(&draws1, 0), &column(&draws1, 1))
        .density_contours("p_θ(z)", &axis, &axis, &log_p, "black")
        .plot();
    let mut summary = String::new();
    for m in &result.models {
        summary += &format!(
            "{:16} ELBO {:8.3} ± {:.3}  rate {:6.3}  IS log p(x) (K = {}) {:8.3} ± {:.3}  I(n; z) {:.3} ± {:.3}  KL(q_agg‖p) {:.3} ± {:.3}\n",
            m.name,
            m.elbo.elbo.mean,
            m.elbo.elbo.stderr,
            m.elbo.rate.mean,
            args.k,
            m.is_log_likelihood.mean,
            m.is_log_likelihood.stderr,
            m.surgery.mutual_information.mean,
            m.surgery.mutual_information.stderr,
            m.surgery.marginal_kl.mean,
            m.surgery.marginal_kl.stderr
        );
    }
    summary += &format!(
        "mixture − N(0, I), paired over {n_test} digits: ELBO {:+.3} ± {:.3}, log p(x) {:+.3} ± {:.3}\n",
        result.elbo_difference.mean,
        result.elbo_difference.stderr,
        result.log_likelihood_difference.mean,
        result.log_likelihood_difference.stderr
    );
    write_outputs(
        &args.common.out,
        "prior",
        &result,
        "Lesson 05: a fixed N(0, I) prior against a learned mixture prior",
        summary,
        &[fixed_plot, learned_plot],
    )
}
