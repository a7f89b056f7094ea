//! # error-category
//!
//! The one error category shared by chart-source, componentkit and helm-handler: the
//! controller decides retry versus fail from it alone. One type with two spellings, so that
//! no crate needs a mapping of its own:
//!
//! - the reason, [`ErrorCategory::as_str`] (`NotFound`): the condition `reason`, the
//!   `status.failureCategory` value (serde) and the metrics label;
//! - the label, [`ErrorCategory::as_label`] (`not-found`): the prefix of every error message
//!   and the category the CLIs print.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

// The doc line is the description of `status.failureCategory` in the CRD: keep it as is.
// chart-source produces the first seven categories only (never `Conflict`, `Timeout` or
// `Internal`).
/// Category of a handler error; the engine decides retry vs fail from it alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ErrorCategory {
    /// Invalid configuration (permanent).
    Config,
    /// Authentication / authorization failed (retried slowly, and at once when a watched
    /// related object such as a Secret changes).
    Auth,
    /// Chart, version, Secret or other referenced thing not found (retried slowly, and at once
    /// when a watched related object changes).
    NotFound,
    /// Network failure, registry 5xx (transient).
    Network,
    /// TLS verification failed (permanent until the configuration changes).
    Tls,
    /// Digest mismatch, malformed archive (permanent).
    Integrity,
    /// Local I/O failure (transient).
    Io,
    /// API conflict (transient).
    Conflict,
    /// An operation timed out (transient).
    Timeout,
    /// Unexpected internal failure (transient: retried with backoff).
    Internal,
}

/// How the engine retries an error of a category.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryClass {
    /// Requeue with exponential backoff inside the phase timeout.
    Transient,
    /// Fail, but retry after a long fixed delay or when a related object changes.
    Slow,
    /// Fail; only a spec change or the retry annotation retries.
    Permanent,
}

impl ErrorCategory {
    /// Every category.
    pub const ALL: [ErrorCategory; 10] = [
        ErrorCategory::Config,
        ErrorCategory::Auth,
        ErrorCategory::NotFound,
        ErrorCategory::Network,
        ErrorCategory::Tls,
        ErrorCategory::Integrity,
        ErrorCategory::Io,
        ErrorCategory::Conflict,
        ErrorCategory::Timeout,
        ErrorCategory::Internal,
    ];

    /// True for errors retried with exponential backoff within the phase timeout.
    pub fn is_transient(self) -> bool {
        self.retry_class() == RetryClass::Transient
    }

    /// True for errors that fail the Component but are retried slowly (auth, not found).
    pub fn is_retried_slowly(self) -> bool {
        self.retry_class() == RetryClass::Slow
    }

    /// The retry class of the category.
    pub fn retry_class(self) -> RetryClass {
        match self {
            ErrorCategory::Network
            | ErrorCategory::Io
            | ErrorCategory::Conflict
            | ErrorCategory::Timeout
            | ErrorCategory::Internal => RetryClass::Transient,
            ErrorCategory::Auth | ErrorCategory::NotFound => RetryClass::Slow,
            ErrorCategory::Config | ErrorCategory::Tls | ErrorCategory::Integrity => {
                RetryClass::Permanent
            }
        }
    }

    /// The reason spelling (`NotFound`): the condition `reason` of a failure, the serde
    /// form and the metrics label. Also what `Display` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCategory::Config => "Config",
            ErrorCategory::Auth => "Auth",
            ErrorCategory::NotFound => "NotFound",
            ErrorCategory::Network => "Network",
            ErrorCategory::Tls => "Tls",
            ErrorCategory::Integrity => "Integrity",
            ErrorCategory::Io => "Io",
            ErrorCategory::Conflict => "Conflict",
            ErrorCategory::Timeout => "Timeout",
            ErrorCategory::Internal => "Internal",
        }
    }

    /// The label spelling (`not-found`): the start of every error message, and the category
    /// the CLIs print.
    pub fn as_label(self) -> &'static str {
        match self {
            ErrorCategory::Config => "config",
            ErrorCategory::Auth => "auth",
            ErrorCategory::NotFound => "not-found",
            ErrorCategory::Network => "network",
            ErrorCategory::Tls => "tls",
            ErrorCategory::Integrity => "integrity",
            ErrorCategory::Io => "io",
            ErrorCategory::Conflict => "conflict",
            ErrorCategory::Timeout => "timeout",
            ErrorCategory::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCategory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_is_the_serde_form_and_the_label_its_kebab_case() {
        for c in ErrorCategory::ALL {
            let json = serde_json::to_value(c).expect("serialises");
            assert_eq!(json, serde_json::json!(c.as_str()));
            let back: ErrorCategory = serde_json::from_value(json).expect("deserialises");
            assert_eq!(back, c);
            let mut kebab = String::new();
            for (i, ch) in c.as_str().char_indices() {
                if ch.is_uppercase() && i > 0 {
                    kebab.push('-');
                }
                kebab.push(ch.to_ascii_lowercase());
            }
            assert_eq!(c.as_label(), kebab);
        }
    }
}
