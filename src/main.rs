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
    Bounds(vaelab::bounds::cli::BoundsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::BookAssets { out } => book_assets(&out),
        Command::Bounds(args) => vaelab::bounds::cli::run(&args).map(|text| print!("{text}")),
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
