//! The real `cosign` (built by `tools/cosign/build`), signing charts in a [`Registry`].
//!
//! Every cosign run has a private `HOME` and `DOCKER_CONFIG` (the registry login of
//! [`Registry::cosign`] lives there, written by `cosign login --password-stdin`), trusts the
//! registry's test CA through `SSL_CERT_FILE`, talks plain HTTP only with
//! `--allow-insecure-registry --allow-http-registry`, and never uploads to a transparency
//! log (`--tlog-upload=false`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use tempfile::TempDir;

use crate::auth::random_hex;
use crate::helm::{run, workspace_root};
use crate::registry::Registry;

/// The cosign binary: `$COSIGN_BIN`, else `<workspace>/.tools/cosign/bin/cosign`.
pub fn cosign_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("COSIGN_BIN").filter(|v| !v.is_empty()) {
        return PathBuf::from(bin);
    }
    workspace_root().join(".tools/cosign/bin/cosign")
}

/// A cosign key pair made by `cosign generate-key-pair`, with a random password.
pub struct CosignKey {
    dir: TempDir,
    password: String,
}

impl CosignKey {
    /// `cosign generate-key-pair` (password from `COSIGN_PASSWORD`) in a fresh directory.
    pub fn generate() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("cosign-key-")
            .tempdir()
            .context("cosign key tempdir")?;
        let key = CosignKey {
            password: random_hex(12)?,
            dir,
        };
        let mut cmd = Command::new(cosign_bin());
        cmd.arg("generate-key-pair")
            .current_dir(key.dir.path())
            .env("HOME", key.dir.path())
            .env("COSIGN_PASSWORD", &key.password);
        run(&mut cmd, "cosign generate-key-pair")?;
        Ok(key)
    }

    /// The encrypted private key (`cosign.key`).
    pub fn private_key(&self) -> PathBuf {
        self.dir.path().join("cosign.key")
    }

    /// The public key, PEM (`cosign.pub`).
    pub fn public_pem(&self) -> anyhow::Result<String> {
        std::fs::read_to_string(self.dir.path().join("cosign.pub")).context("read cosign.pub")
    }
}

/// cosign logged in to one registry (when it needs credentials).
pub struct Cosign<'r> {
    registry: &'r Registry,
    home: TempDir,
}

impl Registry {
    /// cosign for this registry: logged in (private `DOCKER_CONFIG`) in the auth modes.
    pub fn cosign(&self) -> anyhow::Result<Cosign<'_>> {
        let home = tempfile::Builder::new()
            .prefix("cosign-home-")
            .tempdir()
            .context("cosign home")?;
        let cosign = Cosign {
            registry: self,
            home,
        };
        if let (Some(user), Some(password)) = (self.username(), self.password()) {
            let mut cmd = cosign.command();
            cmd.args([
                "login",
                &self.host(),
                "--username",
                user,
                "--password-stdin",
            ]);
            run_with_stdin(&mut cmd, password.as_bytes(), "cosign login")?;
        }
        Ok(cosign)
    }

    /// `127.0.0.1:PORT/repo_path@digest`, the form cosign takes.
    pub fn image(&self, repo_path: &str, digest: &str) -> String {
        format!("{}/{}@{digest}", self.host(), repo_path.trim_matches('/'))
    }
}

impl Cosign<'_> {
    fn command(&self) -> Command {
        let mut cmd = Command::new(cosign_bin());
        let home = self.home.path();
        cmd.env("HOME", home)
            .env("DOCKER_CONFIG", home.join("docker"))
            .env("TUF_ROOT", home.join("tuf"))
            .env_remove("COSIGN_EXPERIMENTAL")
            .env_remove("COSIGN_REPOSITORY");
        if let Some(ca) = self.registry.ca_file() {
            cmd.env("SSL_CERT_FILE", ca);
        }
        cmd
    }

    /// The registry flags of sign/attach/generate: plain HTTP is opt-in for cosign.
    fn registry_args(&self, cmd: &mut Command) {
        if !self.registry.is_tls() {
            cmd.args(["--allow-insecure-registry", "--allow-http-registry"]);
        }
    }

    /// `cosign sign --key KEY --tlog-upload=false --yes IMAGE`: the signature goes to the
    /// tag `sha256-<hex>.sig` (cosign's default).
    pub fn sign(&self, key: &CosignKey, image: &str) -> anyhow::Result<()> {
        let mut cmd = self.command();
        cmd.env("COSIGN_PASSWORD", &key.password)
            .arg("sign")
            .arg("--key")
            .arg(key.private_key())
            .args(["--tlog-upload=false", "--yes"]);
        self.registry_args(&mut cmd);
        cmd.arg(image);
        run(&mut cmd, &format!("cosign sign {image}")).map(drop)
    }

    /// As [`Cosign::sign`], but stored as an OCI referrer (cosign's experimental
    /// `--registry-referrers-mode=oci-1-1`; on a registry without the referrers API, under the
    /// referrers tag schema).
    pub fn sign_as_referrer(&self, key: &CosignKey, image: &str) -> anyhow::Result<()> {
        let mut cmd = self.command();
        cmd.env("COSIGN_PASSWORD", &key.password)
            .env("COSIGN_EXPERIMENTAL", "1")
            .arg("sign")
            .arg("--key")
            .arg(key.private_key())
            .args([
                "--tlog-upload=false",
                "--yes",
                "--registry-referrers-mode=oci-1-1",
            ]);
        self.registry_args(&mut cmd);
        cmd.arg(image);
        run(&mut cmd, &format!("cosign sign (referrer) {image}")).map(drop)
    }

    /// `cosign generate IMAGE`: the simple-signing payload cosign would sign for it.
    pub fn generate_payload(&self, image: &str) -> anyhow::Result<Vec<u8>> {
        let mut cmd = self.command();
        cmd.arg("generate");
        self.registry_args(&mut cmd);
        cmd.arg(image);
        let out = cmd.output().context("cannot run cosign generate")?;
        if !out.status.success() {
            bail!(
                "cosign generate {image} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(out.stdout)
    }

    /// `cosign sign-blob --key KEY --tlog-upload=false FILE`: the base64 signature.
    pub fn sign_blob(&self, key: &CosignKey, file: &Path) -> anyhow::Result<String> {
        let mut cmd = self.command();
        cmd.env("COSIGN_PASSWORD", &key.password)
            .arg("sign-blob")
            .arg("--key")
            .arg(key.private_key())
            .args(["--tlog-upload=false", "--yes"])
            .arg(file);
        let out = cmd.output().context("cannot run cosign sign-blob")?;
        if !out.status.success() {
            bail!(
                "cosign sign-blob failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// `cosign attach signature --payload FILE --signature SIG IMAGE`: any payload and
    /// signature, as the signature of `image` (for the failure cases).
    pub fn attach_signature(
        &self,
        image: &str,
        payload: &Path,
        signature: &str,
    ) -> anyhow::Result<()> {
        let sig_file = self.home.path().join(format!("sig-{}", random_hex(4)?));
        std::fs::write(&sig_file, signature).context("write signature file")?;
        let mut cmd = self.command();
        cmd.args(["attach", "signature", "--payload"])
            .arg(payload)
            .arg("--signature")
            .arg(&sig_file);
        self.registry_args(&mut cmd);
        cmd.arg(image);
        run(&mut cmd, &format!("cosign attach signature {image}")).map(drop)
    }

    /// A file in cosign's private home (for payloads).
    pub fn scratch_file(&self, name: &str, contents: &[u8]) -> anyhow::Result<PathBuf> {
        let path = self.home.path().join(name);
        std::fs::write(&path, contents).with_context(|| format!("write {}", path.display()))?;
        Ok(path)
    }
}

/// Runs `cmd` with `input` on its standard input (a password, never in argv).
fn run_with_stdin(cmd: &mut Command, input: &[u8], what: &str) -> anyhow::Result<()> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("{what}: cannot run {:?}", cmd.get_program()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input).context("write stdin")?;
    }
    let out = child.wait_with_output().context("wait")?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
