//! The `helm-handler` binary: the controller (`run`) and the offline commands.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = helm_handler::cli::Cli::parse();
    helm_handler::cli::main(cli)
}
