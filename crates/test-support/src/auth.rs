//! Random test credentials and htpasswd files (made by `htpasswd` from apache2-utils).

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

/// A username/password pair made up for one server instance.
#[derive(Clone)]
pub(crate) struct TestUser {
    pub(crate) username: String,
    pub(crate) password: String,
}

impl TestUser {
    /// A fresh random user, written to `htpasswd_file` (bcrypt if `bcrypt`, else apr1-MD5).
    pub(crate) fn create(htpasswd_file: &Path, bcrypt: bool) -> anyhow::Result<Self> {
        let user = Self {
            username: format!("user-{}", random_hex(4)?),
            password: random_hex(12)?,
        };
        htpasswd(htpasswd_file, &user.username, &user.password, bcrypt)?;
        Ok(user)
    }
}

/// Random lowercase hex of `bytes` bytes, from the kernel's random source.
pub(crate) fn random_hex(bytes: usize) -> anyhow::Result<String> {
    use std::io::Read;
    let mut buf = vec![0u8; bytes];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("read /dev/urandom")?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Appends an htpasswd line for `user`/`password` to `file` (`htpasswd -i`: password on stdin).
fn htpasswd(file: &Path, user: &str, password: &str, bcrypt: bool) -> anyhow::Result<()> {
    use std::io::Write;
    let mut cmd = Command::new("htpasswd");
    cmd.arg("-n")
        .arg("-i")
        .arg(if bcrypt { "-B" } else { "-m" })
        .arg(user);
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawn htpasswd (apache2-utils)")?;
    child
        .stdin
        .take()
        .context("htpasswd stdin")?
        .write_all(password.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("htpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let mut f = File::options().create(true).append(true).open(file)?;
    writeln!(f, "{}", line.trim())?;
    Ok(())
}
