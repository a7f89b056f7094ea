//! The error type at the helm-handler crate boundary. Every variant has an
//! [`ErrorCategory`] (the one type chart-source's errors have too, so they pass through
//! unmapped): the protocol engine decides retry versus fail from the category alone, and
//! `helm-handler check` prints it. Messages start with the category's label (`not-found: …`),
//! name the field, Secret or file concerned, and never contain a credential.

use std::fmt;
use std::path::PathBuf;

use componentkit::handler::ErrorCategory;
use componentkit::kube_error::kube_category;

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

    /// A call to the Kubernetes API failed; categorised by [`kube_category`]. The kube-rs
    /// error is kept as the source (boxed: it is large).
    #[error("{}: {context}: {source}", kube_category(source).as_label())]
    Kube {
        context: String,
        #[source]
        source: Box<kube::Error>,
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
            Error::Source(e) => e.category(),
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
            Error::Kube { source, .. } => kube_category(source),
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

    /// Wraps a kube-rs error, categorised by the workspace's one classifier
    /// ([`kube_category`]: 401/403 → auth, 404 → not found, 409 → conflict, 400/422 →
    /// config, 408/504 → timeout, 429/5xx and transport failures → network).
    pub fn kube(context: impl Into<String>, err: kube::Error) -> Self {
        Error::Kube {
            context: context.into(),
            source: Box::new(err),
        }
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

    fn timed_out() -> kube::Error {
        kube::Error::Api(Box::new(
            kube::core::Status::failure("etcd is slow", "Timeout").with_code(504),
        ))
    }

    #[test]
    fn a_kube_failure_keeps_its_source() {
        let e = Error::kube("reading Secret `apps/creds`", timed_out());
        assert_eq!(e.category(), ErrorCategory::Timeout);
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(source, Some(timed_out().to_string()));
        assert_eq!(
            e.to_string(),
            format!("timeout: reading Secret `apps/creds`: {}", timed_out())
        );
    }

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
            Error::kube("reading Secret `apps/creds`", timed_out()),
        ];
        for e in errors {
            assert!(e.to_string().starts_with(e.category().as_label()), "{e}");
        }
    }
}
