//! `helm-handler run`.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct RunArgs {}

pub fn main(_args: RunArgs) -> ExitCode {
    eprintln!("helm-handler run: not implemented yet");
    ExitCode::from(2)
}
