//! The `vaelab` command: rerun the course's experiments outside Jupyter. Every command lives in
//! [`vaelab::cli`]; this file parses the arguments and turns an error into one line and exit code 2.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // clap's own errors are several lines (`error: …`, usage, a hint): one line here, exit 2;
    // --help and --version print as clap prints them.
    let cli = match vaelab::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.kind().to_string();
            let detail = e.to_string();
            let first = detail.lines().next().unwrap_or(&text).trim_start_matches("error: ");
            // The lines up to the first blank one belong to the message (the missing arguments
            // of "the following required arguments were not provided:").
            let more: Vec<&str> =
                detail.lines().skip(1).take_while(|l| !l.trim().is_empty()).map(str::trim).collect();
            let joined =
                if more.is_empty() { first.to_string() } else { format!("{first} {}", more.join(", ")) };
            eprintln!("vaelab: {joined} (see vaelab --help)");
            return ExitCode::from(2);
        }
    };
    match vaelab::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output went away (`| head`): stop quietly, as a SIGPIPE would.
        Err(vaelab::Error::OutputClosed) => ExitCode::from(141),
        Err(e) => {
            eprintln!("vaelab: {e}");
            ExitCode::from(2)
        }
    }
}
