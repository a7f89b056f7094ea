//! A spawned server process that is killed when dropped, with its log file and readiness wait.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long a server may take to answer after being spawned.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The last lines of a log file (for error messages).
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Readiness of a server, asked by [`ServerProcess::wait_ready`].
pub(crate) enum Probe {
    Ready,
    NotYet,
}

/// Why a server did not become ready.
pub(crate) enum StartFailure {
    /// The process exited; the log says the address was in use.
    PortTaken(anyhow::Error),
    Other(anyhow::Error),
}

/// A running server process; killed (and reaped) on drop or [`ServerProcess::kill`].
/// A copy of `cmd`'s program, arguments and directory (a `Command` cannot be cloned): to
/// start a server again as it was started.
pub(crate) fn copy_command(cmd: &Command) -> Command {
    let mut copy = Command::new(cmd.get_program());
    copy.args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        copy.current_dir(dir);
    }
    copy
}

pub(crate) struct ServerProcess {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl ServerProcess {
    /// Spawns `cmd` with stdin closed and stdout/stderr appended to `log`.
    pub(crate) fn spawn(name: &str, mut cmd: Command, log: &Path) -> anyhow::Result<Self> {
        let file = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("open {}", log.display()))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("spawn {name} ({:?})", cmd.get_program()))?;
        Ok(Self {
            name: name.to_owned(),
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    /// The process id while running.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub(crate) fn log_path(&self) -> &Path {
        &self.log
    }

    /// Polls `probe` until it reports ready, the process exits, or [`READY_TIMEOUT`] passes.
    pub(crate) fn wait_ready(
        &mut self,
        probe: impl FnMut(Option<u32>) -> Probe,
    ) -> Result<(), StartFailure> {
        self.wait_ready_within(READY_TIMEOUT, probe)
    }

    /// As [`ServerProcess::wait_ready`], with a timeout of the caller's (a kube-apiserver
    /// on a loaded 2-core machine takes longer than a registry).
    pub(crate) fn wait_ready_within(
        &mut self,
        timeout: Duration,
        mut probe: impl FnMut(Option<u32>) -> Probe,
    ) -> Result<(), StartFailure> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        let tail = log_tail(&self.log, 30);
                        let err = anyhow::anyhow!("{} exited ({status}); log:\n{tail}", self.name);
                        return Err(if crate::port::says_addr_in_use(&tail) {
                            StartFailure::PortTaken(err)
                        } else {
                            StartFailure::Other(err)
                        });
                    }
                    Ok(None) => {}
                    Err(e) => return Err(StartFailure::Other(e.into())),
                }
            }
            if let Probe::Ready = probe(self.pid()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                let tail = log_tail(&self.log, 30);
                return Err(StartFailure::Other(anyhow::anyhow!(
                    "{} did not answer within {timeout:?}; log:\n{tail}",
                    self.name
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the process now and waits for it to exit. Idempotent.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether a TCP connection to `addr` can be opened now.
pub(crate) fn can_connect(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Plain-HTTP `GET path` with `Connection: close`; returns the status code.
pub(crate) fn http_status(addr: SocketAddr, path: &str) -> anyhow::Result<u16> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: test-support-probe\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head)?;
    let line = String::from_utf8_lossy(&head[..n]);
    let Some(code) = line.split_whitespace().nth(1).and_then(|c| c.parse().ok()) else {
        bail!("not an HTTP answer from {addr}: {line:?}");
    };
    Ok(code)
}

/// Reads a server's log once it has stopped growing for a moment (at most ~1 s): a server
/// writes an access-log line just after the response left, so a client that has its response
/// may be a little ahead of the log.
pub(crate) fn read_settled_log(path: &Path) -> String {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut last = size(path);
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(25));
        let now = size(path);
        if now == last {
            break;
        }
        last = now;
    }
    std::fs::read_to_string(path).unwrap_or_default()
}
