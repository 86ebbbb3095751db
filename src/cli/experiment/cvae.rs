//! `vaelab experiment cvae`: lesson 10's three models ([`crate::lessons::conditional::run`]).

use crate::base::error::Result;
use crate::lessons::conditional::{CvaeConfig, ModelKind, run as run_cvae};

use super::{CommonArgs, Work, Written, write_outputs};

/// The most noise draws per class a grid may show.
pub const MAX_COLUMNS: usize = 64;

/// Arguments of `vaelab experiment cvae`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Epochs per model (the notebook uses 10).
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Training digits, evenly spaced over the 8,000.
    #[arg(long, default_value_t = 8000)]
    pub n_train: usize,
    /// Test digits, evenly spaced over the 2,000.
    #[arg(long, default_value_t = 300)]
    pub n_test: usize,
    /// H, hidden width.
    #[arg(long, default_value_t = 64)]
    pub hidden: usize,
    /// Z, latent units.
    #[arg(long, default_value_t = 8)]
    pub latent: usize,
    /// K, importance samples per test digit (and per class).
    #[arg(long, default_value_t = 50)]
    pub k: usize,
    /// Columns of the class grids (shared z draws).
    #[arg(long, default_value_t = 8)]
    pub columns: usize,
}

/// Trains the VAE and the two CVAEs of [`CvaeConfig::small`] (with the sizes given) and writes
/// `cvae.json` (the [`crate::lessons::conditional::CvaeRun`]: the table's numbers and the grid changes) and `cvae.html` (the two class grids, the
/// per-digit KL histogram and the learned prior's means).
///
/// # Errors
/// A bad size (`InvalidParameter`), `Diverged` from training, `Io` reading the digits or writing.
pub fn run(args: &Args) -> Result<Written> {
    let mut progress = work(args)?.check()?;
    let config = config(args);
    let epoch = Work::epoch(&config.vae_config(ModelKind::LearnedPrior), config.n_train);
    let run = run_cvae(&config, args.columns, &mut |_: ModelKind, _| progress.advance(epoch))?;
    progress.finish();
    let mut plots = run.grids.clone();
    plots.push(run.result.kl_plot());
    plots.push(run.result.prior_means_plot());
    let mut summary = run.result.table();
    for g in &run.grid_changes {
        summary += &format!(
            "\n{:<24} class grid: change down a column (class) {:.4}, along a row (noise) {:.4}",
            g.kind.name(),
            g.by_class,
            g.by_noise
        );
    }
    write_outputs(
        &args.common.out,
        "cvae",
        &run,
        "Lesson 10: the conditional VAE on the digits",
        summary,
        &plots,
    )
}

fn config(args: &Args) -> CvaeConfig {
    CvaeConfig {
        n_train: args.n_train,
        n_test: args.n_test,
        hidden: args.hidden,
        latent_dim: args.latent,
        k: args.k,
        ..CvaeConfig::small(args.epochs, args.common.seed)
    }
}

/// The estimated work of [`run`]: each of the three models' epochs, and on the test digits its
/// ELBO draws and the importance draws of log P(x|c) and of log P(x) (a sum over the classes).
///
/// # Errors
/// `InvalidParameter` for a bad size or `--columns` outside 2..=[`MAX_COLUMNS`].
pub fn work(args: &Args) -> Result<Work> {
    let config = config(args);
    config.validate()?;
    if !(2..=MAX_COLUMNS).contains(&args.columns) {
        return Err(crate::base::error::Error::invalid(
            "--columns",
            args.columns,
            format!("must be in 2..={MAX_COLUMNS} (noise draws per class in the grids)"),
        ));
    }
    let mut work = Work::new("experiment cvae", "--epochs × --n-train × --hidden, --n-test × --k");
    for kind in [ModelKind::Unconditional, ModelKind::FixedPrior, ModelKind::LearnedPrior] {
        let vae = config.vae_config(kind);
        let draws =
            config.k.saturating_mul(1 + crate::engine::data::CLASSES).saturating_add(config.eval_samples);
        work = work.training(&vae, 1, config.epochs, config.n_train).sampling(&vae, config.n_test, draws);
    }
    Ok(work)
}
