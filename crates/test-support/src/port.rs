//! Free loopback ports, with retries when another process takes the port first.

use std::net::{Ipv4Addr, TcpListener};

use anyhow::Context;

/// How often a start is retried after the picked port turned out to be taken.
const ATTEMPTS: usize = 5;

/// Outcome of one start attempt on a picked port.
pub(crate) enum Attempt<T> {
    Started(T),
    /// The port was taken in the meantime: pick another one and retry.
    PortTaken(anyhow::Error),
}

/// Asks the kernel for a free port on `ip` (bind to port 0, read it, release it).
pub(crate) fn free_port(ip: Ipv4Addr) -> anyhow::Result<u16> {
    let listener = TcpListener::bind((ip, 0)).with_context(|| format!("bind {ip}:0"))?;
    Ok(listener.local_addr()?.port())
}

/// Calls `start` with free ports until it does not report [`Attempt::PortTaken`].
pub(crate) fn with_free_port<T>(
    ip: Ipv4Addr,
    mut start: impl FnMut(u16) -> anyhow::Result<Attempt<T>>,
) -> anyhow::Result<T> {
    let mut last = None;
    for _ in 0..ATTEMPTS {
        match start(free_port(ip)?)? {
            Attempt::Started(v) => return Ok(v),
            Attempt::PortTaken(e) => last = Some(e),
        }
    }
    Err(last
        .unwrap_or_else(|| anyhow::anyhow!("no attempt made"))
        .context(format!("no free port on {ip} after {ATTEMPTS} attempts")))
}

/// Whether a server log says its listen address was taken.
pub(crate) fn says_addr_in_use(log: &str) -> bool {
    log.to_ascii_lowercase().contains("address already in use")
}
