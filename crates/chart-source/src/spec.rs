//! Source specifications: where a chart comes from and how to authenticate, as parsed from
//! a Component's `spec.config`. Parsing is two-stage (detect the source type from the fields
//! present, then parse that type's schema strictly); see [`crate::spec::parse_source`].

use url::Url;

use crate::reference::OciReference;

/// A reference to a Kubernetes Secret. `namespace` is honoured only when it is the
/// Component's namespace or the system namespace (enforced by the credential resolver).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretRef {
    pub name: String,
    pub namespace: Option<String>,
}

/// How the source authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// OCI registry credentials (`username`+`password`, `token`, or `.dockerconfigjson`).
    Registry,
    /// HTTP basic auth (`username`+`password`).
    Basic,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authentication {
    pub method: AuthMethod,
    pub secret_ref: SecretRef,
}

/// TLS options shared by both source types. Verification is on unless opted out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    pub insecure_skip_tls_verify: bool,
    /// A Secret holding a PEM CA bundle under the key `ca.crt`.
    pub ca_secret_ref: Option<SecretRef>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciSourceSpec {
    pub reference: OciReference,
    pub authentication: Option<Authentication>,
    /// Talk plain HTTP to the registry (opt-in, for registries without TLS).
    pub plain_http: bool,
    pub tls: TlsOptions,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRepository {
    /// A display name only (Helm's repo alias); not used for lookup.
    pub name: Option<String>,
    pub url: Url,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSourceSpec {
    pub repository: HttpRepository,
    pub chart: String,
    /// An exact version or a Helm (Masterminds) constraint such as `^12.1`.
    pub version: String,
    pub authentication: Option<Authentication>,
    pub tls: TlsOptions,
    /// Send credentials to chart URLs on hosts other than the repository's.
    pub pass_credentials: bool,
}

/// A parsed source of either type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    Oci(OciSourceSpec),
    Http(HttpSourceSpec),
}

impl SourceSpec {
    /// The source type's name, as written in `source.type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            SourceSpec::Oci(_) => "oci",
            SourceSpec::Http(_) => "http",
        }
    }

    pub fn authentication(&self) -> Option<&Authentication> {
        match self {
            SourceSpec::Oci(s) => s.authentication.as_ref(),
            SourceSpec::Http(s) => s.authentication.as_ref(),
        }
    }

    pub fn tls(&self) -> &TlsOptions {
        match self {
            SourceSpec::Oci(s) => &s.tls,
            SourceSpec::Http(s) => &s.tls,
        }
    }

    /// A one-line, secret-free description: the OCI reference or `URL chart@version`.
    pub fn describe(&self) -> String {
        match self {
            SourceSpec::Oci(s) => s.reference.to_string(),
            SourceSpec::Http(s) => format!("{} {}@{}", s.repository.url, s.chart, s.version),
        }
    }
}
