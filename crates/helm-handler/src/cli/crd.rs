//! `helm-handler crd`.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct CrdArgs {}

pub fn main(_args: CrdArgs) -> ExitCode {
    eprintln!("helm-handler crd: not implemented yet");
    ExitCode::from(2)
}
