//! `helm-handler template`.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct TemplateArgs {}

pub fn main(_args: TemplateArgs) -> ExitCode {
    eprintln!("helm-handler template: not implemented yet");
    ExitCode::from(2)
}
