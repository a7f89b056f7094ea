//! `helm-handler check`.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {}

pub fn main(_args: CheckArgs) -> ExitCode {
    eprintln!("helm-handler check: not implemented yet");
    ExitCode::from(2)
}
