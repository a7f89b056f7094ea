//! `test-cluster up STATE_DIR [--audit-policy FILE --audit-log FILE]`: starts the tests'
//! control plane for a person (scripts/cluster) or a benchmark (scripts/bench scale: the
//! audit log counts API requests by client), writes `STATE_DIR/env` (`export KUBECONFIG=…`)
//! and runs until killed; the cluster's guardian then stops the components and removes
//! their directory.

use std::io::Write;
use std::path::PathBuf;

const USAGE: &str = "usage: test-cluster up STATE_DIR [--audit-policy FILE --audit-log FILE]";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(cmd), Some(state)) = (args.next(), args.next()) else {
        anyhow::bail!(USAGE);
    };
    anyhow::ensure!(cmd == "up", USAGE);
    let (mut policy, mut log) = (None, None);
    while let Some(flag) = args.next() {
        let value = args.next().map(PathBuf::from);
        match flag.as_str() {
            "--audit-policy" => policy = value,
            "--audit-log" => log = value,
            _ => anyhow::bail!("unknown argument {flag:?}; {USAGE}"),
        }
    }
    let audit = match (policy, log) {
        (Some(policy), Some(log)) => Some(test_support::AuditLog { policy, log }),
        (None, None) => None,
        _ => anyhow::bail!("--audit-policy and --audit-log go together; {USAGE}"),
    };
    let state = PathBuf::from(state);
    std::fs::create_dir_all(&state)?;
    let cluster = test_support::Cluster::start_with(&test_support::ClusterOptions { audit })?;
    let kubeconfig = state.join("kubeconfig");
    std::fs::copy(cluster.kubeconfig(), &kubeconfig)?;
    let mut env = std::fs::File::create(state.join("env.tmp"))?;
    writeln!(
        env,
        "export KUBECONFIG={}",
        kubeconfig.canonicalize()?.display()
    )?;
    drop(env);
    std::fs::rename(state.join("env.tmp"), state.join("env"))?;
    eprintln!(
        "control plane up in {:.1} s at {} (logs in {})",
        cluster.started_in().as_secs_f64(),
        cluster.server(),
        cluster.dir().display()
    );
    loop {
        std::thread::park();
    }
}
