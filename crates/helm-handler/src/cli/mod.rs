//! Command-line interface. One module per subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod check;
pub mod crd;
pub mod offline;
pub mod pull;
pub mod run;
pub mod template;

#[derive(Debug, Parser)]
#[command(
    name = "helm-handler",
    version,
    about = "Deploys Helm charts described by Component resources"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller.
    Run(run::RunArgs),
    /// Print the Component CRD as YAML.
    Crd(crd::CrdArgs),
    /// Locate (download into the cache) the chart of every helm Component in the files.
    Pull(pull::PullArgs),
    /// Locate and render (helm template) every helm Component in the files, offline.
    Template(template::TemplateArgs),
    /// Validate the configuration of every helm Component in the files.
    Check(check::CheckArgs),
}

pub fn main(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run(args) => run::main(args),
        Command::Crd(args) => crd::main(args),
        Command::Pull(args) => pull::main(args),
        Command::Template(args) => template::main(args),
        Command::Check(args) => check::main(args),
    }
}
