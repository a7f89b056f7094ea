//! Source specifications: where a chart comes from and how to authenticate, as parsed from
//! a Component's `spec.config`. Parsing is two-stage (detect the source type from the fields
//! present, then parse that type's schema strictly); see [`crate::spec::parse_source`].

use serde_json::{Map, Value};
use url::Url;

use crate::error::{Error, Result};
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

/// Who may have signed a chart (`source.verify`, OCI only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// A cosign signature made with one of the public keys (`*.pub`, PEM) of a Secret —
    /// Flux's `verify: {provider: cosign, secretRef}`. Keyless (Fulcio/Rekor) is refused.
    Cosign { secret_ref: SecretRef },
}

impl Verification {
    pub fn secret_ref(&self) -> &SecretRef {
        match self {
            Verification::Cosign { secret_ref } => secret_ref,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciSourceSpec {
    pub reference: OciReference,
    pub authentication: Option<Authentication>,
    /// Talk plain HTTP to the registry (opt-in, for registries without TLS).
    pub plain_http: bool,
    pub tls: TlsOptions,
    /// Signature verification before the chart is used (opt-in).
    pub verify: Option<Verification>,
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

    /// The signature verification asked for (OCI sources only).
    pub fn verify(&self) -> Option<&Verification> {
        match self {
            SourceSpec::Oci(s) => s.verify.as_ref(),
            SourceSpec::Http(_) => None,
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

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

/// Source fields accepted at the top level of `spec.config` (the flat, legacy forms).
/// Callers that check the top level for unknown fields treat these as known.
pub const FLAT_SOURCE_FIELDS: &[&str] = &[
    "repository",
    "chart",
    "authentication",
    "plainHTTP",
    "insecureSkipTLSVerify",
    "caSecretRef",
    "passCredentials",
    "verify",
];

/// The source types `source.type` accepts.
pub const SOURCE_TYPES: &[&str] = &["oci", "http"];

const OCI_FIELDS: &[&str] = &[
    "type",
    "chart",
    "authentication",
    "plainHTTP",
    "insecureSkipTLSVerify",
    "caSecretRef",
    "verify",
];
const HTTP_FIELDS: &[&str] = &[
    "type",
    "repository",
    "chart",
    "authentication",
    "insecureSkipTLSVerify",
    "caSecretRef",
    "passCredentials",
];
const AUTH_FIELDS: &[&str] = &["method", "secretRef"];
/// `matchOIDCIdentity` (Flux's keyless field) and `keyless` are known only to be refused
/// with a clear message.
const VERIFY_FIELDS: &[&str] = &["provider", "secretRef", "matchOIDCIdentity", "keyless"];
const KEYLESS_REFUSED: &str = "keyless verification (Fulcio certificates, Rekor transparency log) is not supported: give `secretRef`, a Secret with the cosign public keys (`*.pub`)";
const SECRET_REF_FIELDS: &[&str] = &["name", "namespace"];
const REPOSITORY_FIELDS: &[&str] = &["name", "url"];
const HTTP_CHART_FIELDS: &[&str] = &["name", "version"];

/// Parses the chart source out of a Component's `spec.config`.
///
/// Two stages: first the form and type are detected from the fields present (nested
/// `source: {type: oci|http, …}`, or the flat legacy forms: `repository` + `chart: {name,
/// version}` → http, `chart: "oci://…"` → oci), then that type's schema is parsed strictly.
/// Errors are [`Error::Config`] naming the field path (`source.authentication.secretRef.name`)
/// and saying what was expected. Top-level fields that are not source fields are left to
/// the caller (the handler's own configuration).
pub fn parse_source(config: &Value) -> Result<SourceSpec> {
    let Some(top) = config.as_object() else {
        return Err(Error::config(
            "config",
            format!(
                "expected an object, found {}; it needs a `source` (or the flat `chart`/`repository` fields)",
                kind_of(config)
            ),
        ));
    };
    let flat: Vec<&str> = FLAT_SOURCE_FIELDS
        .iter()
        .copied()
        .filter(|f| top.contains_key(*f))
        .collect();

    if let Some(source) = top.get("source") {
        if !flat.is_empty() {
            return Err(Error::config(
                "source",
                format!(
                    "`source` cannot be combined with the flat source field(s) {}; move them under `source`",
                    list(&flat)
                ),
            ));
        }
        return parse_nested(source);
    }

    if flat.is_empty() {
        return Err(Error::config(
            "source",
            "missing chart source: add `source` with `type: oci` (chart: oci://…) or `type: http` (repository + chart)",
        ));
    }
    let obj = Obj::new(top, "");
    match top.get("chart") {
        Some(Value::String(_)) if !top.contains_key("repository") => {
            check_flat(&flat, OCI_FIELDS, "a flat OCI source")?;
            parse_oci(&obj)
        }
        Some(Value::String(s)) => Err(Error::config(
            "chart",
            format!(
                "with `repository` (flat HTTP form), `chart` must be an object {{name, version}}, found the string {s:?}"
            ),
        )),
        Some(Value::Object(_)) | None if top.contains_key("repository") => {
            check_flat(&flat, HTTP_FIELDS, "a flat HTTP source")?;
            parse_http(&obj)
        }
        Some(Value::Object(_)) => Err(Error::config(
            "repository",
            "missing: a chart given as {name, version} needs `repository: {url: https://…}` (flat HTTP form)",
        )),
        Some(other) => Err(Error::config(
            "chart",
            format!(
                "expected an oci:// reference string (flat OCI form) or an object {{name, version}} with `repository` (flat HTTP form), found {}",
                kind_of(other)
            ),
        )),
        None => Err(Error::config(
            "chart",
            format!(
                "missing: the flat source field(s) {} need `chart` (an oci:// reference, or {{name, version}} with `repository`)",
                list(&flat)
            ),
        )),
    }
}

/// In the flat forms only the source fields are checked here: the other top-level fields
/// belong to the caller.
fn check_flat(present: &[&str], fields: &[&str], what: &str) -> Result<()> {
    let expected: Vec<&str> = fields.iter().copied().filter(|f| *f != "type").collect();
    match present.iter().find(|f| !expected.contains(f)) {
        Some(f) => Err(Error::config(
            *f,
            format!("unknown field for {what}; expected {}", list(&expected)),
        )),
        None => Ok(()),
    }
}

fn parse_nested(source: &Value) -> Result<SourceSpec> {
    let Some(map) = source.as_object() else {
        return Err(Error::config(
            "source",
            format!(
                "expected an object with `type` ({}), found {}",
                list(SOURCE_TYPES),
                kind_of(source)
            ),
        ));
    };
    let obj = Obj::new(map, "source");
    let ty = match map.get("type") {
        None => {
            return Err(Error::config(
                "source.type",
                format!("missing; expected one of {}", list(SOURCE_TYPES)),
            ));
        }
        Some(Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err(Error::config(
                "source.type",
                format!(
                    "expected a string, one of {}, found {}",
                    list(SOURCE_TYPES),
                    kind_of(other)
                ),
            ));
        }
    };
    match ty {
        "oci" => {
            obj.check_fields(OCI_FIELDS, "an oci source")?;
            parse_oci(&obj)
        }
        "http" => {
            obj.check_fields(HTTP_FIELDS, "an http source")?;
            parse_http(&obj)
        }
        other => Err(Error::config(
            "source.type",
            format!(
                "unknown source type {other:?}; expected one of {}",
                list(SOURCE_TYPES)
            ),
        )),
    }
}

fn parse_oci(obj: &Obj<'_>) -> Result<SourceSpec> {
    let field = obj.path("chart");
    let chart = obj.required_str(
        "chart",
        "an oci:// reference such as oci://ghcr.io/acme/charts/app:1.2.3",
    )?;
    let reference = OciReference::parse(chart).map_err(|e| match e {
        Error::InvalidReference { input, reason } => {
            Error::config(&field, format!("invalid OCI reference `{input}`: {reason}"))
        }
        other => other,
    })?;
    let authentication = obj.authentication(AuthMethod::Registry)?;
    let plain_http = obj.bool("plainHTTP")?.unwrap_or(false);
    let tls = obj.tls()?;
    let verify = obj.verification()?;
    if plain_http && (tls.insecure_skip_tls_verify || tls.ca_secret_ref.is_some()) {
        return Err(Error::config(
            obj.path("plainHTTP"),
            "cannot be combined with `insecureSkipTLSVerify` or `caSecretRef` (plain HTTP uses no TLS)",
        ));
    }
    Ok(SourceSpec::Oci(OciSourceSpec {
        reference,
        authentication,
        plain_http,
        tls,
        verify,
    }))
}

fn parse_http(obj: &Obj<'_>) -> Result<SourceSpec> {
    let repository = obj.required_object("repository", "an object {name, url}")?;
    repository.check_fields(REPOSITORY_FIELDS, "`repository`")?;
    let url_field = repository.path("url");
    let raw_url =
        repository.required_str("url", "an http(s) URL such as https://charts.example.com")?;
    let url = parse_repository_url(raw_url, &url_field)?;
    let name = repository.optional_str("name")?.map(str::to_string);

    let chart = obj.required_object("chart", "an object {name, version}")?;
    chart.check_fields(HTTP_CHART_FIELDS, "`chart`")?;
    let chart_name = chart.required_str("name", "the chart's name in the repository index")?;
    if chart_name.trim().is_empty() || chart_name.contains('/') || chart_name.trim() != chart_name {
        return Err(Error::config(
            chart.path("name"),
            format!(
                "{chart_name:?} is not a chart name (non-empty, no `/`, no surrounding whitespace)"
            ),
        ));
    }
    let version = chart.required_version("version")?;

    let authentication = obj.authentication(AuthMethod::Basic)?;
    let tls = obj.tls()?;
    let pass_credentials = obj.bool("passCredentials")?.unwrap_or(false);
    if tls.insecure_skip_tls_verify && url.scheme() == "http" {
        tracing::debug!(url = %url, "insecureSkipTLSVerify has no effect on a plain http:// repository");
    }
    Ok(SourceSpec::Http(HttpSourceSpec {
        repository: HttpRepository { name, url },
        chart: chart_name.to_string(),
        version,
        authentication,
        tls,
        pass_credentials,
    }))
}

fn parse_repository_url(raw: &str, field: &str) -> Result<Url> {
    let url = Url::parse(raw).map_err(|e| {
        Error::config(
            field,
            format!("not a valid URL ({e}); expected http(s)://HOST[/PATH]"),
        )
    })?;
    if !url.username().is_empty() || url.password().is_some() {
        // Never echo the URL: it holds a credential.
        return Err(Error::config(
            field,
            "must not contain credentials (user:password@); put them in a Secret and use `authentication.secretRef`",
        ));
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::config(
            field,
            format!(
                "`{raw}` has the scheme `{}`; expected http:// or https:// (use `type: oci` for oci:// registries)",
                url.scheme()
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::config(field, format!("`{raw}` has no host")));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::config(
            field,
            format!("`{raw}`: a repository URL takes no query or fragment"),
        ));
    }
    Ok(url)
}

/// Validates a version constraint's syntax (Helm/Masterminds semantics).
fn check_version(version: &str, field: &str) -> Result<()> {
    if version.trim().is_empty() {
        return Err(Error::config(
            field,
            "empty; expected an exact version (1.2.3) or a constraint (^1.2, ~1.2.3, >=1.0 <2.0)",
        ));
    }
    crate::http::constraint::Constraint::parse(version)
        .map(drop)
        .map_err(|reason| Error::config(field, reason))
}

/// A JSON object being parsed, with the path prefix used in error messages.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    prefix: String,
}

impl<'a> Obj<'a> {
    fn new(map: &'a Map<String, Value>, prefix: &str) -> Self {
        Obj {
            map,
            prefix: prefix.to_string(),
        }
    }

    fn path(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    fn check_fields(&self, expected: &[&str], what: &str) -> Result<()> {
        for key in self.map.keys() {
            if !expected.contains(&key.as_str()) {
                let hint = match closest(key, expected) {
                    Some(s) => format!(" (did you mean `{s}`?)"),
                    None => String::new(),
                };
                return Err(Error::config(
                    self.path(key),
                    format!(
                        "unknown field for {what}{hint}; expected {}",
                        list(expected)
                    ),
                ));
            }
        }
        Ok(())
    }

    fn required(&self, key: &str, expected: &str) -> Result<&'a Value> {
        match self.map.get(key) {
            None | Some(Value::Null) => Err(Error::config(
                self.path(key),
                format!("missing; expected {expected}"),
            )),
            Some(v) => Ok(v),
        }
    }

    fn required_str(&self, key: &str, expected: &str) -> Result<&'a str> {
        match self.required(key, expected)? {
            Value::String(s) if !s.is_empty() => Ok(s),
            Value::String(_) => Err(Error::config(
                self.path(key),
                format!("empty; expected {expected}"),
            )),
            other => Err(Error::config(
                self.path(key),
                format!("expected {expected}, found {}", kind_of(other)),
            )),
        }
    }

    fn optional_str(&self, key: &str) -> Result<Option<&'a str>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(Error::config(
                self.path(key),
                format!("expected a string, found {}", kind_of(other)),
            )),
        }
    }

    /// A version written unquoted in YAML (`version: 1.10`) arrives as a number, and the
    /// number (1.1) is not what was written: refuse it rather than deploy another version.
    fn required_version(&self, key: &str) -> Result<String> {
        let field = self.path(key);
        let expected = "a version (1.2.3) or a constraint (^1.2)";
        let version = match self.required(key, expected)? {
            Value::String(s) => s.clone(),
            Value::Number(n) => {
                return Err(Error::config(
                    &field,
                    format!(
                        "is the number {n}, not a string: YAML reads an unquoted version as a \
                         number (`1.10` becomes 1.1); quote it, e.g. version: \"{n}\""
                    ),
                ));
            }
            other => {
                return Err(Error::config(
                    &field,
                    format!("expected {expected}, found {}", kind_of(other)),
                ));
            }
        };
        check_version(&version, &field)?;
        Ok(version)
    }

    fn bool(&self, key: &str) -> Result<Option<bool>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(Error::config(
                self.path(key),
                format!("expected true or false, found {}", kind_of(other)),
            )),
        }
    }

    fn required_object(&self, key: &str, expected: &str) -> Result<Obj<'a>> {
        match self.required(key, expected)? {
            Value::Object(m) => Ok(Obj::new(m, &self.path(key))),
            other => Err(Error::config(
                self.path(key),
                format!("expected {expected}, found {}", kind_of(other)),
            )),
        }
    }

    fn optional_object(&self, key: &str, expected: &str) -> Result<Option<Obj<'a>>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Obj::new(m, &self.path(key)))),
            Some(other) => Err(Error::config(
                self.path(key),
                format!("expected {expected}, found {}", kind_of(other)),
            )),
        }
    }

    fn secret_ref(&self) -> Result<SecretRef> {
        self.check_fields(SECRET_REF_FIELDS, "a Secret reference")?;
        let name = self.required_str("name", "the Secret's name")?;
        if !is_dns_subdomain(name) {
            return Err(Error::config(
                self.path("name"),
                format!(
                    "{name:?} is not a valid Secret name (lowercase RFC 1123 subdomain, at most 253 characters)"
                ),
            ));
        }
        let namespace = self.optional_str("namespace")?;
        if let Some(ns) = namespace
            && !is_dns_label(ns)
        {
            return Err(Error::config(
                self.path("namespace"),
                format!(
                    "{ns:?} is not a valid namespace name (lowercase RFC 1123 label, at most 63 characters)"
                ),
            ));
        }
        Ok(SecretRef {
            name: name.to_string(),
            namespace: namespace.map(str::to_string),
        })
    }

    fn authentication(&self, method: AuthMethod) -> Result<Option<Authentication>> {
        let Some(auth) = self.optional_object("authentication", "an object {method, secretRef}")?
        else {
            return Ok(None);
        };
        auth.check_fields(AUTH_FIELDS, "`authentication`")?;
        let (expected_name, other_name, source) = match method {
            AuthMethod::Registry => ("registry", "basic", "an oci"),
            AuthMethod::Basic => ("basic", "registry", "an http"),
        };
        match auth.optional_str("method")? {
            None => {}
            Some(m) if m == expected_name => {}
            Some(m) if m == other_name => {
                return Err(Error::config(
                    auth.path("method"),
                    format!("`{m}` is not valid for {source} source; expected `{expected_name}`"),
                ));
            }
            Some(m) => {
                return Err(Error::config(
                    auth.path("method"),
                    format!("unknown method {m:?}; expected `{expected_name}` for {source} source"),
                ));
            }
        }
        let secret_ref = auth
            .required_object("secretRef", "an object {name, namespace?} naming a Secret")?
            .secret_ref()?;
        Ok(Some(Authentication { method, secret_ref }))
    }

    fn verification(&self) -> Result<Option<Verification>> {
        let Some(v) =
            self.optional_object("verify", "an object {provider: cosign, secretRef: {name}}")?
        else {
            return Ok(None);
        };
        v.check_fields(VERIFY_FIELDS, "`verify`")?;
        // Flux's default provider is cosign.
        match v.optional_str("provider")? {
            None | Some("cosign") => {}
            Some("notation") => {
                return Err(Error::config(
                    v.path("provider"),
                    "`notation` is not supported; expected `cosign`",
                ));
            }
            Some(other) => {
                return Err(Error::config(
                    v.path("provider"),
                    format!("unknown provider {other:?}; expected `cosign`"),
                ));
            }
        }
        if v.map.contains_key("matchOIDCIdentity") {
            return Err(Error::config(v.path("matchOIDCIdentity"), KEYLESS_REFUSED));
        }
        if v.bool("keyless")? == Some(true) {
            return Err(Error::config(v.path("keyless"), KEYLESS_REFUSED));
        }
        if !v.map.contains_key("secretRef") {
            return Err(Error::config(
                v.path("secretRef"),
                format!("missing; {KEYLESS_REFUSED}"),
            ));
        }
        let secret_ref = v
            .required_object("secretRef", "an object {name, namespace?} naming a Secret")?
            .secret_ref()?;
        Ok(Some(Verification::Cosign { secret_ref }))
    }

    fn tls(&self) -> Result<TlsOptions> {
        let insecure_skip_tls_verify = self.bool("insecureSkipTLSVerify")?.unwrap_or(false);
        let ca_secret_ref = match self.optional_object(
            "caSecretRef",
            "an object {name, namespace?} naming a Secret with `ca.crt`",
        )? {
            Some(o) => Some(o.secret_ref()?),
            None => None,
        };
        Ok(TlsOptions {
            insecure_skip_tls_verify,
            ca_secret_ref,
        })
    }
}

/// How a JSON value is named in error messages ("a list", "a number", …).
pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn list(fields: &[&str]) -> String {
    fields
        .iter()
        .map(|f| format!("`{f}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The expected field closest to a misspelt one, if it is close enough to be a typo.
pub fn closest<'e>(key: &str, expected: impl IntoIterator<Item = &'e &'e str>) -> Option<&'e str> {
    let key_lower = key.to_ascii_lowercase();
    expected
        .into_iter()
        .map(|e| (edit_distance(&key_lower, &e.to_ascii_lowercase()), *e))
        .filter(|(d, e)| *d <= 2.max(e.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, e)| e)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// A lowercase RFC 1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// A lowercase RFC 1123 subdomain: labels joined by `.`, at most 253 characters.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns_label)
}
