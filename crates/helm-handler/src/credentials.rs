//! Credential resolution from Kubernetes Secrets, under namespace scoping.
//!
//! One logic ([`CredentialResolver`]) behind two back ends ([`SecretStore`]): the Kubernetes
//! API ([`KubeSecretStore`], the controller) and Secrets read from YAML files
//! ([`FileSecretStore`], the offline CLI).
//!
//! Rules:
//! - A `secretRef` without `namespace` is looked up in the Component's namespace first, then
//!   in the system namespace.
//! - A `secretRef.namespace` is honoured only when it is one of those two; anything else is
//!   rejected before any lookup (a Component must not read another tenant's Secret).
//! - Accepted contents: `username` + `password`; `token` (alone: a bearer token; with
//!   `username`: basic auth with the token as password, as GHCR and most registries expect);
//!   `kubernetes.io/dockerconfigjson` (`.dockerconfigjson`, entry matched by registry host).
//!   A CA Secret holds a PEM bundle under `ca.crt`. A `verify.secretRef` Secret holds one or
//!   more cosign public keys (PEM) under keys named `*.pub`, as Flux's does.
//! - Errors name the Secret, the field and the namespaces searched — never a value.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use base64::Engine as _;
use chart_source::spec::SecretRef;
use chart_source::verify::CosignKeys;
use chart_source::{Credentials, SourceAuth, SourceSpec};
use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;

use crate::error::Error;

/// The Secret type Docker registry credentials are stored with.
pub const DOCKER_CONFIG_JSON_TYPE: &str = "kubernetes.io/dockerconfigjson";
/// The key of a `kubernetes.io/dockerconfigjson` Secret.
pub const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";
/// The key of a CA bundle Secret.
pub const CA_KEY: &str = "ca.crt";

const AUTH_FIELD: &str = "source.authentication.secretRef";
const CA_FIELD: &str = "source.caSecretRef";
const VERIFY_FIELD: &str = "source.verify.secretRef";

/// The contents of a Secret: key → bytes (already base64-decoded), and its `type`.
/// `Debug` shows the keys only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretData {
    pub type_: Option<String>,
    pub data: BTreeMap<String, Vec<u8>>,
}

impl SecretData {
    pub fn new(type_: Option<&str>) -> Self {
        SecretData {
            type_: type_.map(str::to_string),
            data: BTreeMap::new(),
        }
    }

    /// Adds a key (builder style).
    pub fn with(mut self, key: &str, value: impl Into<Vec<u8>>) -> Self {
        self.data.insert(key.to_string(), value.into());
        self
    }

    /// From a Secret object: `data` (decoded) merged with `stringData` (which wins, as
    /// the API server does on write).
    pub fn from_secret(secret: &Secret) -> Self {
        let mut data: BTreeMap<String, Vec<u8>> = secret
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect();
        for (k, v) in secret.string_data.iter().flatten() {
            data.insert(k.clone(), v.clone().into_bytes());
        }
        SecretData {
            type_: secret.type_.clone(),
            data,
        }
    }

    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.data.get(key).map(Vec::as_slice)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.data.keys().map(String::as_str)
    }
}

impl fmt::Debug for SecretData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretData")
            .field("type_", &self.type_)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .field("values", &"<redacted>")
            .finish()
    }
}

/// Where Secrets are read from.
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// The Secret `namespace/name`, or `None` when it does not exist.
    async fn get(&self, namespace: &str, name: &str) -> Result<Option<SecretData>, Error>;
}

/// Secrets from the Kubernetes API. A 404 is `Ok(None)`.
#[derive(Clone)]
pub struct KubeSecretStore {
    client: kube::Client,
}

impl KubeSecretStore {
    pub fn new(client: kube::Client) -> Self {
        KubeSecretStore { client }
    }
}

impl fmt::Debug for KubeSecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KubeSecretStore")
    }
}

#[async_trait]
impl SecretStore for KubeSecretStore {
    async fn get(&self, namespace: &str, name: &str) -> Result<Option<SecretData>, Error> {
        let api: kube::Api<Secret> = kube::Api::namespaced(self.client.clone(), namespace);
        match api.get_opt(name).await {
            Ok(secret) => Ok(secret.as_ref().map(SecretData::from_secret)),
            Err(e) => Err(Error::kube(
                format!("reading Secret `{namespace}/{name}`"),
                e,
            )),
        }
    }
}

/// Secrets held in memory, typically loaded from YAML files (see `crate::manifests`).
#[derive(Clone, Default)]
pub struct FileSecretStore {
    secrets: BTreeMap<(String, String), SecretData>,
}

impl FileSecretStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, namespace: &str, name: &str, data: SecretData) {
        self.secrets
            .insert((namespace.to_string(), name.to_string()), data);
    }

    /// Adds a Secret object; `default_namespace` applies when it has none.
    pub fn insert_secret(&mut self, secret: &Secret, default_namespace: &str) {
        let namespace = secret
            .metadata
            .namespace
            .as_deref()
            .unwrap_or(default_namespace);
        let name = secret.metadata.name.as_deref().unwrap_or_default();
        self.insert(namespace, name, SecretData::from_secret(secret));
    }

    pub fn contains(&self, namespace: &str, name: &str) -> bool {
        self.secrets
            .contains_key(&(namespace.to_string(), name.to_string()))
    }

    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `(namespace, name)` of every Secret held.
    pub fn names(&self) -> impl Iterator<Item = (&str, &str)> {
        self.secrets.keys().map(|(ns, n)| (ns.as_str(), n.as_str()))
    }
}

impl fmt::Debug for FileSecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileSecretStore")
            .field(
                "secrets",
                &self
                    .secrets
                    .keys()
                    .map(|(ns, n)| format!("{ns}/{n}"))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[async_trait]
impl SecretStore for FileSecretStore {
    async fn get(&self, namespace: &str, name: &str) -> Result<Option<SecretData>, Error> {
        Ok(self
            .secrets
            .get(&(namespace.to_string(), name.to_string()))
            .cloned())
    }
}

/// Turns a source's Secret references into [`SourceAuth`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialResolver {
    /// Searched after the Component's namespace (`--system-namespace`).
    pub system_namespace: String,
}

impl CredentialResolver {
    pub fn new(system_namespace: impl Into<String>) -> Self {
        CredentialResolver {
            system_namespace: system_namespace.into(),
        }
    }

    /// Resolves the source's credentials and CA bundle. Every `secretRef.namespace` is
    /// checked before the first lookup.
    pub async fn resolve(
        &self,
        store: &dyn SecretStore,
        component_namespace: &str,
        spec: &SourceSpec,
    ) -> Result<SourceAuth, Error> {
        let auth_lookup = match spec.authentication() {
            Some(a) => Some((
                &a.secret_ref,
                self.candidates(component_namespace, AUTH_FIELD, &a.secret_ref)?,
            )),
            None => None,
        };
        let ca_lookup = match &spec.tls().ca_secret_ref {
            Some(r) => Some((r, self.candidates(component_namespace, CA_FIELD, r)?)),
            None => None,
        };
        let verify_lookup = match spec.verify().map(|v| v.secret_ref()) {
            Some(r) => Some((r, self.candidates(component_namespace, VERIFY_FIELD, r)?)),
            None => None,
        };

        let mut out = SourceAuth::default();
        if let Some((secret_ref, namespaces)) = auth_lookup {
            let (ns, data) = lookup(store, AUTH_FIELD, &secret_ref.name, &namespaces).await?;
            let host = registry_host(spec);
            let credentials =
                credentials_from(&data, &host).map_err(|message| Error::SecretFormat {
                    field: AUTH_FIELD.into(),
                    namespace: ns.clone(),
                    name: secret_ref.name.clone(),
                    message,
                })?;
            tracing::debug!(
                secret = %format!("{ns}/{}", secret_ref.name),
                credentials = %credentials.describe(),
                registry = %host,
                "resolved source credentials"
            );
            out.credentials = Some(credentials);
        }
        if let Some((secret_ref, namespaces)) = ca_lookup {
            let (ns, data) = lookup(store, CA_FIELD, &secret_ref.name, &namespaces).await?;
            let pem = ca_from(&data).map_err(|message| Error::SecretFormat {
                field: CA_FIELD.into(),
                namespace: ns.clone(),
                name: secret_ref.name.clone(),
                message,
            })?;
            tracing::debug!(secret = %format!("{ns}/{}", secret_ref.name), bytes = pem.len(), "resolved CA bundle");
            out.ca_pem = Some(pem);
        }
        if let Some((secret_ref, namespaces)) = verify_lookup {
            let (ns, data) = lookup(store, VERIFY_FIELD, &secret_ref.name, &namespaces).await?;
            let keys = CosignKeys::from_entries(
                format!("Secret {ns}/{}", secret_ref.name),
                data.data.iter().map(|(k, v)| (k.as_str(), v.as_slice())),
            )
            .map_err(|message| Error::SecretFormat {
                field: VERIFY_FIELD.into(),
                namespace: ns.clone(),
                name: secret_ref.name.clone(),
                message,
            })?;
            tracing::debug!(keys = %keys.describe(), key_set = %keys.fingerprint(), "resolved cosign public keys");
            out.cosign_keys = Some(keys);
        }
        Ok(out)
    }

    /// Checks every `secretRef.namespace` of the source against the namespace rule, without
    /// any lookup.
    pub fn check_namespaces(
        &self,
        component_namespace: &str,
        spec: &SourceSpec,
    ) -> Result<(), Error> {
        for (field, r) in secret_refs(spec) {
            self.candidates(component_namespace, field, r)?;
        }
        Ok(())
    }

    /// Every `(namespace, name)` a source may read: both candidate namespaces for a
    /// reference without `namespace`. For mapping Secret changes to Components. A reference
    /// to a forbidden namespace yields nothing (it is rejected by [`Self::resolve`]).
    pub fn referenced_secrets(
        &self,
        component_namespace: &str,
        spec: &SourceSpec,
    ) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (field, r) in secret_refs(spec) {
            if let Ok(namespaces) = self.candidates(component_namespace, field, r) {
                for ns in namespaces {
                    let key = (ns, r.name.clone());
                    if !out.contains(&key) {
                        out.push(key);
                    }
                }
            }
        }
        out
    }

    /// The namespaces to search, in order; a forbidden explicit namespace is an error.
    fn candidates(
        &self,
        component_namespace: &str,
        field: &str,
        secret_ref: &SecretRef,
    ) -> Result<Vec<String>, Error> {
        match &secret_ref.namespace {
            Some(ns) if ns == component_namespace || *ns == self.system_namespace => {
                Ok(vec![ns.clone()])
            }
            Some(ns) => Err(Error::SecretNamespaceNotAllowed {
                field: format!("{field}.namespace"),
                name: secret_ref.name.clone(),
                namespace: ns.clone(),
                component_namespace: component_namespace.to_string(),
                system_namespace: self.system_namespace.clone(),
            }),
            None if component_namespace == self.system_namespace => {
                Ok(vec![component_namespace.to_string()])
            }
            None => Ok(vec![
                component_namespace.to_string(),
                self.system_namespace.clone(),
            ]),
        }
    }
}

fn secret_refs(spec: &SourceSpec) -> Vec<(&'static str, &SecretRef)> {
    let mut refs = Vec::new();
    if let Some(a) = spec.authentication() {
        refs.push((AUTH_FIELD, &a.secret_ref));
    }
    if let Some(r) = &spec.tls().ca_secret_ref {
        refs.push((CA_FIELD, r));
    }
    if let Some(v) = spec.verify() {
        refs.push((VERIFY_FIELD, v.secret_ref()));
    }
    refs
}

async fn lookup(
    store: &dyn SecretStore,
    field: &str,
    name: &str,
    namespaces: &[String],
) -> Result<(String, SecretData), Error> {
    for ns in namespaces {
        match store.get(ns, name).await? {
            Some(data) => return Ok((ns.clone(), data)),
            None => {
                tracing::debug!(secret = %format!("{ns}/{name}"), "Secret not found, trying the next namespace")
            }
        }
    }
    Err(Error::SecretNotFound {
        field: field.to_string(),
        name: name.to_string(),
        searched: namespaces.to_vec(),
    })
}

/// The registry/repository `host[:port]` that a dockerconfigjson entry must match.
fn registry_host(spec: &SourceSpec) -> String {
    match spec {
        SourceSpec::Oci(s) => s.reference.registry().to_ascii_lowercase(),
        SourceSpec::Http(s) => {
            let host = s.repository.url.host_str().unwrap_or_default();
            match s.repository.url.port() {
                Some(p) => format!("{host}:{p}").to_ascii_lowercase(),
                None => host.to_ascii_lowercase(),
            }
        }
    }
}

/// Reads credentials from a Secret. The error message names keys, never values.
fn credentials_from(data: &SecretData, host: &str) -> Result<Credentials, String> {
    let is_docker = data.type_.as_deref() == Some(DOCKER_CONFIG_JSON_TYPE)
        || data.get(DOCKER_CONFIG_JSON_KEY).is_some();
    if is_docker {
        let Some(raw) = data.get(DOCKER_CONFIG_JSON_KEY) else {
            return Err(format!(
                "type {DOCKER_CONFIG_JSON_TYPE} but no `{DOCKER_CONFIG_JSON_KEY}` key (keys: {})",
                key_list(data)
            ));
        };
        return docker_config_credentials(raw, host);
    }
    let username = text(data, "username")?;
    let password = text(data, "password")?;
    let token = text(data, "token")?;
    match (username, password, token) {
        (Some(u), Some(p), _) => Ok(Credentials::basic(u, p)),
        (Some(u), None, Some(t)) => Ok(Credentials::basic(u, t)),
        (None, _, Some(t)) => Ok(Credentials::bearer(t)),
        (Some(_), None, None) => Err("has `username` but no `password` or `token`".into()),
        (None, Some(_), None) => Err("has `password` but no `username`".into()),
        (None, None, None) => Err(format!(
            "holds no credentials: expected `username` + `password`, `token` (optionally with `username`), or type {DOCKER_CONFIG_JSON_TYPE} with `{DOCKER_CONFIG_JSON_KEY}`; found keys: {}",
            key_list(data)
        )),
    }
}

/// A non-empty UTF-8 value, trimmed of a trailing newline (`echo secret | base64`).
fn text<'a>(data: &'a SecretData, key: &str) -> Result<Option<&'a str>, String> {
    match data.get(key) {
        None => Ok(None),
        Some(bytes) => {
            let s = std::str::from_utf8(bytes)
                .map_err(|_| format!("key `{key}` is not valid UTF-8"))?;
            let s = s.strip_suffix('\n').unwrap_or(s);
            let s = s.strip_suffix('\r').unwrap_or(s);
            if s.is_empty() {
                Err(format!("key `{key}` is empty"))
            } else {
                Ok(Some(s))
            }
        }
    }
}

fn key_list(data: &SecretData) -> String {
    if data.data.is_empty() {
        return "none".into();
    }
    data.keys()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `.dockerconfigjson`: `{"auths": {"<registry>": {username, password | auth | identitytoken}}}`.
fn docker_config_credentials(raw: &[u8], host: &str) -> Result<Credentials, String> {
    // Parse into a Value and walk it by hand: typed deserialisation errors could quote values.
    let json: Value = serde_json::from_slice(raw).map_err(|e| {
        format!(
            "`{DOCKER_CONFIG_JSON_KEY}` is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    let Some(auths) = json.get("auths").and_then(Value::as_object) else {
        return Err(format!("`{DOCKER_CONFIG_JSON_KEY}` has no `auths` object"));
    };
    let target = normalize_registry(host);
    let entry = auths
        .iter()
        .find(|(k, _)| normalize_registry(k) == target)
        .or_else(|| {
            auths
                .iter()
                .find(|(k, _)| same_registry(&normalize_registry(k), &target))
        });
    let Some((key, entry)) = entry else {
        let mut keys: Vec<String> = auths.keys().map(|k| format!("`{k}`")).collect();
        if keys.is_empty() {
            keys.push("none".into());
        }
        return Err(format!(
            "`{DOCKER_CONFIG_JSON_KEY}` has no entry for registry `{host}` (entries: {})",
            keys.join(", ")
        ));
    };
    let field = |name: &str| -> Option<&str> {
        entry
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    // As docker reads an entry: an identity token (a refresh token for the registry's token
    // service; `auth` then often holds a placeholder user with no password, as Azure's
    // `az acr login` writes) wins, then a registry token (sent as a bearer token), then the
    // username and password.
    if let Some(t) = field("identitytoken") {
        return Ok(Credentials::identity_token(t));
    }
    if let Some(t) = field("registrytoken") {
        return Ok(Credentials::bearer(t));
    }
    if let (Some(u), Some(p)) = (field("username"), field("password")) {
        return Ok(Credentials::basic(u, p));
    }
    if let Some(auth) = field("auth") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| format!("entry `{key}`: `auth` is not valid base64"))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| format!("entry `{key}`: `auth` is not valid UTF-8"))?;
        return match decoded.split_once(':') {
            Some((u, p)) if !u.is_empty() && !p.is_empty() => Ok(Credentials::basic(u, p)),
            _ => Err(format!(
                "entry `{key}`: `auth` must be base64 of `username:password`"
            )),
        };
    }
    Err(format!(
        "entry `{key}` has no `username` + `password`, `auth` or `identitytoken`"
    ))
}

/// `https://host:port/v1/` → `host:port` (lowercase), the forms Docker writes.
fn normalize_registry(key: &str) -> String {
    let k = key.trim().to_ascii_lowercase();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(&k);
    let k = k.split('/').next().unwrap_or_default();
    k.to_string()
}

const DOCKER_HUB: &[&str] = &["docker.io", "index.docker.io", "registry-1.docker.io"];

/// Equal up to the default HTTPS port, or both Docker Hub.
fn same_registry(a: &str, b: &str) -> bool {
    let strip = |s: &str| s.strip_suffix(":443").unwrap_or(s).to_string();
    let (a, b) = (strip(a), strip(b));
    a == b || (DOCKER_HUB.contains(&a.as_str()) && DOCKER_HUB.contains(&b.as_str()))
}

/// A PEM CA bundle from `ca.crt`.
fn ca_from(data: &SecretData) -> Result<Vec<u8>, String> {
    let Some(raw) = data.get(CA_KEY) else {
        return Err(format!(
            "no `{CA_KEY}` key (a PEM CA bundle); found keys: {}",
            key_list(data)
        ));
    };
    let text = std::str::from_utf8(raw).map_err(|_| format!("`{CA_KEY}` is not PEM text"))?;
    if !(text.contains("-----BEGIN CERTIFICATE-----") && text.contains("-----END CERTIFICATE-----"))
    {
        return Err(format!(
            "`{CA_KEY}` holds no PEM certificate (-----BEGIN CERTIFICATE----- block)"
        ));
    }
    Ok(raw.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_keys_normalize() {
        for k in [
            "ghcr.io",
            "https://ghcr.io",
            "http://ghcr.io/",
            "https://GHCR.io/v1/",
            "ghcr.io/v2/",
        ] {
            assert_eq!(normalize_registry(k), "ghcr.io", "{k}");
        }
        assert_eq!(normalize_registry("https://r.io:5000/v1/"), "r.io:5000");
        assert!(same_registry("ghcr.io:443", "ghcr.io"));
        assert!(same_registry("index.docker.io", "docker.io"));
        assert!(!same_registry("r.io:5000", "r.io"));
    }

    #[test]
    fn secret_data_debug_shows_keys_only() {
        let d = SecretData::new(None).with("password", "hunter2-secret");
        let text = format!("{d:?}");
        assert!(text.contains("password"));
        assert!(!text.contains("hunter2"));
    }
}
