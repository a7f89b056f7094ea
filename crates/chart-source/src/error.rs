//! The one error type at the chart-source boundary. Every variant has a [`Category`]: the
//! controller decides retry versus fail from the category alone, and the CLI prints it.

use std::fmt;
use std::path::PathBuf;

/// What kind of failure this is, independent of which source produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// The user's configuration is wrong: fix the Component.
    Config,
    /// The registry or repository refused the credentials (or their absence).
    Auth,
    /// The chart, version, tag or repository does not exist.
    NotFound,
    /// Could not reach the server, or it failed (5xx, timeout, reset).
    Network,
    /// The TLS handshake failed: unknown CA, bad certificate, wrong name.
    Tls,
    /// Content does not match its digest, or a chart archive fails the checks.
    Integrity,
    /// Local filesystem trouble (the cache directory).
    Io,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Config => "config",
            Category::Auth => "auth",
            Category::NotFound => "not-found",
            Category::Network => "network",
            Category::Tls => "tls",
            Category::Integrity => "integrity",
            Category::Io => "io",
        }
    }

    /// Transient failures may heal by themselves and are retried with backoff.
    pub fn is_transient(self) -> bool {
        matches!(self, Category::Network | Category::Io)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors of chart-source. Messages name the field, reference, URL or Secret concerned and
/// never contain credentials.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration field is missing, unknown or malformed.
    #[error("config: field `{field}`: {message}")]
    Config { field: String, message: String },

    /// An OCI reference that does not parse.
    #[error("config: invalid OCI reference `{input}`: {reason}")]
    InvalidReference { input: String, reason: String },

    #[error("auth: {target}: {message}")]
    Auth { target: String, message: String },

    #[error("not-found: {target}: {message}")]
    NotFound { target: String, message: String },

    #[error("network: {target}: {message}")]
    Network { target: String, message: String },

    #[error("tls: {target}: {message}")]
    Tls { target: String, message: String },

    #[error("integrity: {target}: {message}")]
    Integrity { target: String, message: String },

    #[error("io: {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn category(&self) -> Category {
        match self {
            Error::Config { .. } | Error::InvalidReference { .. } => Category::Config,
            Error::Auth { .. } => Category::Auth,
            Error::NotFound { .. } => Category::NotFound,
            Error::Network { .. } => Category::Network,
            Error::Tls { .. } => Category::Tls,
            Error::Integrity { .. } => Category::Integrity,
            Error::Io { .. } => Category::Io,
        }
    }

    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error's message with its sources.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
