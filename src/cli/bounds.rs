//! `vaelab bounds`: rerun the toy experiments from the shell.
//!
//! ```text
//! vaelab bounds --model data/models/linear_gaussian.json --x 1.2,0.4,-0.5 --q fit --samples 1000 --k 10 --seed 0 --json
//! ```
//! prints one JSON object with exactly the keys `log_px`, `elbo` {`mean`, `stderr`, `samples`},
//! `elbo_analytic_kl` {same}, `iwae` {`k`, `mean`, `stderr`}, `kl_q_posterior` (a number, or
//! {`mean`, `stderr`} when estimated) and `gap` (= `log_px` − `elbo.mean`); without `--json` a table.

use std::fmt::Write as _;
use std::path::PathBuf;

use ndarray::{Array1, ArrayView1};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::base::error::{Error, Result};
use crate::lessons::bounds::{
    BoundsReport, Family, FitConfig, KlValue, Q, fit_gaussian, fit_gaussian_standardised, posterior_q,
    prior_q, report,
};
use crate::lessons::toy::{LatentModel, Model};

/// Which q to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QChoice {
    /// The exact posterior p(z|x) (linear-Gaussian, mixture, binary latents).
    Posterior,
    /// The prior p(z).
    Prior,
    /// The best Gaussian q found by stochastic gradient ascent on the ELBO (see --family).
    Fit,
}

/// Family for `--q fit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FamilyChoice {
    /// Diagonal covariance.
    Diag,
    /// Full covariance (Cholesky-parameterised).
    Full,
}

/// Arguments of `vaelab bounds`.
#[derive(Debug, Clone, clap::Args)]
pub struct BoundsArgs {
    /// Model file (JSON with a "kind" tag; see docs/model-files.md).
    #[arg(long)]
    pub model: PathBuf,
    /// The data point x, comma-separated (D numbers).
    #[arg(long, allow_hyphen_values = true)]
    pub x: String,
    /// Which q: posterior, prior or fit (default prior, unless --q-mean/--q-log-var are given).
    #[arg(long, value_enum)]
    pub q: Option<QChoice>,
    /// Mean of a diagonal-Gaussian q, comma-separated (Z numbers); needs --q-log-var.
    #[arg(long, allow_hyphen_values = true, requires = "q_log_var", conflicts_with = "q")]
    pub q_mean: Option<String>,
    /// Log-variance of a diagonal-Gaussian q, comma-separated (Z numbers); needs --q-mean.
    #[arg(long, allow_hyphen_values = true, requires = "q_mean")]
    pub q_log_var: Option<String>,
    /// Family for --q fit.
    #[arg(long, value_enum, default_value = "diag")]
    pub family: FamilyChoice,
    /// N: draws of z for the ELBO estimates, and the number of K-sample IWAE estimates.
    #[arg(long, default_value_t = 1000)]
    pub samples: usize,
    /// K: importance samples per IWAE estimate.
    #[arg(long, default_value_t = 10)]
    pub k: usize,
    /// Seed of the random number generator.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Parses a comma-separated list of numbers; errors name `name[i]` and the text.
///
/// ```
/// use vaelab::cli::bounds::parse_list;
/// assert_eq!(parse_list("x", "0.3,-1.2").unwrap().to_vec(), vec![0.3, -1.2]);
/// assert_eq!(parse_list("x", "0.3,abc").unwrap_err().to_string(), "invalid x[1] = \"abc\": not a finite number");
/// ```
pub fn parse_list(name: &str, text: &str) -> Result<Array1<f64>> {
    if text.trim().is_empty() {
        return Err(Error::empty(name, "number"));
    }
    text.split(',')
        .enumerate()
        .map(|(i, t)| match t.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => {
                Err(Error::invalid(format!("{name}[{i}]"), format!("{:?}", t.trim()), "not a finite number"))
            }
        })
        .collect()
}

/// The q the arguments ask for, and a label saying how it was obtained.
pub fn choose_q<R: rand::Rng + ?Sized>(
    model: &Model,
    x: ArrayView1<f64>,
    args: &BoundsArgs,
    rng: &mut R,
) -> Result<(Q, String)> {
    if let (Some(m), Some(lv)) = (&args.q_mean, &args.q_log_var) {
        let q = Q::diag_gaussian(parse_list("q-mean", m)?, parse_list("q-log-var", lv)?)?;
        q.check_for(model)?;
        return Ok((q, "given diagonal Gaussian".into()));
    }
    match args.q.unwrap_or(QChoice::Prior) {
        QChoice::Prior => Ok((prior_q(model), "prior p(z)".into())),
        QChoice::Posterior => Ok((posterior_q(model, x)?, "exact posterior p(z|x)".into())),
        QChoice::Fit => {
            let family = match args.family {
                FamilyChoice::Diag => Family::Diagonal,
                FamilyChoice::Full => Family::Full,
            };
            let config = FitConfig { family, ..FitConfig::default() };
            let label = format!(
                "fitted {} ({} steps of {} draws)",
                if family == Family::Full { "full-covariance Gaussian" } else { "diagonal Gaussian" },
                config.steps,
                config.samples_per_step
            );
            match model {
                Model::LinearGaussian(m) => {
                    Ok((fit_gaussian(m, x, &prior_q(model), &config, rng)?.q, label + ", from the prior"))
                }
                Model::Quadratic(m) => {
                    // Start at the posterior's highest mode with its curvature width (a Laplace
                    // start); from the prior the ascent can stop between the two modes.
                    m.check_x(x)?;
                    let modes = m.modes(x);
                    let lj = |z: f64| m.log_joint(x, ndarray::array![[z]].view())[0];
                    let &(mu, tau) =
                        modes.iter().max_by(|a, b| lj(a.0).total_cmp(&lj(b.0))).ok_or_else(|| {
                            Error::invalid(
                                "x",
                                format!("{x}"),
                                "the posterior modes cannot be located in f64 (aᵀ(x − c) overflows)",
                            )
                        })?;
                    let init = Q::diag_gaussian(ndarray::array![mu], ndarray::array![2.0 * tau.ln()])?;
                    // In the start's own units: at x = ±1e12 the peak is 1e-7 wide, and steps of
                    // 0.02 in z would leave it (fit_gaussian_standardised).
                    Ok((
                        fit_gaussian_standardised(m, x, &init, &config, rng)?.q,
                        label + ", from the highest posterior mode",
                    ))
                }
                Model::Mixture(_) => Ok((
                    posterior_q(model, x)?,
                    "categorical family: its best member is the posterior itself".into(),
                )),
                Model::BinaryLatent(_) => Err(Error::invalid(
                    "q",
                    "fit",
                    "fitting uses reparameterisation gradients and needs a continuous latent; use --q posterior or --q prior for binary_latent",
                )),
            }
        }
    }
}

/// Runs `vaelab bounds`; returns the text to print.
pub fn run(args: &BoundsArgs) -> Result<String> {
    let model = Model::load(&args.model)?;
    let x = parse_list("x", &args.x)?;
    model.check_x(x.view())?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let (q, label) = choose_q(&model, x.view(), args, &mut rng)?;
    let r = report(&model, x.view(), &q, args.samples, args.k, &mut rng)?;
    if args.json {
        Ok(serde_json::to_string_pretty(&r).expect("a report serialises") + "\n")
    } else {
        Ok(table(&model, &label, &r))
    }
}

/// The readable form of a report.
pub fn table(model: &Model, q_label: &str, r: &BoundsReport) -> String {
    let mut s = String::new();
    let pm = |m: f64, se: f64| format!("{m:>12.6} ± {se:.6}");
    let _ = writeln!(s, "model   {} (D = {}, Z = {})", model.kind(), model.data_dim(), model.latent_dim());
    let _ = writeln!(s, "q       {q_label}");
    let _ = writeln!(s);
    let _ = writeln!(s, "{:<42} {:>12.6}   exact", "log p(x)", r.log_px);
    let _ = writeln!(
        s,
        "{:<42} {}   N = {}",
        "ELBO = E_q[log p(x,z) − log q(z|x)]",
        pm(r.elbo.mean, r.elbo.stderr),
        r.elbo.samples
    );
    let _ = writeln!(
        s,
        "{:<42} {}   N = {}",
        "ELBO = E_q[log p(x|z)] − KL(q ‖ p(z))",
        pm(r.elbo_analytic_kl.mean, r.elbo_analytic_kl.stderr),
        r.elbo_analytic_kl.samples
    );
    let _ = writeln!(
        s,
        "{:<42} {}   K = {}",
        format!("IWAE L_{}", r.iwae.k),
        pm(r.iwae.mean, r.iwae.stderr),
        r.iwae.k
    );
    match r.kl_q_posterior {
        KlValue::Exact(v) => {
            let _ = writeln!(s, "{:<42} {v:>12.6}   exact", "KL(q ‖ p(z|x))");
        }
        KlValue::Estimated(e) => {
            let _ = writeln!(s, "{:<42} {}   Monte Carlo", "KL(q ‖ p(z|x))", pm(e.mean, e.stderr));
        }
    }
    let _ = writeln!(s, "{:<42} {:>12.6} ± {:.6}", "gap = log p(x) − ELBO", r.gap, r.elbo.stderr);
    s
}
