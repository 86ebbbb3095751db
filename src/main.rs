//! The `vaelab` command: rerun the course's experiments outside Jupyter. Every command lives in
//! [`vaelab::cli`]; this file parses the arguments and turns an error into one line and exit code 2.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match vaelab::cli::run(vaelab::cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`| head`): stop quietly, as a SIGPIPE would.
        Err(vaelab::Error::OutputClosed) => ExitCode::from(141),
        Err(e) => {
            eprintln!("vaelab: {e}");
            ExitCode::from(2)
        }
    }
}
