//! Running one helm process: bounded output, bounded time, killed when late or dropped.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use super::errors::HelmError;
use super::stop::{HelmStop, TERM_GRACE};

/// Asks helm to stop (SIGTERM), waits [`TERM_GRACE`], then kills it. True when it exited
/// on its own.
async fn terminate(child: &mut tokio::process::Child, pid: Option<u32>) -> bool {
    #[cfg(unix)]
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        use nix::sys::signal::{Signal, kill};
        if kill(nix::unistd::Pid::from_raw(pid), Signal::SIGTERM).is_ok()
            && tokio::time::timeout(TERM_GRACE, child.wait()).await.is_ok()
        {
            return true;
        }
    }
    #[cfg(not(unix))]
    let _ = pid;
    let _ = child.start_kill();
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    false
}

/// Linux: helm receives SIGTERM when the thread that started it exits (the controller's
/// runtime threads live as long as the process).
#[cfg(target_os = "linux")]
fn terminate_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs in the child between fork and exec and only calls prctl(2),
    // which is async-signal-safe; it allocates nothing and touches no shared state.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
                .map_err(std::io::Error::from)
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn terminate_with_parent(_: &mut Command) {}

/// At most this many bytes of stdout are accepted (manifests of big charts are a few MiB).
pub const MAX_STDOUT: usize = 64 * 1024 * 1024;
/// At most this many bytes of stderr are kept: the last ones (the rest is read and dropped).
pub const MAX_STDERR: usize = 256 * 1024;

/// What a finished helm process printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The exit code as text ("1", or "signal" when killed by one).
    pub fn exit(&self) -> String {
        self.status
            .code()
            .map(|c| c.to_string())
            .unwrap_or_else(|| "signal".to_string())
    }
}

/// Which part of an over-long stream to keep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keep {
    /// The first `cap` bytes (stdout: anything longer is an error anyway).
    Head,
    /// The last `cap` bytes (stderr: helm prints its error last, after any warnings).
    Tail,
}

/// Reads a stream to its end, keeping at most `cap` bytes. Returns the bytes and whether
/// some were dropped.
async fn read_capped<R: AsyncRead + Unpin>(
    reader: Option<R>,
    cap: usize,
    keep: Keep,
) -> std::io::Result<(Vec<u8>, bool)> {
    let Some(mut reader) = reader else {
        return Ok((Vec::new(), false));
    };
    let mut kept = Vec::new();
    let mut dropped = false;
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        match keep {
            Keep::Head => {
                let take = n.min(cap.saturating_sub(kept.len()));
                kept.extend_from_slice(&chunk[..take]);
                dropped |= take < n;
            }
            Keep::Tail => {
                kept.extend_from_slice(&chunk[..n]);
                // Trim in batches so that trimming stays linear overall.
                if kept.len() > cap.saturating_mul(2) {
                    let excess = kept.len() - cap;
                    kept.drain(..excess);
                    dropped = true;
                }
            }
        }
    }
    if keep == Keep::Tail && kept.len() > cap {
        let excess = kept.len() - cap;
        kept.drain(..excess);
        dropped = true;
    }
    Ok((kept, dropped))
}

/// Runs `cmd` (stdin closed, stdout/stderr captured) for at most `timeout`. On timeout, or
/// when the returned future is dropped, the process is killed. When `stop` asks for it, helm
/// gets SIGTERM (it cancels and records a failed revision rather than a pending one) and is
/// killed only after [`TERM_GRACE`]. helm also gets SIGTERM when this process dies (Linux:
/// the parent-death signal), so a controller killed mid-upgrade does not leave helm running
/// on without it.
pub async fn run(
    mut cmd: Command,
    binary: &Path,
    operation: &'static str,
    timeout: Duration,
    stop: &HelmStop,
) -> Result<Output, HelmError> {
    if let Some(reason) = stop.refused() {
        return Err(HelmError::Stopped { operation, reason });
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    terminate_with_parent(&mut cmd);
    let mut child = cmd.spawn().map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            HelmError::NotInstalled {
                path: binary.to_path_buf(),
            }
        } else {
            HelmError::Spawn {
                path: binary.to_path_buf(),
                source,
            }
        }
    })?;
    let pid = child.id();
    crate::metrics::helm_process_started(operation);
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let io_err = |what: &str, source| HelmError::Io {
        operation,
        what: what.to_string(),
        source,
    };
    // The readers run on their own so that what a stopped helm printed can still be read.
    let out_reader = tokio::spawn(read_capped(stdout, MAX_STDOUT, Keep::Head));
    let err_reader = tokio::spawn(read_capped(stderr, MAX_STDERR, Keep::Tail));
    let ended = tokio::select! {
        r = tokio::time::timeout(timeout, child.wait()) => r.map_err(|_| None),
        reason = stop.requested() => Err(Some(reason)),
    };
    let status = match ended {
        Ok(status) => status,
        Err(None) => {
            // Late: kill and reap (kill_on_drop would kill too, but reaping avoids a zombie).
            let _ = child.start_kill();
            let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            tracing::warn!(operation, ?timeout, "helm timed out and was killed");
            return Err(HelmError::Timeout { operation, timeout });
        }
        Err(Some(reason)) => {
            let clean = terminate(&mut child, pid).await;
            let said = match tokio::time::timeout(Duration::from_secs(2), err_reader).await {
                Ok(Ok(Ok((bytes, _)))) => String::from_utf8_lossy(&bytes).trim().to_string(),
                _ => String::new(),
            };
            tracing::warn!(operation, %reason, exited_on_sigterm = clean, helm_said = %said, "helm stopped");
            return Err(HelmError::Stopped { operation, reason });
        }
    };
    let joined = |r: Result<std::io::Result<(Vec<u8>, bool)>, tokio::task::JoinError>| {
        r.unwrap_or_else(|e| Err(std::io::Error::other(e)))
    };
    let out = joined(out_reader.await);
    let err = joined(err_reader.await);
    let (stdout, stdout_dropped) = out.map_err(|e| io_err("reading helm's stdout", e))?;
    let (stderr, _) = err.map_err(|e| io_err("reading helm's stderr", e))?;
    let status = status.map_err(|e| io_err("waiting for helm", e))?;
    if stdout_dropped {
        return Err(HelmError::OutputTooLarge {
            operation,
            stream: "stdout",
            limit: MAX_STDOUT,
        });
    }
    Ok(Output {
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn caps_keep_head_or_tail() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let (head, dropped) = read_capped(Some(&data[..]), 1000, Keep::Head)
            .await
            .unwrap();
        assert!(dropped);
        assert_eq!(head, data[..1000]);
        let (tail, dropped) = read_capped(Some(&data[..]), 1000, Keep::Tail)
            .await
            .unwrap();
        assert!(dropped);
        assert_eq!(tail, data[data.len() - 1000..]);
        let (all, dropped) = read_capped(Some(&data[..10]), 1000, Keep::Tail)
            .await
            .unwrap();
        assert!(!dropped);
        assert_eq!(all, data[..10]);
    }
}
