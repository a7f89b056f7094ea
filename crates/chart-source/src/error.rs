//! The one error type at the chart-source boundary. Every variant has an [`ErrorCategory`]
//! (the workspace's one category type, so the controller uses it as is): the controller
//! decides retry versus fail from the category alone, and the CLI prints it. chart-source
//! produces `Config`, `Auth`, `NotFound`, `Network`, `Tls`, `Integrity` and `Io` only.

use std::path::PathBuf;

use error_category::ErrorCategory;

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
    pub fn category(&self) -> ErrorCategory {
        match self {
            Error::Config { .. } | Error::InvalidReference { .. } => ErrorCategory::Config,
            Error::Auth { .. } => ErrorCategory::Auth,
            Error::NotFound { .. } => ErrorCategory::NotFound,
            Error::Network { .. } => ErrorCategory::Network,
            Error::Tls { .. } => ErrorCategory::Tls,
            Error::Integrity { .. } => ErrorCategory::Integrity,
            Error::Io { .. } => ErrorCategory::Io,
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
