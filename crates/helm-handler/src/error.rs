//! The error type at the helm-handler crate boundary. Every variant has a
//! [`componentkit::handler::ErrorCategory`]: the protocol engine decides retry versus fail
//! from the category alone, and `helm-handler check` prints it. Messages name the field,
//! Secret or file concerned, and never contain a credential.

use std::fmt;
use std::path::PathBuf;

use componentkit::handler::ErrorCategory;

use crate::values::ValuesKind;

/// Errors of helm-handler.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// From chart-source: spec parsing, fetching, the cache, archive checks.
    #[error(transparent)]
    Source(#[from] chart_source::Error),

    /// A field of the handler configuration (`spec.config`) is missing, unknown or malformed.
    #[error("config: field `{field}`: {message}")]
    Config { field: String, message: String },

    /// A `secretRef.namespace` that is neither the Component's nor the system namespace.
    /// Rejected before any lookup.
    #[error(
        "config: field `{field}`: Secret `{namespace}/{name}` is not allowed: a Component may only use Secrets in its own namespace ({component_namespace:?}) or the system namespace ({system_namespace:?})"
    )]
    SecretNamespaceNotAllowed {
        field: String,
        name: String,
        namespace: String,
        component_namespace: String,
        system_namespace: String,
    },

    /// A referenced Secret that exists in none of the namespaces searched.
    #[error(
        "not-found: Secret `{name}` (field `{field}`) not found in namespace(s) {}",
        Quoted(searched)
    )]
    SecretNotFound {
        field: String,
        name: String,
        searched: Vec<String>,
    },

    /// A Secret whose contents are not a usable credential or CA. The message names keys,
    /// never values.
    #[error("config: Secret `{namespace}/{name}` (field `{field}`): {message}")]
    SecretFormat {
        field: String,
        namespace: String,
        name: String,
        message: String,
    },

    /// A `valuesFrom` entry naming a namespace other than the Component's. Rejected before
    /// any lookup.
    #[error(
        "config: field `{field}`: {kind} `{namespace}/{name}` is not allowed: a Component may only use values from its own namespace ({component_namespace:?})"
    )]
    ValuesNamespaceNotAllowed {
        field: String,
        kind: ValuesKind,
        name: String,
        namespace: String,
        component_namespace: String,
    },

    /// A non-optional `valuesFrom` source that does not exist, or lacks its key.
    #[error("not-found: {kind} `{namespace}/{name}` (field `{field}`){}", match key {
        Some(k) if keys.is_empty() => format!(" has no key `{k}` (it has no keys)"),
        Some(k) => format!(" has no key `{k}` (keys: {})", Quoted(keys)),
        None => " not found".to_string(),
    })]
    ValuesSourceNotFound {
        field: String,
        kind: ValuesKind,
        namespace: String,
        name: String,
        /// The missing key, when the object exists.
        key: Option<String>,
        /// The keys it has (names only).
        keys: Vec<String>,
    },

    /// A `valuesFrom` key whose content cannot be used. The message names the key and says
    /// what is wrong, never the content.
    #[error("config: key `{key}` of {kind} `{namespace}/{name}` (field `{field}`): {message}")]
    ValuesSourceFormat {
        field: String,
        kind: ValuesKind,
        namespace: String,
        name: String,
        key: String,
        message: String,
    },

    /// The ServiceAccount a Component acts as does not exist. Never replaced by the
    /// controller's own rights.
    #[error(
        "config: ServiceAccount `{namespace}/{name}` ({origin}) not found: create it, with the rights its charts need in namespace {namespace:?}, or name another one; the controller's own rights are never used instead"
    )]
    ServiceAccountNotFound {
        namespace: String,
        name: String,
        /// `field `serviceAccountName`` or `flag `--default-service-account` (lockdown)`.
        origin: String,
    },

    /// A call to the Kubernetes API failed.
    #[error("{}: {context}: {message}", category_label(*category))]
    Kube {
        context: String,
        category: ErrorCategory,
        message: String,
    },

    /// A local file could not be read.
    #[error("io: {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A manifest file that is not valid YAML, or a document that is not a valid object.
    #[error("config: {}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Manifest {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },

    /// An operation did not finish in time.
    #[error("timeout: {0}")]
    Timeout(String),

    /// An unexpected failure (a bug, or an invariant broken).
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    pub fn category(&self) -> ErrorCategory {
        match self {
            Error::Source(e) => source_category(e.category()),
            Error::Config { .. }
            | Error::SecretNamespaceNotAllowed { .. }
            | Error::SecretFormat { .. }
            | Error::ValuesNamespaceNotAllowed { .. }
            | Error::ValuesSourceFormat { .. }
            | Error::ServiceAccountNotFound { .. }
            | Error::Manifest { .. } => ErrorCategory::Config,
            Error::SecretNotFound { .. } | Error::ValuesSourceNotFound { .. } => {
                ErrorCategory::NotFound
            }
            Error::Kube { category, .. } => *category,
            Error::Io { .. } => ErrorCategory::Io,
            Error::Timeout(_) => ErrorCategory::Timeout,
            Error::Internal(_) => ErrorCategory::Internal,
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

    /// Wraps a kube-rs error, categorised from the API status (401/403 → auth, 404 →
    /// not found, 409 → conflict, 5xx/429 and transport failures → network).
    pub fn kube(context: impl Into<String>, err: &kube::Error) -> Self {
        let category = match err {
            kube::Error::Api(status) => match status.code {
                401 | 403 => ErrorCategory::Auth,
                404 => ErrorCategory::NotFound,
                409 => ErrorCategory::Conflict,
                422 | 400 => ErrorCategory::Config,
                429 | 500..=599 => ErrorCategory::Network,
                _ => ErrorCategory::Internal,
            },
            kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
                ErrorCategory::Network
            }
            kube::Error::Auth(_) => ErrorCategory::Auth,
            _ => ErrorCategory::Internal,
        };
        Error::Kube {
            context: context.into(),
            category,
            message: err.to_string(),
        }
    }
}

/// chart-source's categories map one to one.
pub fn source_category(category: chart_source::Category) -> ErrorCategory {
    use chart_source::Category as C;
    match category {
        C::Config => ErrorCategory::Config,
        C::Auth => ErrorCategory::Auth,
        C::NotFound => ErrorCategory::NotFound,
        C::Network => ErrorCategory::Network,
        C::Tls => ErrorCategory::Tls,
        C::Integrity => ErrorCategory::Integrity,
        C::Io => ErrorCategory::Io,
    }
}

/// The lowercase label that starts every message (`config`, `not-found`, …), the same
/// spelling chart-source uses.
pub fn category_label(category: ErrorCategory) -> &'static str {
    match category {
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

/// Formats a list of names as `"a", "b"`.
struct Quoted<'a>(&'a [String]);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{s:?}")?;
        }
        Ok(())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_starts_with_its_category() {
        let errors = [
            Error::config("releaseName", "missing"),
            Error::SecretNotFound {
                field: "source.authentication.secretRef".into(),
                name: "creds".into(),
                searched: vec!["apps".into(), "deployment-system".into()],
            },
            Error::Timeout("x".into()),
            Error::ServiceAccountNotFound {
                namespace: "team-a".into(),
                name: "deployer".into(),
                origin: "field `serviceAccountName`".into(),
            },
            Error::ValuesSourceNotFound {
                field: "valuesFrom[0]".into(),
                kind: ValuesKind::ConfigMap,
                namespace: "apps".into(),
                name: "env".into(),
                key: None,
                keys: vec![],
            },
            Error::ValuesSourceFormat {
                field: "valuesFrom[0]".into(),
                kind: ValuesKind::Secret,
                namespace: "apps".into(),
                name: "s".into(),
                key: "values.yaml".into(),
                message: "not valid YAML".into(),
            },
            Error::ValuesNamespaceNotAllowed {
                field: "valuesFrom[0].namespace".into(),
                kind: ValuesKind::Secret,
                namespace: "other".into(),
                name: "s".into(),
                component_namespace: "apps".into(),
            },
            Error::from(chart_source::Error::config("source.type", "unknown")),
        ];
        for e in errors {
            assert!(
                e.to_string().starts_with(category_label(e.category())),
                "{e}"
            );
        }
    }

    #[test]
    fn chart_source_categories_map_one_to_one() {
        use chart_source::Category as C;
        let all = [
            C::Config,
            C::Auth,
            C::NotFound,
            C::Network,
            C::Tls,
            C::Integrity,
            C::Io,
        ];
        for c in all {
            assert_eq!(category_label(source_category(c)), c.as_str());
        }
    }
}
