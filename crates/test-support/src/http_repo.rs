//! A real nginx serving a directory as a Helm HTTP chart repository (`helm repo index`).

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use tempfile::TempDir;

use crate::auth::TestUser;
use crate::helm::{helm_command, run};
use crate::port::{Attempt, with_free_port};
use crate::process::{Probe, ServerProcess, StartFailure, can_connect, read_settled_log};
use crate::tls::TestCerts;

/// The nginx binary (Debian package `nginx`).
const NGINX_BIN: &str = "/usr/sbin/nginx";

/// Placeholder replaced by the repo's own origin (`http://IP:PORT` / `https://IP:PORT`) in
/// [`HttpRepoOptions::index_url`] and [`HttpRepoOptions::extra_locations`].
pub const ORIGIN_PLACEHOLDER: &str = "{origin}";

/// How the repository is served.
#[derive(Debug, Clone, Default)]
pub struct HttpRepoOptions {
    /// Require basic auth (random user, see [`HttpRepo::username`]).
    pub basic_auth: bool,
    /// Serve HTTPS with a certificate from a CA generated for this instance.
    pub tls: bool,
    /// Serve the charts under `/sub/path/` instead of `/`.
    pub sub_path: Option<String>,
    /// Listen on this loopback address (default 127.0.0.1), e.g. 127.0.0.2 as "another host".
    pub bind_ip: Option<Ipv4Addr>,
    /// `helm repo index --url` (absolute chart URLs in index.yaml); `{origin}` is replaced.
    pub index_url: Option<String>,
    /// Raw nginx config inserted into the `server` block, e.g.
    /// `location /moved/ { return 302 {origin}/charts/; }`; `{origin}` is replaced.
    pub extra_locations: Option<String>,
}

/// One request of nginx's access log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAccessEntry {
    pub method: String,
    /// Request URI as sent (path and query).
    pub path: String,
    pub status: u16,
    /// Whether the request carried an `Authorization` header (its value is never logged).
    pub had_authorization: bool,
}

/// A running nginx chart repository; killed and its directory removed on drop.
pub struct HttpRepo {
    // Declared first: dropped (killed) before the directory is removed.
    process: ServerProcess,
    ip: Ipv4Addr,
    port: u16,
    options: HttpRepoOptions,
    user: Option<TestUser>,
    certs: Option<TestCerts>,
    charts: PathBuf,
    root: TempDir,
}

impl fmt::Debug for HttpRepo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRepo")
            .field("url", &self.url())
            .field("username", &self.username())
            .field("dir", &self.charts)
            .finish_non_exhaustive()
    }
}

impl HttpRepo {
    /// Copies the files of `charts_dir` into a temporary directory, indexes them with
    /// `helm repo index` and serves them with nginx; waits until it accepts connections.
    pub fn start(charts_dir: &Path, options: HttpRepoOptions) -> anyhow::Result<Self> {
        let root = tempfile::Builder::new()
            .prefix("test-http-repo-")
            .tempdir()
            .context("http repo tempdir")?;
        let base = root.path().to_path_buf();
        let sub_path = options
            .sub_path
            .as_deref()
            .map(|p| p.trim_matches('/').to_owned())
            .filter(|p| !p.is_empty());
        if let Some(p) = &sub_path
            && p.split('/').any(|c| c.is_empty() || c == "." || c == "..")
        {
            bail!("invalid sub_path {p:?}");
        }
        let www = base.join("www");
        let charts = match &sub_path {
            Some(p) => www.join(p),
            None => www.clone(),
        };
        std::fs::create_dir_all(&charts)?;
        copy_dir(charts_dir, &charts)?;
        for dir in ["tmp", "logs"] {
            std::fs::create_dir_all(base.join(dir))?;
        }
        let user = if options.basic_auth {
            Some(TestUser::create(&base.join("htpasswd"), false)?)
        } else {
            None
        };
        let ip = options.bind_ip.unwrap_or(Ipv4Addr::LOCALHOST);
        let certs = if options.tls {
            Some(TestCerts::generate(&base, &[ip])?)
        } else {
            None
        };
        let scheme = if options.tls { "https" } else { "http" };

        let (process, port) = with_free_port(ip, |port| {
            let origin = format!("{scheme}://{ip}:{port}");
            let conf = base.join("nginx.conf");
            std::fs::write(
                &conf,
                nginx_conf(&base, ip, port, &options, certs.as_ref(), &origin),
            )
            .context("write nginx.conf")?;
            let log = base.join(format!("logs/nginx-{port}.log"));
            let pid_file = base.join("nginx.pid");
            let _ = std::fs::remove_file(&pid_file);
            let mut cmd = Command::new(NGINX_BIN);
            // `-e stderr`: startup errors (before the config is read) go to the process log.
            cmd.arg("-p")
                .arg(&base)
                .arg("-c")
                .arg(&conf)
                .args(["-e", "stderr"])
                .current_dir(&base);
            let mut process = ServerProcess::spawn("nginx", cmd, &log)?;
            let addr = SocketAddr::from((ip, port));
            // nginx writes its pid file only after it bound every listen address, so a
            // connection is known to reach this nginx, not whoever else holds the port.
            let ready = process.wait_ready(|pid| {
                let written = std::fs::read_to_string(&pid_file).unwrap_or_default();
                if pid.is_some_and(|pid| written.trim() == pid.to_string()) && can_connect(addr) {
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
        let repo = Self {
            process,
            ip,
            port,
            options,
            user,
            certs,
            charts,
            root,
        };
        repo.reindex()?;
        Ok(repo)
    }

    /// `IP:PORT`.
    pub fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http(s)://IP:PORT` (no path).
    pub fn origin(&self) -> String {
        let scheme = if self.options.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// Base URL of the repository, including the sub-path, with a trailing slash.
    pub fn url(&self) -> String {
        match self
            .options
            .sub_path
            .as_deref()
            .map(|p| p.trim_matches('/'))
        {
            Some(p) if !p.is_empty() => format!("{}/{p}/", self.origin()),
            _ => format!("{}/", self.origin()),
        }
    }

    /// The served directory (a copy of the one given to [`HttpRepo::start`]); change files
    /// here, then call [`HttpRepo::reindex`].
    pub fn dir(&self) -> &Path {
        &self.charts
    }

    /// Runs `helm repo index` on [`HttpRepo::dir`] again (with the `index_url` option).
    pub fn reindex(&self) -> anyhow::Result<()> {
        let url = self
            .options
            .index_url
            .as_ref()
            .map(|u| u.replace(ORIGIN_PLACEHOLDER, &self.origin()));
        self.reindex_with_url(url.as_deref())
    }

    /// Runs `helm repo index [--url URL]` on [`HttpRepo::dir`].
    pub fn reindex_with_url(&self, url: Option<&str>) -> anyhow::Result<()> {
        let mut cmd = helm_command(&self.root.path().join("helm-home"));
        cmd.args(["repo", "index"]).arg(&self.charts);
        if let Some(url) = url {
            cmd.args(["--url", url]);
        }
        run(&mut cmd, "helm repo index").map(|_| ())
    }

    pub fn username(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.username.as_str())
    }

    pub fn password(&self) -> Option<&str> {
        self.user.as_ref().map(|u| u.password.as_str())
    }

    /// The test CA certificate (PEM) when serving TLS.
    pub fn ca_pem(&self) -> Option<Vec<u8>> {
        self.certs.as_ref().and_then(TestCerts::ca_pem)
    }

    /// Path of the test CA certificate when serving TLS.
    pub fn ca_file(&self) -> Option<&Path> {
        self.certs.as_ref().map(|c| c.ca_cert.as_path())
    }

    /// Kills nginx now; later connections fail. The object (and logs) stay.
    pub fn stop(&mut self) {
        self.process.kill();
    }

    /// Path of nginx's access log (`METHOD<TAB>URI<TAB>STATUS<TAB>yes|no` lines).
    pub fn access_log_path(&self) -> PathBuf {
        self.root.path().join("logs/access.log")
    }

    /// The requests served so far, in order.
    pub fn access_log(&self) -> Vec<HttpAccessEntry> {
        let text = read_settled_log(&self.access_log_path());
        text.lines().filter_map(parse_access_line).collect()
    }
}

/// The nginx configuration: one server, single process (killing it stops everything).
fn nginx_conf(
    base: &Path,
    ip: Ipv4Addr,
    port: u16,
    options: &HttpRepoOptions,
    certs: Option<&TestCerts>,
    origin: &str,
) -> String {
    let b = base.display();
    let mut server = String::new();
    match certs {
        Some(c) => server.push_str(&format!(
            "    listen {ip}:{port} ssl;\n    ssl_certificate {};\n    ssl_certificate_key {};\n",
            c.server_cert.display(),
            c.server_key.display()
        )),
        None => server.push_str(&format!("    listen {ip}:{port};\n")),
    }
    if options.basic_auth {
        server.push_str(&format!(
            "    auth_basic \"charts\";\n    auth_basic_user_file {b}/htpasswd;\n"
        ));
    }
    if let Some(extra) = &options.extra_locations {
        server.push_str(&extra.replace(ORIGIN_PLACEHOLDER, origin));
        server.push('\n');
    }
    format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {b}/nginx.pid;\n\
         error_log stderr notice;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n\
         \x20 types {{ application/x-yaml yaml yml; application/gzip tgz gz; application/json json; }}\n\
         \x20 default_type application/octet-stream;\n\
         \x20 client_body_temp_path {b}/tmp/body;\n  proxy_temp_path {b}/tmp/proxy;\n\
         \x20 fastcgi_temp_path {b}/tmp/fastcgi;\n  uwsgi_temp_path {b}/tmp/uwsgi;\n\
         \x20 scgi_temp_path {b}/tmp/scgi;\n\
         \x20 map $http_authorization $had_authorization {{ \"\" no; default yes; }}\n\
         \x20 log_format repo '$request_method\\t$request_uri\\t$status\\t$had_authorization';\n\
         \x20 access_log {b}/logs/access.log repo;\n\
         \x20 etag on;\n  sendfile off;\n  keepalive_timeout 5s;\n\
         \x20 server {{\n{server}\
         \x20   server_name _;\n    root {b}/www;\n  }}\n\
         }}\n"
    )
}

/// Parses a line of the `repo` log format: `METHOD\tURI\tSTATUS\tyes|no`.
fn parse_access_line(line: &str) -> Option<HttpAccessEntry> {
    let mut parts = line.split('\t');
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let status = parts.next()?.parse().ok()?;
    let had_authorization = parts.next()? == "yes";
    Some(HttpAccessEntry {
        method,
        path,
        status,
        had_authorization,
    })
}

/// Copies the files and directories of `from` into `to` (recursively).
fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| format!("read {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}
