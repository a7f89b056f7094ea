//! A CA and a server certificate made with the `openssl` CLI for one test server.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use crate::helm::run;

/// Files of a generated test CA and the server certificate it signed.
pub(crate) struct TestCerts {
    ca_key: PathBuf,
    pub(crate) ca_cert: PathBuf,
    pub(crate) server_cert: PathBuf,
    pub(crate) server_key: PathBuf,
}

impl TestCerts {
    /// Generates, in `dir`, a CA and a server certificate for `localhost`, 127.0.0.1 and `ips`.
    pub(crate) fn generate(dir: &Path, ips: &[Ipv4Addr]) -> anyhow::Result<Self> {
        let ca_key = dir.join("ca.key");
        let ca_cert = dir.join("ca.crt");
        let server_key = dir.join("server.key");
        let csr = dir.join("server.csr");
        let server_cert = dir.join("server.crt");
        let ext = dir.join("server.ext");

        run(
            Command::new("openssl")
                .args([
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                ])
                .args(["-nodes", "-days", "3", "-subj", "/CN=test-support CA"])
                .args(["-addext", "basicConstraints=critical,CA:TRUE"])
                .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
                .arg("-keyout")
                .arg(&ca_key)
                .arg("-out")
                .arg(&ca_cert),
            "openssl: CA certificate",
        )?;
        run(
            Command::new("openssl")
                .args([
                    "req",
                    "-new",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                ])
                .args(["-nodes", "-subj", "/CN=localhost", "-keyout"])
                .arg(&server_key)
                .arg("-out")
                .arg(&csr),
            "openssl: server key",
        )?;
        let mut san = vec!["DNS:localhost".to_owned(), "IP:127.0.0.1".to_owned()];
        san.extend(
            ips.iter()
                .filter(|ip| !ip.is_unspecified())
                .map(|ip| format!("IP:{ip}")),
        );
        san.dedup();
        std::fs::write(
            &ext,
            format!(
                "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
                 extendedKeyUsage=serverAuth\nsubjectAltName={}\n",
                san.join(",")
            ),
        )
        .context("write server.ext")?;
        run(
            Command::new("openssl")
                .args(["x509", "-req", "-days", "3", "-in"])
                .arg(&csr)
                .arg("-CA")
                .arg(&ca_cert)
                .arg("-CAkey")
                .arg(&ca_key)
                .arg("-CAcreateserial")
                .arg("-extfile")
                .arg(&ext)
                .arg("-out")
                .arg(&server_cert),
            "openssl: sign server certificate",
        )?;
        Ok(Self {
            ca_key,
            ca_cert,
            server_cert,
            server_key,
        })
    }

    /// Signs a client certificate `<stem>.crt` + `<stem>.key` in `dir` for user `cn` in
    /// group `org` (Kubernetes reads CN as the user name and O as a group).
    pub(crate) fn client_cert(
        &self,
        dir: &Path,
        stem: &str,
        cn: &str,
        org: &str,
    ) -> anyhow::Result<(PathBuf, PathBuf)> {
        let key = dir.join(format!("{stem}.key"));
        let csr = dir.join(format!("{stem}.csr"));
        let cert = dir.join(format!("{stem}.crt"));
        let ext = dir.join(format!("{stem}.ext"));
        run(
            Command::new("openssl")
                .args(["req", "-new", "-newkey", "ec"])
                .args(["-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
                .args(["-subj", &format!("/O={org}/CN={cn}"), "-keyout"])
                .arg(&key)
                .arg("-out")
                .arg(&csr),
            "openssl: client key",
        )?;
        std::fs::write(
            &ext,
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n",
        )
        .context("write client ext")?;
        run(
            Command::new("openssl")
                .args(["x509", "-req", "-days", "3", "-in"])
                .arg(&csr)
                .arg("-CA")
                .arg(&self.ca_cert)
                .arg("-CAkey")
                .arg(&self.ca_key)
                .arg("-CAcreateserial")
                .arg("-extfile")
                .arg(&ext)
                .arg("-out")
                .arg(&cert),
            "openssl: sign client certificate",
        )?;
        Ok((cert, key))
    }

    /// The CA certificate, PEM.
    pub(crate) fn ca_pem(&self) -> Option<Vec<u8>> {
        std::fs::read(&self.ca_cert).ok()
    }
}
