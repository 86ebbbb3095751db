//! `vaelab experiment minimal-representation`: lesson 08's latent-size sweep on blob images
//! ([`crate::lessons::representation::train_blob_model`]) and the same measurement on the digits
//! ([`crate::lessons::representation::unit_report`]).

use serde::Serialize;

use crate::base::error::Result;
use crate::engine::data::{Mnist10k, binarize_fixed};
use crate::engine::train::{TrainConfig, TrainSet, Trainer};
use crate::engine::vae::VaeConfig;
use crate::lessons::representation::{
    LatentPoint, LatentSweep, LatentSweepConfig, UnitReport, train_blob_model, traversal_plot, unit_report,
};

use super::{CommonArgs, Work, Written, write_outputs};

/// Arguments of `vaelab experiment minimal-representation`.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The latent sizes Z, one model each (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "2,4,6,10")]
    pub latent_dims: Vec<usize>,
    /// Epochs per blob model (the notebook uses 100).
    #[arg(long, default_value_t = 100)]
    pub epochs: usize,
    /// Epochs of the digits model (0: skip the digits).
    #[arg(long, default_value_t = 3)]
    pub digit_epochs: usize,
    /// Z of the digits model.
    #[arg(long, default_value_t = 16)]
    pub digit_latent: usize,
    /// Test digits on which the digits model is measured.
    #[arg(long, default_value_t = 500)]
    pub digit_test: usize,
}

/// What `minimal-representation.json` holds.
#[derive(Clone, Debug, Serialize)]
pub struct MinimalRepresentation {
    /// The blob sweep.
    pub blobs: LatentSweep,
    /// The digits model (784-64-Z Bernoulli VAE, anchor training settings), if trained.
    pub digits: Option<UnitReport>,
}

/// The estimated work of [`run`]: each blob model's epochs and unit report (ELBO draws on the
/// test images, a traversal of every unit), and the digits model's.
///
/// # Errors
/// `InvalidParameter` for a bad latent size, zero epochs or `--digit-test` outside 2..=2000.
pub fn work(args: &Args) -> Result<Work> {
    let config = LatentSweepConfig::small(args.latent_dims.clone(), args.epochs, args.common.seed);
    config.validate()?;
    if args.digit_epochs > 0 && !(2..=super::TEST_DIGITS).contains(&args.digit_test) {
        return Err(crate::base::error::Error::invalid(
            "--digit-test",
            args.digit_test,
            format!("must be in 2..={} (the test digits)", super::TEST_DIGITS),
        ));
    }
    let digits_vae = VaeConfig::bernoulli(784, vec![64], args.digit_latent);
    let measure = &config.measure;
    // A unit report: `samples` ELBO draws per point, then a traversal of every unit from `bases`
    // codes at `steps` values.
    let report_passes = |latent: usize, points: usize| {
        let traversal = measure.bases.saturating_mul(measure.steps).saturating_mul(latent);
        points.saturating_mul(measure.samples).saturating_add(traversal)
    };
    let mut work = Work::new(
        "experiment minimal-representation",
        "--latent-dims × --epochs, --digit-epochs, --digit-latent",
    );
    for &z in &config.latent_dims {
        let vae = config.vae_config(z);
        work = work.training(&vae, 1, config.epochs, config.n_train).sampling(
            &vae,
            1,
            report_passes(z, config.n_test),
        );
    }
    if args.digit_epochs > 0 {
        work = work.training(&digits_vae, 1, args.digit_epochs, super::TRAIN_DIGITS).sampling(
            &digits_vae,
            1,
            report_passes(args.digit_latent, args.digit_test),
        );
    }
    Ok(work)
}

/// Runs the sweep of [`LatentSweepConfig::small`] (one [`train_blob_model`] per Z, as the
/// notebook's cells do) and, unless `--digit-epochs 0`, a digits model measured by
/// [`unit_report`]; writes `minimal-representation.json` and `.html` (KL bars per Z, active units
/// against Z, traversals of the largest model, the digits' units).
///
/// # Errors
/// A bad latent size or epoch count (`InvalidParameter`), `Diverged` from training, the digits file
/// unreadable, `Io` writing.
pub fn run(args: &Args) -> Result<Written> {
    let mut progress = work(args)?.check()?;
    let config = LatentSweepConfig::small(args.latent_dims.clone(), args.epochs, args.common.seed);
    let digits_vae = VaeConfig::bernoulli(784, vec![64], args.digit_latent);
    let mut points: Vec<LatentPoint> = Vec::new();
    let mut last = None;
    for &z in &config.latent_dims {
        let epoch = Work::epoch(&config.vae_config(z), config.n_train);
        let (vae, point) = train_blob_model(&config, z, &mut |_| progress.advance(epoch))?;
        last = Some((vae, point.report.clone()));
        points.push(point);
    }
    let sweep = LatentSweep::new(config.clone(), points);
    let mut plots = vec![sweep.kl_bars_plot(), sweep.active_units_plot()];
    let mut summary = format!("{}\n{}", sweep.table(), sweep.factor_table());
    if let Some((vae, report)) = &last {
        let test = config.test_set()?;
        let title = format!(
            "Z = {}: traversals of the active units, then two inactive ones (−3 … 3)",
            report.latent_dim
        );
        let (plot, units) =
            traversal_plot(vae, test.images.row(0), report, &config.measure.traversal_values(), 2, &title)?;
        summary += &format!(
            "\nZ = {}, rows of the traversal grid: units {units:?}\n{}",
            report.latent_dim,
            report.table()
        );
        plots.push(plot);
    }
    let digits = if args.digit_epochs > 0 {
        let data = Mnist10k::load()?;
        // Spread over the test digits, which are stored by class.
        let rows = crate::engine::data::evenly_spaced(data.test.len(), args.digit_test);
        let test = binarize_fixed(data.test.images.select(ndarray::Axis(0), &rows).view());
        let mut trainer =
            Trainer::new(digits_vae.clone(), TrainConfig::anchor(args.digit_epochs, args.common.seed))?;
        let set = TrainSet { x: data.train.images.view(), labels: None, binarize: true };
        let epoch = Work::epoch(&digits_vae, super::TRAIN_DIGITS);
        trainer.fit(&set, None, |_| progress.advance(epoch))?;
        let report = unit_report(&trainer.vae, test.view(), &config.measure)?;
        summary += &format!(
            "\ndigits, Z = {}, {} epochs: {} active units of {}\n{}",
            args.digit_latent,
            args.digit_epochs,
            report.active.count,
            report.latent_dim,
            report.table()
        );
        plots.push(report.units_plot(&format!("digits: KL and σ per unit (Z = {})", args.digit_latent)));
        Some(report)
    } else {
        None
    };
    progress.finish();
    write_outputs(
        &args.common.out,
        "minimal-representation",
        &MinimalRepresentation { blobs: sweep, digits },
        "Lesson 08: a minimal representation (active units against Z)",
        summary,
        &plots,
    )
}
