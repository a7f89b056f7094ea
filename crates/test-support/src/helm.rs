//! Locating and running the real `helm` binary with private homes.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// The workspace root: two levels above this crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or(manifest)
}

/// The helm binary: `$HELM_BIN`, else `<workspace>/.tools/bin/helm` if present, else `helm`.
pub fn helm_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("HELM_BIN").filter(|v| !v.is_empty()) {
        return PathBuf::from(bin);
    }
    let local = workspace_root().join(".tools/bin/helm");
    if local.is_file() {
        return local;
    }
    PathBuf::from("helm")
}

/// A `helm` command whose config, cache, data and registry-config live under `home`, so the
/// user's own helm settings are never read or written.
pub fn helm_command(home: &Path) -> Command {
    let mut cmd = Command::new(helm_bin());
    cmd.env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_DATA_HOME", home.join("data"))
        .env(
            "HELM_REGISTRY_CONFIG",
            home.join("config/registry/config.json"),
        )
        .env(
            "HELM_REPOSITORY_CONFIG",
            home.join("config/repositories.yaml"),
        )
        .env("HELM_REPOSITORY_CACHE", home.join("cache/repository"))
        .env_remove("HELM_NAMESPACE")
        .env_remove("HELM_KUBECONTEXT");
    cmd
}

/// Runs `cmd`, failing with its stderr when it does not succeed; returns stdout + stderr.
pub(crate) fn run(cmd: &mut Command, what: &str) -> anyhow::Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("{what}: cannot run {:?}", cmd.get_program()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}{}",
            out.status,
            stdout.trim(),
            stderr.trim()
        );
    }
    Ok(format!("{stdout}{stderr}"))
}
