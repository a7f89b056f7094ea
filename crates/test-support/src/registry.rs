//! A real `docker-registry` (CNCF distribution 2.8) on a free loopback port.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use tempfile::TempDir;

use crate::auth::TestUser;
use crate::helm::{helm_command, run};
use crate::port::{Attempt, with_free_port};
use crate::process::{
    Probe, ServerProcess, StartFailure, can_connect, http_status, read_settled_log,
};
use crate::tls::TestCerts;

/// The registry binary (Debian package `docker-registry`).
const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// How the registry is reached and who may use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryMode {
    /// Plain HTTP, no authentication.
    Anonymous,
    /// Plain HTTP, htpasswd basic auth with a random user.
    BasicAuth,
    /// HTTPS with a certificate from a CA generated for this instance, no authentication.
    Tls,
    /// HTTPS as [`RegistryMode::Tls`] plus htpasswd basic auth.
    TlsBasicAuth,
    /// Plain HTTP, token auth: distribution's reference token server
    /// (`.tools/bin/token-server`, or `$TOKEN_SERVER_BIN`) issues the tokens for a random
    /// htpasswd user, who may use the repositories under `<username>/` only.
    TokenAuth,
}

impl RegistryMode {
    fn tls(self) -> bool {
        matches!(self, Self::Tls | Self::TlsBasicAuth)
    }
    fn auth(self) -> bool {
        matches!(self, Self::BasicAuth | Self::TlsBasicAuth | Self::TokenAuth)
    }
}

/// One request line of the registry's access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    pub method: String,
    /// Request URI as sent (path and query).
    pub path: String,
    pub status: u16,
}

/// A running registry; killed and its directory removed on drop.
pub struct Registry {
    // Declared first: dropped (killed) before the directory is removed.
    process: ServerProcess,
    token_server: Option<(ServerProcess, u16)>,
    mode: RegistryMode,
    port: u16,
    user: Option<TestUser>,
    certs: Option<TestCerts>,
    dir: TempDir,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("mode", &self.mode)
            .field("host", &self.host())
            .field("username", &self.username())
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Starts a registry in `mode` and waits until `/v2/` answers.
    pub fn start(mode: RegistryMode) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("test-registry-")
            .tempdir()
            .context("registry tempdir")?;
        let root = dir.path().to_path_buf();
        let user = if mode.auth() {
            Some(TestUser::create(&root.join("htpasswd"), true)?)
        } else {
            None
        };
        let certs = if mode.tls() {
            Some(TestCerts::generate(&root, &[])?)
        } else {
            None
        };
        let token_server = if mode == RegistryMode::TokenAuth {
            Some(start_token_server(&root)?)
        } else {
            None
        };
        let realm = token_server
            .as_ref()
            .map(|(_, port)| format!("http://127.0.0.1:{port}/token/"));
        let (process, port) = with_free_port(Ipv4Addr::LOCALHOST, |port| {
            let config = root.join("config.yml");
            let yaml = config_yaml(&root, port, mode, certs.as_ref(), realm.as_deref());
            std::fs::write(&config, yaml).context("write registry config")?;
            let log = root.join(format!("registry-{port}.log"));
            let mut cmd = Command::new(REGISTRY_BIN);
            cmd.arg("serve").arg(&config).current_dir(&root);
            let mut process = ServerProcess::spawn("docker-registry", cmd, &log)?;
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let listening = format!("listening on 127.0.0.1:{port}");
            let ready = process.wait_ready(|_pid| {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                if !log.contains(&listening) {
                    return Probe::NotYet;
                }
                let answered = if mode.tls() {
                    can_connect(addr)
                } else {
                    matches!(http_status(addr, "/v2/"), Ok(200 | 401))
                };
                if answered {
                    Probe::Ready
                } else {
                    Probe::NotYet
                }
            });
            match ready {
                Ok(()) => Ok(Attempt::Started((process, port))),
                Err(StartFailure::PortTaken(e)) => Ok(Attempt::PortTaken(e)),
                Err(StartFailure::Other(e)) => Err(e),
            }
        })?;
        Ok(Self {
            process,
            token_server,
            mode,
            port,
            user,
            certs,
            dir,
        })
    }

    pub fn mode(&self) -> RegistryMode {
        self.mode
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn is_tls(&self) -> bool {
        self.mode.tls()
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        let scheme = if self.is_tls() { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// `oci://127.0.0.1:PORT/path:tag`.
    pub fn oci_ref(&self, path: &str, tag: &str) -> String {
        format!("{}:{tag}", self.oci_base(path))
    }

    /// `oci://127.0.0.1:PORT/path` (what `helm push` takes; empty `path` gives the host only).
    pub fn oci_base(&self, path: &str) -> String {
        let path = path.trim_matches('/');
        if path.is_empty() {
            format!("oci://{}", self.host())
        } else {
            format!("oci://{}/{path}", self.host())
        }
    }

    pub fn username(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.username.as_str())
    }

    pub fn password(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.password.as_str())
    }

    /// The test CA certificate (PEM) in TLS modes.
    pub fn ca_pem(&self) -> Option<Vec<u8>> {
        self.certs.as_ref().and_then(TestCerts::ca_pem)
    }

    /// Path of the test CA certificate in TLS modes.
    pub fn ca_file(&self) -> Option<&Path> {
        self.certs.as_ref().map(|c| c.ca_cert.as_path())
    }

    /// The registry's temporary directory (config, storage under `data/`, logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Path of the registry's log file (its stdout and stderr).
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// Kills the registry now; later connections fail. The object (and logs) stay.
    pub fn stop(&mut self) {
        self.process.kill();
    }

    /// Freezes (`STOP`) or thaws (`CONT`) the registry process: requests hang.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.process.pid().context("the registry is not running")?;
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .context("kill")?
            .success();
        anyhow::ensure!(ok, "kill -{signal} registry");
        Ok(())
    }

    /// Starts the registry again (after [`Registry::stop`]) on the same port, with the same
    /// storage and configuration, and waits until `/v2/` answers.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.process.kill();
        let root = self.dir.path();
        let port = self.port;
        let log = root.join(format!("registry-{port}-restarted.log"));
        let mut cmd = Command::new(REGISTRY_BIN);
        cmd.arg("serve")
            .arg(root.join("config.yml"))
            .current_dir(root);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        for _ in 0..20 {
            let mut process =
                ServerProcess::spawn("docker-registry", crate::process::copy_command(&cmd), &log)?;
            let ready = process.wait_ready(|_pid| {
                if matches!(http_status(addr, "/v2/"), Ok(200 | 401))
                    || (self.mode.tls() && can_connect(addr))
                {
                    Probe::Ready
                } else {
                    Probe::NotYet
                }
            });
            if ready.is_ok() {
                self.process = process;
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        anyhow::bail!("the registry did not start again on port {port}")
    }

    /// The requests served so far, in order, from the access log.
    /// The readiness probe's `GET /v2/` is among them (plain-HTTP modes).
    pub fn access_log(&self) -> Vec<AccessEntry> {
        let text = read_settled_log(self.log_path());
        text.lines().filter_map(parse_access_line).collect()
    }

    /// Blob downloads: `GET /v2/…/blobs/sha256:…` answered 200 or 307.
    pub fn blob_gets(&self) -> usize {
        self.access_log()
            .iter()
            .filter(|e| e.method == "GET" && e.path.contains("/blobs/sha256:"))
            .filter(|e| matches!(e.status, 200 | 307))
            .count()
    }

    /// Manifest downloads: `GET /v2/…/manifests/…` answered 200.
    pub fn manifest_gets(&self) -> usize {
        self.access_log()
            .iter()
            .filter(|e| e.method == "GET" && e.path.contains("/manifests/") && e.status == 200)
            .count()
    }

    /// `helm push TGZ oci://HOST/repo_path` with the flags the mode needs (`--plain-http`,
    /// `--ca-file`, `--username/--password`); returns the manifest digest (`sha256:…`).
    pub fn push(&self, tgz: &Path, repo_path: &str) -> anyhow::Result<String> {
        let mut cmd = helm_command(&self.dir.path().join("helm-home"));
        cmd.arg("push").arg(tgz).arg(self.oci_base(repo_path));
        match &self.certs {
            Some(certs) => cmd.arg("--ca-file").arg(&certs.ca_cert),
            None => cmd.arg("--plain-http"),
        };
        if let Some(user) = &self.user {
            cmd.args(["--username", &user.username, "--password", &user.password]);
        }
        let out = run(&mut cmd, &format!("helm push {}", tgz.display()))?;
        match out
            .lines()
            .find_map(|l| l.trim().strip_prefix("Digest:"))
            .map(str::trim)
        {
            Some(digest) if digest.starts_with("sha256:") => Ok(digest.to_owned()),
            _ => bail!("helm push printed no digest: {out}"),
        }
    }
    /// Copies manifest `from_repo:from_tag` to `to_repo:to_tag` through the registry API
    /// (blobs mounted across repositories, manifest put byte for byte), as a mirroring tool
    /// does: the chart inside keeps its own name and version. Uses the real `curl`.
    pub fn copy(
        &self,
        from_repo: &str,
        from_tag: &str,
        to_repo: &str,
        to_tag: &str,
    ) -> anyhow::Result<()> {
        const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
        let base = self.base_url();
        let work = tempfile::tempdir()?;
        let manifest_file = work.path().join("manifest.json");
        let manifest_path = manifest_file.to_string_lossy().into_owned();
        let curl = || {
            let mut cmd = Command::new("curl");
            cmd.args(["-sS", "--fail-with-body"]);
            if let Some(certs) = &self.certs {
                cmd.arg("--cacert").arg(&certs.ca_cert);
            }
            if let Some(user) = &self.user {
                cmd.arg("--user")
                    .arg(format!("{}:{}", user.username, user.password));
            }
            cmd
        };
        run(
            curl().args([
                "-H",
                &format!("Accept: {OCI_MANIFEST}"),
                "-o",
                &manifest_path,
                &format!("{base}/v2/{from_repo}/manifests/{from_tag}"),
            ]),
            "curl GET manifest",
        )?;
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&manifest_file)?).context("manifest JSON")?;
        let mut digests = vec![manifest["config"]["digest"].clone()];
        if let Some(layers) = manifest["layers"].as_array() {
            digests.extend(layers.iter().map(|l| l["digest"].clone()));
        }
        for digest in digests {
            let Some(digest) = digest.as_str() else {
                bail!("manifest of {from_repo}:{from_tag} has a descriptor without digest");
            };
            let code = run(
                curl().args([
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "-X",
                    "POST",
                    &format!("{base}/v2/{to_repo}/blobs/uploads/?mount={digest}&from={from_repo}"),
                ]),
                "curl POST blob mount",
            )?;
            if code.trim() != "201" {
                bail!("mounting {digest} into {to_repo} answered {code}");
            }
        }
        run(
            curl().args([
                "-o",
                "/dev/null",
                "-X",
                "PUT",
                "-H",
                &format!("Content-Type: {OCI_MANIFEST}"),
                "--data-binary",
                &format!("@{manifest_path}"),
                &format!("{base}/v2/{to_repo}/manifests/{to_tag}"),
            ]),
            "curl PUT manifest",
        )?;
        Ok(())
    }

    /// A refresh token for the test user, as `docker login` gets one (the identity token of
    /// a `.dockerconfigjson`): the token server's `GET /token/?offline_token=true` with the
    /// user's basic credentials. Only in [`RegistryMode::TokenAuth`].
    pub fn refresh_token(&self) -> anyhow::Result<String> {
        let (Some((_, port)), Some(user)) = (&self.token_server, &self.user) else {
            bail!("refresh_token: the registry has no token server");
        };
        let out = run(
            Command::new("curl")
                .args(["-sS", "--fail-with-body", "--user"])
                .arg(format!("{}:{}", user.username, user.password))
                .arg(format!(
                    "http://127.0.0.1:{port}/token/?service={TOKEN_SERVICE}&offline_token=true"
                )),
            "curl GET token (offline)",
        )?;
        let json: serde_json::Value = serde_json::from_str(out.trim()).context("token answer")?;
        match json["refresh_token"].as_str() {
            Some(token) if !token.is_empty() => Ok(token.to_owned()),
            _ => bail!("the token server gave no refresh token"),
        }
    }

    /// Where the registry stores blob `digest` (`sha256:…`) on disk (to tamper with it).
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(hex.get(..2).unwrap_or(hex))
            .join(hex)
            .join("data")
    }
}

/// The service name the registry and its token server agree on.
const TOKEN_SERVICE: &str = "test-registry";
/// The issuer the token server writes in its tokens and the registry expects.
const TOKEN_ISSUER: &str = "test-support-token-server";

/// The token server binary: `$TOKEN_SERVER_BIN`, else `<workspace>/.tools/bin/token-server`
/// (built by scripts/dev-setup from tools/token-server/go.mod).
pub fn token_server_bin() -> PathBuf {
    std::env::var_os("TOKEN_SERVER_BIN")
        .filter(|v| !v.is_empty())
        .map_or_else(
            || crate::helm::workspace_root().join(".tools/bin/token-server"),
            PathBuf::from,
        )
}

/// Starts distribution's token server on a free port, signing with a new EC key whose
/// self-signed certificate (`token-signing.crt`) the registry trusts.
fn start_token_server(root: &Path) -> anyhow::Result<(ServerProcess, u16)> {
    let key = root.join("token-signing.key");
    let cert = root.join("token-signing.crt");
    run(
        Command::new("openssl")
            .args([
                "ecparam",
                "-name",
                "prime256v1",
                "-genkey",
                "-noout",
                "-out",
            ])
            .arg(&key),
        "openssl ecparam",
    )?;
    run(
        Command::new("openssl")
            .args([
                "req",
                "-new",
                "-x509",
                "-days",
                "2",
                "-subj",
                "/CN=token-signing",
                "-key",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert),
        "openssl req",
    )?;
    with_free_port(Ipv4Addr::LOCALHOST, |port| {
        let log = root.join(format!("token-server-{port}.log"));
        let mut cmd = Command::new(token_server_bin());
        cmd.arg("-addr")
            .arg(format!("127.0.0.1:{port}"))
            .args([
                "-realm",
                "test-token-server",
                "-issuer",
                TOKEN_ISSUER,
                "-passwd",
            ])
            .arg(root.join("htpasswd"))
            .arg("-key")
            .arg(&key)
            .current_dir(root);
        let mut process = ServerProcess::spawn("token-server", cmd, &log)?;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        match process.wait_ready(|_pid| {
            if can_connect(addr) {
                Probe::Ready
            } else {
                Probe::NotYet
            }
        }) {
            Ok(()) => Ok(Attempt::Started((process, port))),
            Err(StartFailure::PortTaken(e)) => Ok(Attempt::PortTaken(e)),
            Err(StartFailure::Other(e)) => Err(e),
        }
    })
}

/// The registry configuration (YAML).
fn config_yaml(
    root: &Path,
    port: u16,
    mode: RegistryMode,
    certs: Option<&TestCerts>,
    token_realm: Option<&str>,
) -> String {
    let data: PathBuf = root.join("data");
    let mut yaml = format!(
        "version: 0.1\n\
         log:\n  level: info\n  accesslog:\n    disabled: false\n\
         storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: test-support-{port}\n",
        data = data.display(),
    );
    if let Some(certs) = certs {
        yaml.push_str(&format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            certs.server_cert.display(),
            certs.server_key.display()
        ));
    }
    if let Some(realm) = token_realm {
        yaml.push_str(&format!(
            "auth:\n  token:\n    realm: {realm}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
            root.join("token-signing.crt").display()
        ));
    } else if mode.auth() {
        yaml.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: test-registry\n    path: {}\n",
            root.join("htpasswd").display()
        ));
    }
    yaml
}

/// Parses a combined-format access line:
/// `127.0.0.1 - - [23/Nov/2026:09:13:22 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "curl/7.88.1"`.
fn parse_access_line(line: &str) -> Option<AccessEntry> {
    if line.starts_with("time=") {
        return None;
    }
    let (_, rest) = line.split_once("] \"")?;
    let (request, rest) = rest.split_once('"')?;
    let mut parts = request.split(' ');
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let status = rest.split_whitespace().next()?.parse().ok()?;
    Some(AccessEntry {
        method,
        path,
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_access_line() {
        let e = parse_access_line(
            r#"127.0.0.1 - - [23/Nov/2026:09:13:22 +0000] "GET /v2/a/blobs/sha256:ab HTTP/1.1" 307 2 "" "helm""#,
        )
        .unwrap();
        assert_eq!(e.method, "GET");
        assert_eq!(e.path, "/v2/a/blobs/sha256:ab");
        assert_eq!(e.status, 307);
        assert!(parse_access_line(r#"time="x" level=info msg="response completed""#).is_none());
    }
}
