//! `test-cluster up STATE_DIR`: starts the tests' control plane for a person
//! (scripts/cluster), writes `STATE_DIR/env` (`export KUBECONFIG=…`) and runs until killed;
//! the cluster's guardian then stops the components and removes their directory.

use std::io::Write;
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(cmd), Some(state)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: test-cluster up STATE_DIR");
    };
    anyhow::ensure!(cmd == "up", "usage: test-cluster up STATE_DIR");
    let state = PathBuf::from(state);
    std::fs::create_dir_all(&state)?;
    let cluster = test_support::Cluster::start()?;
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
