//! `helm-handler pull`.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct PullArgs {}

pub fn main(_args: PullArgs) -> ExitCode {
    eprintln!("helm-handler pull: not implemented yet");
    ExitCode::from(2)
}
