//! Credential resolution, run against both back ends: Secrets held in memory (the file back
//! end) and Secrets served by a fake Kubernetes API through a real `kube::Client`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine as _;
use chart_source::{Credentials, SourceSpec};
use componentkit::handler::ErrorCategory;
use helm_handler::credentials::{
    CredentialResolver, FileSecretStore, KubeSecretStore, SecretData, SecretStore,
};
use helm_handler::error::Error;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};

const SYSTEM: &str = "deployment-system";
const COMPONENT: &str = "apps";
const PASSWORD: &str = "pw-7f3a9c-never-print-me";
const TOKEN: &str = "tok-c0ffee-never-print-me";
const CA_PEM: &str =
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUTest\n-----END CERTIFICATE-----\n";

type Secrets = Vec<(&'static str, &'static str, SecretData)>;

// ------------------------------------------------------------------------------------------
// Back ends
// ------------------------------------------------------------------------------------------

/// A store plus the log of `namespace/name` lookups it served.
struct Backend {
    name: &'static str,
    store: Box<dyn SecretStore>,
    lookups: Arc<Mutex<Vec<String>>>,
}

/// The file back end, counting lookups.
struct CountingStore {
    inner: FileSecretStore,
    lookups: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl SecretStore for CountingStore {
    async fn get(&self, namespace: &str, name: &str) -> Result<Option<SecretData>, Error> {
        self.lookups
            .lock()
            .unwrap()
            .push(format!("{namespace}/{name}"));
        self.inner.get(namespace, name).await
    }
}

fn to_secret(ns: &str, name: &str, data: &SecretData) -> Secret {
    Secret {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            ..Default::default()
        },
        type_: data.type_.clone(),
        data: Some(
            data.data
                .iter()
                .map(|(k, v)| (k.clone(), ByteString(v.clone())))
                .collect(),
        ),
        ..Default::default()
    }
}

/// A fake Kubernetes API answering Secret GETs from a map (404 Status otherwise, or a fixed
/// status for every request), behind a real `kube::Client`.
fn fake_kube(secrets: &Secrets, fail_with: Option<u16>) -> (kube::Client, Arc<Mutex<Vec<String>>>) {
    let objects: BTreeMap<String, Vec<u8>> = secrets
        .iter()
        .map(|(ns, name, d)| {
            (
                format!("/api/v1/namespaces/{ns}/secrets/{name}"),
                serde_json::to_vec(&to_secret(ns, name, d)).unwrap(),
            )
        })
        .collect();
    let objects = Arc::new(objects);
    let lookups = Arc::new(Mutex::new(Vec::new()));
    let log = lookups.clone();
    let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
        let objects = objects.clone();
        let log = log.clone();
        async move {
            let path = req.uri().path().to_string();
            assert_eq!(
                req.method(),
                http::Method::GET,
                "only GETs expected: {path}"
            );
            if let Some(rest) = path.strip_prefix("/api/v1/namespaces/") {
                let parts: Vec<&str> = rest.split('/').collect();
                if parts.len() == 3 && parts[1] == "secrets" {
                    log.lock()
                        .unwrap()
                        .push(format!("{}/{}", parts[0], parts[2]));
                }
            }
            let (code, body) = match (fail_with, objects.get(&path)) {
                (Some(code), _) => (code, status_body(code, "denied")),
                (None, Some(obj)) => (200, obj.clone()),
                (None, None) => (404, status_body(404, "not found")),
            };
            let resp = http::Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(kube::client::Body::from(body))
                .unwrap();
            Ok::<_, Infallible>(resp)
        }
    });
    (kube::Client::new(service, "default"), lookups)
}

fn status_body(code: u16, message: &str) -> Vec<u8> {
    let reason = match code {
        404 => "NotFound",
        403 => "Forbidden",
        _ => "InternalError",
    };
    serde_json::to_vec(&json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code
    }))
    .unwrap()
}

fn backends(secrets: Secrets) -> Vec<Backend> {
    let mut file = FileSecretStore::new();
    for (ns, name, data) in &secrets {
        file.insert(ns, name, data.clone());
    }
    let file_lookups = Arc::new(Mutex::new(Vec::new()));
    let (client, kube_lookups) = fake_kube(&secrets, None);
    vec![
        Backend {
            name: "file",
            store: Box::new(CountingStore {
                inner: file,
                lookups: file_lookups.clone(),
            }),
            lookups: file_lookups,
        },
        Backend {
            name: "kube",
            store: Box::new(KubeSecretStore::new(client)),
            lookups: kube_lookups,
        },
    ]
}

impl Backend {
    fn lookups(&self) -> Vec<String> {
        self.lookups.lock().unwrap().clone()
    }
}

// ------------------------------------------------------------------------------------------
// Specs and Secrets
// ------------------------------------------------------------------------------------------

fn resolver() -> CredentialResolver {
    CredentialResolver::new(SYSTEM)
}

fn oci_spec(chart: &str, secret: Option<Value>, ca: Option<Value>) -> SourceSpec {
    let mut source = json!({"type": "oci", "chart": chart});
    if let Some(s) = secret {
        source["authentication"] = json!({"method": "registry", "secretRef": s});
    }
    if let Some(c) = ca {
        source["caSecretRef"] = c;
    }
    chart_source::spec::parse_source(&json!({ "source": source })).unwrap()
}

fn http_spec(url: &str, secret: Option<Value>) -> SourceSpec {
    let mut source = json!({"type": "http", "repository": {"url": url}, "chart": {"name": "app", "version": "1.0.0"}});
    if let Some(s) = secret {
        source["authentication"] = json!({"method": "basic", "secretRef": s});
    }
    chart_source::spec::parse_source(&json!({ "source": source })).unwrap()
}

fn ghcr(secret: Value) -> SourceSpec {
    oci_spec("oci://ghcr.io/acme/charts/app:1.2.3", Some(secret), None)
}

fn basic(user: &str) -> SecretData {
    SecretData::new(Some("Opaque"))
        .with("username", user)
        .with("password", PASSWORD)
}

fn dockerconfig(auths: Value) -> SecretData {
    SecretData::new(Some("kubernetes.io/dockerconfigjson")).with(
        ".dockerconfigjson",
        serde_json::to_vec(&json!({ "auths": auths })).unwrap(),
    )
}

fn expect_basic(c: &Option<Credentials>, user: &str, password: &str) {
    match c {
        Some(Credentials::Basic {
            username,
            password: p,
        }) => {
            assert_eq!(username, user);
            assert_eq!(p.expose(), password);
        }
        other => panic!("expected basic credentials, got {other:?}"),
    }
}

fn expect_bearer(c: &Option<Credentials>, token: &str) {
    match c {
        Some(Credentials::Bearer { token: t }) => assert_eq!(t.expose(), token),
        other => panic!("expected a bearer token, got {other:?}"),
    }
}

// ------------------------------------------------------------------------------------------
// Namespace rules
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn resolve_credentials_component_namespace() {
    for b in backends(vec![
        (COMPONENT, "creds", basic("tenant-user")),
        (SYSTEM, "creds", basic("system-user")),
    ]) {
        let auth = resolver()
            .resolve(b.store.as_ref(), COMPONENT, &ghcr(json!({"name": "creds"})))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", b.name));
        expect_basic(&auth.credentials, "tenant-user", PASSWORD);
        assert!(auth.ca_pem.is_none());
        assert_eq!(b.lookups(), vec!["apps/creds"], "{}", b.name);
    }
}

#[tokio::test]
async fn resolve_credentials_system_namespace() {
    for b in backends(vec![(SYSTEM, "creds", basic("system-user"))]) {
        let auth = resolver()
            .resolve(b.store.as_ref(), COMPONENT, &ghcr(json!({"name": "creds"})))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", b.name));
        expect_basic(&auth.credentials, "system-user", PASSWORD);
        assert_eq!(
            b.lookups(),
            vec!["apps/creds", "deployment-system/creds"],
            "{}: Component namespace first, then the system namespace",
            b.name
        );
    }
}

#[tokio::test]
async fn explicit_namespace_is_honoured_when_allowed() {
    for b in backends(vec![
        (COMPONENT, "creds", basic("tenant-user")),
        (SYSTEM, "creds", basic("system-user")),
    ]) {
        let spec = ghcr(json!({"name": "creds", "namespace": SYSTEM}));
        let auth = resolver()
            .resolve(b.store.as_ref(), COMPONENT, &spec)
            .await
            .unwrap();
        expect_basic(&auth.credentials, "system-user", PASSWORD);
        assert_eq!(b.lookups(), vec!["deployment-system/creds"], "{}", b.name);

        let spec = ghcr(json!({"name": "creds", "namespace": COMPONENT}));
        let auth = resolver()
            .resolve(b.store.as_ref(), COMPONENT, &spec)
            .await
            .unwrap();
        expect_basic(&auth.credentials, "tenant-user", PASSWORD);
    }
}

#[tokio::test]
async fn rejects_secret_in_another_namespace_before_any_lookup() {
    for b in backends(vec![("other-tenant", "creds", basic("victim"))]) {
        let spec = ghcr(json!({"name": "creds", "namespace": "other-tenant"}));
        let err = resolver()
            .resolve(b.store.as_ref(), COMPONENT, &spec)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::SecretNamespaceNotAllowed { .. }),
            "{err:?}"
        );
        assert_eq!(err.category(), ErrorCategory::Config);
        let text = err.to_string();
        for needle in [
            "source.authentication.secretRef.namespace",
            "other-tenant/creds",
            "\"apps\"",
            "\"deployment-system\"",
        ] {
            assert!(
                text.contains(needle),
                "{}: expected {needle:?} in {text}",
                b.name
            );
        }
        assert!(
            b.lookups().is_empty(),
            "{}: looked up {:?}",
            b.name,
            b.lookups()
        );

        // The CA reference follows the same rule, and is checked before the credentials
        // are looked up.
        let spec = oci_spec(
            "oci://ghcr.io/acme/app:1.0.0",
            Some(json!({"name": "creds"})),
            Some(json!({"name": "ca", "namespace": "kube-system"})),
        );
        let err = resolver()
            .resolve(b.store.as_ref(), COMPONENT, &spec)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("source.caSecretRef.namespace"),
            "{err}"
        );
        assert!(
            b.lookups().is_empty(),
            "{}: looked up {:?}",
            b.name,
            b.lookups()
        );
    }
}

#[tokio::test]
async fn missing_secret_names_the_secret_and_the_namespaces_searched() {
    for b in backends(vec![]) {
        let err = resolver()
            .resolve(b.store.as_ref(), COMPONENT, &ghcr(json!({"name": "creds"})))
            .await
            .unwrap_err();
        assert_eq!(err.category(), ErrorCategory::NotFound, "{}: {err}", b.name);
        let text = err.to_string();
        assert!(text.contains("Secret `creds`"), "{text}");
        assert!(text.contains("\"apps\", \"deployment-system\""), "{text}");

        let spec = ghcr(json!({"name": "creds", "namespace": SYSTEM}));
        let err = resolver()
            .resolve(b.store.as_ref(), COMPONENT, &spec)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .ends_with("namespace(s) \"deployment-system\""),
            "{err}"
        );
    }
}

#[tokio::test]
async fn no_secret_reference_means_no_lookup() {
    for b in backends(vec![]) {
        let spec = oci_spec("oci://ghcr.io/acme/app:1.0.0", None, None);
        let auth = resolver()
            .resolve(b.store.as_ref(), COMPONENT, &spec)
            .await
            .unwrap();
        assert!(auth.credentials.is_none() && auth.ca_pem.is_none());
        assert!(b.lookups().is_empty());
    }
}

#[test]
fn referenced_secrets_lists_every_candidate() {
    let spec = oci_spec(
        "oci://ghcr.io/acme/app:1.0.0",
        Some(json!({"name": "creds"})),
        Some(json!({"name": "ca", "namespace": SYSTEM})),
    );
    assert_eq!(
        resolver().referenced_secrets(COMPONENT, &spec),
        vec![
            ("apps".to_string(), "creds".to_string()),
            ("deployment-system".to_string(), "creds".to_string()),
            ("deployment-system".to_string(), "ca".to_string()),
        ]
    );
    let forbidden = ghcr(json!({"name": "creds", "namespace": "other"}));
    assert!(
        resolver()
            .referenced_secrets(COMPONENT, &forbidden)
            .is_empty()
    );
    // A Component in the system namespace searches it once.
    assert_eq!(
        resolver().referenced_secrets(SYSTEM, &ghcr(json!({"name": "creds"}))),
        vec![("deployment-system".to_string(), "creds".to_string())]
    );
}

// ------------------------------------------------------------------------------------------
// Secret formats
// ------------------------------------------------------------------------------------------

#[tokio::test]
async fn token_alone_is_a_bearer_token() {
    for b in backends(vec![(
        COMPONENT,
        "t",
        SecretData::new(None).with("token", TOKEN),
    )]) {
        let auth = resolver()
            .resolve(b.store.as_ref(), COMPONENT, &ghcr(json!({"name": "t"})))
            .await
            .unwrap();
        expect_bearer(&auth.credentials, TOKEN);
    }
}

#[tokio::test]
async fn token_with_username_is_basic_auth() {
    let secret = SecretData::new(None)
        .with("username", "ci-bot")
        .with("token", TOKEN);
    for b in backends(vec![(COMPONENT, "t", secret.clone())]) {
        let auth = resolver()
            .resolve(b.store.as_ref(), COMPONENT, &ghcr(json!({"name": "t"})))
            .await
            .unwrap();
        expect_basic(&auth.credentials, "ci-bot", TOKEN);
    }
}

#[tokio::test]
async fn basic_auth_secret_type_and_trailing_newline() {
    let secret = SecretData::new(Some("kubernetes.io/basic-auth"))
        .with("username", "u\n")
        .with("password", format!("{PASSWORD}\n"));
    for b in backends(vec![(COMPONENT, "b", secret.clone())]) {
        let spec = http_spec(
            "https://charts.example.com/stable",
            Some(json!({"name": "b"})),
        );
        let auth = resolver()
            .resolve(b.store.as_ref(), COMPONENT, &spec)
            .await
            .unwrap();
        expect_basic(&auth.credentials, "u", PASSWORD);
    }
}

#[tokio::test]
async fn dockerconfigjson_entry_matched_by_registry_host() {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    // (registry key as Docker writes it, chart reference, entry)
    let cases = [
        (
            "ghcr.io",
            "oci://ghcr.io/acme/app:1.0.0",
            json!({"username": "u1", "password": PASSWORD}),
        ),
        (
            "https://ghcr.io",
            "oci://ghcr.io/acme/app:1.0.0",
            json!({"auth": b64(&format!("u2:{PASSWORD}"))}),
        ),
        (
            "https://index.docker.io/v1/",
            "oci://registry-1.docker.io/acme/app:1.0.0",
            json!({"username": "u3", "password": PASSWORD}),
        ),
        (
            "http://127.0.0.1:5000",
            "oci://127.0.0.1:5000/app:1.0.0",
            json!({"username": "u4", "password": PASSWORD}),
        ),
        (
            "127.0.0.1:5000/v2/",
            "oci://127.0.0.1:5000/app:1.0.0",
            json!({"username": "u5", "password": PASSWORD}),
        ),
        (
            "https://registry.example.com:443",
            "oci://registry.example.com/app:1.0.0",
            json!({"username": "u6", "password": PASSWORD}),
        ),
    ];
    for (key, chart, entry) in cases {
        let secret = dockerconfig(json!({
            "other.example.com": {"username": "wrong", "password": "wrong"},
            key: entry,
        }));
        for b in backends(vec![(COMPONENT, "regcred", secret.clone())]) {
            let spec = oci_spec(chart, Some(json!({"name": "regcred"})), None);
            let auth = resolver()
                .resolve(b.store.as_ref(), COMPONENT, &spec)
                .await
                .unwrap_or_else(|e| panic!("{}: {key}: {e}", b.name));
            let user = auth
                .credentials
                .as_ref()
                .and_then(|c| c.username())
                .unwrap_or_default()
                .to_string();
            assert!(user.starts_with('u') && user.len() == 2, "{key}: {user}");
            expect_basic(&auth.credentials, &user, PASSWORD);
        }
    }
}

/// The credentials every back end resolves from a `.dockerconfigjson` whose entry for
/// `myacr.azurecr.io` is `entry`.
async fn acr_credentials(entry: Value) -> Vec<Option<Credentials>> {
    let secret = dockerconfig(json!({"myacr.azurecr.io": entry}));
    let spec = oci_spec(
        "oci://myacr.azurecr.io/app:1.0.0",
        Some(json!({"name": "regcred"})),
        None,
    );
    let mut out = Vec::new();
    for b in backends(vec![(COMPONENT, "regcred", secret)]) {
        let auth = resolver()
            .resolve(b.store.as_ref(), COMPONENT, &spec)
            .await
            .unwrap();
        out.push(auth.credentials);
    }
    out
}

#[tokio::test]
async fn dockerconfigjson_identity_token_and_http_repository() {
    // As `az acr login` writes it: a placeholder user with no password in `auth`, and the
    // identity token (a refresh token, exchanged at the token service — not a bearer token).
    let acr_placeholder =
        base64::engine::general_purpose::STANDARD.encode("00000000-0000-0000-0000-000000000000:");
    for entry in [
        json!({"identitytoken": TOKEN}),
        json!({"auth": acr_placeholder, "identitytoken": TOKEN}),
    ] {
        for credentials in acr_credentials(entry).await {
            match &credentials {
                Some(Credentials::IdentityToken { token }) => assert_eq!(token.expose(), TOKEN),
                other => panic!("{other:?}"),
            }
        }
    }
    // `registrytoken` is a bearer token, sent as it is.
    for credentials in acr_credentials(json!({"registrytoken": TOKEN})).await {
        expect_bearer(&credentials, TOKEN);
    }
    let secret = dockerconfig(
        json!({"https://charts.example.com:8443": {"username": "h", "password": PASSWORD}}),
    );
    for b in backends(vec![(COMPONENT, "repo", secret.clone())]) {
        let spec = http_spec(
            "https://charts.example.com:8443/sub/",
            Some(json!({"name": "repo"})),
        );
        let auth = resolver()
            .resolve(b.store.as_ref(), COMPONENT, &spec)
            .await
            .unwrap();
        expect_basic(&auth.credentials, "h", PASSWORD);
    }
}

#[tokio::test]
async fn dockerconfigjson_without_a_matching_entry_is_rejected() {
    let secret = dockerconfig(
        json!({"docker.io": {"username": "u", "password": PASSWORD}, "r.io:5000": {"username": "u", "password": PASSWORD}}),
    );
    for b in backends(vec![(COMPONENT, "regcred", secret.clone())]) {
        for chart in [
            "oci://ghcr.io/acme/app:1.0.0",
            "oci://r.io/app:1.0.0",
            "oci://r.io:5001/app:1.0.0",
        ] {
            let spec = oci_spec(chart, Some(json!({"name": "regcred"})), None);
            let err = resolver()
                .resolve(b.store.as_ref(), COMPONENT, &spec)
                .await
                .unwrap_err();
            assert_eq!(err.category(), ErrorCategory::Config);
            let text = err.to_string();
            assert!(text.contains("Secret `apps/regcred`"), "{text}");
            assert!(text.contains("no entry for registry"), "{text}");
            assert!(text.contains("`docker.io`"), "lists the entries: {text}");
        }
    }
}

#[tokio::test]
async fn secrets_without_usable_credentials_are_rejected() {
    let cases: Vec<(SecretData, &str)> = vec![
        (
            SecretData::new(Some("Opaque"))
                .with("user", "x")
                .with("pass", PASSWORD),
            "holds no credentials",
        ),
        (SecretData::new(Some("Opaque")), "found keys: none"),
        (
            SecretData::new(None).with("username", "x"),
            "no `password` or `token`",
        ),
        (
            SecretData::new(None).with("password", PASSWORD),
            "no `username`",
        ),
        (
            SecretData::new(None)
                .with("username", "x")
                .with("password", ""),
            "key `password` is empty",
        ),
        (
            SecretData::new(None)
                .with("username", "x")
                .with("password", vec![0xff, 0xfe]),
            "not valid UTF-8",
        ),
        (
            SecretData::new(Some("kubernetes.io/dockerconfigjson")).with("config.json", "{}"),
            "no `.dockerconfigjson`",
        ),
        (
            SecretData::new(Some("kubernetes.io/dockerconfigjson")).with(
                ".dockerconfigjson",
                format!("{{\"auths\": {{\"ghcr.io\": {{\"password\": \"{PASSWORD}\""),
            ),
            "not valid JSON",
        ),
        (
            SecretData::new(None).with(".dockerconfigjson", "{\"credsStore\": \"desktop\"}"),
            "no `auths`",
        ),
        (
            dockerconfig(json!({"ghcr.io": {"auth": "!!!notbase64"}})),
            "not valid base64",
        ),
        (
            dockerconfig(
                json!({"ghcr.io": {"auth": base64::engine::general_purpose::STANDARD.encode(PASSWORD)}}),
            ),
            "username:password",
        ),
        (
            dockerconfig(json!({"ghcr.io": {"email": "a@b.c"}})),
            "entry `ghcr.io` has no",
        ),
    ];
    for (secret, needle) in cases {
        for b in backends(vec![(COMPONENT, "bad", secret.clone())]) {
            let err = resolver()
                .resolve(b.store.as_ref(), COMPONENT, &ghcr(json!({"name": "bad"})))
                .await
                .unwrap_err();
            assert_eq!(err.category(), ErrorCategory::Config, "{err}");
            let text = err.to_string();
            assert!(text.contains("Secret `apps/bad`"), "{text}");
            assert!(text.contains("source.authentication.secretRef"), "{text}");
            assert!(
                text.contains(needle),
                "{}: expected {needle:?} in {text}",
                b.name
            );
            assert!(!text.contains(PASSWORD), "leaked: {text}");
            assert!(
                !format!("{err:?}").contains(PASSWORD),
                "leaked in Debug: {err:?}"
            );
        }
    }
}

#[tokio::test]
async fn ca_bundle_from_ca_crt() {
    for b in backends(vec![
        (SYSTEM, "ca", SecretData::new(None).with("ca.crt", CA_PEM)),
        (
            COMPONENT,
            "no-key",
            SecretData::new(None).with("tls.crt", CA_PEM),
        ),
        (
            COMPONENT,
            "not-pem",
            SecretData::new(None).with("ca.crt", "hello"),
        ),
    ]) {
        let spec = oci_spec("oci://r.io/app:1.0.0", None, Some(json!({"name": "ca"})));
        let auth = resolver()
            .resolve(b.store.as_ref(), COMPONENT, &spec)
            .await
            .unwrap();
        assert_eq!(auth.ca_pem.as_deref(), Some(CA_PEM.as_bytes()));
        assert!(auth.credentials.is_none());

        let spec = oci_spec(
            "oci://r.io/app:1.0.0",
            None,
            Some(json!({"name": "no-key"})),
        );
        let err = resolver()
            .resolve(b.store.as_ref(), COMPONENT, &spec)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no `ca.crt` key"), "{err}");
        assert!(err.to_string().contains("source.caSecretRef"), "{err}");

        let spec = oci_spec(
            "oci://r.io/app:1.0.0",
            None,
            Some(json!({"name": "not-pem"})),
        );
        let err = resolver()
            .resolve(b.store.as_ref(), COMPONENT, &spec)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no PEM certificate"), "{err}");

        let spec = oci_spec(
            "oci://r.io/app:1.0.0",
            None,
            Some(json!({"name": "absent"})),
        );
        let err = resolver()
            .resolve(b.store.as_ref(), COMPONENT, &spec)
            .await
            .unwrap_err();
        assert_eq!(err.category(), ErrorCategory::NotFound);
    }
}

#[tokio::test]
async fn kube_api_failures_keep_their_category() {
    for (code, category) in [(403, ErrorCategory::Auth), (500, ErrorCategory::Network)] {
        let (client, _) = fake_kube(&vec![], Some(code));
        let store = KubeSecretStore::new(client);
        let err = resolver()
            .resolve(&store, COMPONENT, &ghcr(json!({"name": "creds"})))
            .await
            .unwrap_err();
        assert_eq!(err.category(), category, "{code}: {err}");
        assert!(err.to_string().contains("Secret `apps/creds`"), "{err}");
    }
}

// ------------------------------------------------------------------------------------------
// No secret in any output
// ------------------------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn password_never_appears_in_errors_logs_or_debug_output() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // Global, not scoped: other tests of this binary hit the same callsites on their own
    // threads, and a scoped subscriber raced them for the callsites' cached interest (the
    // debug line was lost twice in CI even with the cache rebuilt). A global subscriber
    // also checks every other test's logs for the password; this is the only test of the
    // binary that installs one.
    tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");

    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("u:{PASSWORD}"));
    let secrets: Secrets = vec![
        (COMPONENT, "basic", basic("u")),
        (
            SYSTEM,
            "token",
            SecretData::new(None).with("token", PASSWORD),
        ),
        (
            COMPONENT,
            "docker",
            dockerconfig(json!({"ghcr.io": {"auth": b64}, "x.io": {"password": PASSWORD}})),
        ),
        (
            COMPONENT,
            "half",
            SecretData::new(None).with("password", PASSWORD),
        ),
        (
            COMPONENT,
            "ca",
            SecretData::new(None).with("ca.crt", PASSWORD),
        ),
        (
            COMPONENT,
            "badjson",
            SecretData::new(None).with(
                ".dockerconfigjson",
                format!("{{\"auths\": [\"{PASSWORD}\"]}}"),
            ),
        ),
    ];
    let mut outputs = Vec::new();
    for b in backends(secrets) {
        let specs = [
            ghcr(json!({"name": "basic"})),
            ghcr(json!({"name": "token"})),
            ghcr(json!({"name": "docker"})),
            oci_spec(
                "oci://x.io/app:1.0.0",
                Some(json!({"name": "docker"})),
                None,
            ),
            oci_spec(
                "oci://y.io/app:1.0.0",
                Some(json!({"name": "docker"})),
                None,
            ),
            ghcr(json!({"name": "half"})),
            ghcr(json!({"name": "badjson"})),
            ghcr(json!({"name": "absent"})),
            ghcr(json!({"name": "basic", "namespace": "elsewhere"})),
            oci_spec("oci://r.io/app:1.0.0", None, Some(json!({"name": "ca"}))),
        ];
        for spec in &specs {
            match resolver().resolve(b.store.as_ref(), COMPONENT, spec).await {
                Ok(auth) => {
                    outputs.push(format!("{auth:?}"));
                    if let Some(c) = &auth.credentials {
                        outputs.push(format!("{c} {c:?} {}", c.describe()));
                    }
                }
                Err(e) => outputs.push(format!("{e} {e:?}")),
            }
        }
        let data = b.store.get(COMPONENT, "basic").await.unwrap().unwrap();
        outputs.push(format!("{data:?}"));
    }
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("resolved source credentials"),
        "debug logs were captured: {logs}"
    );
    assert!(outputs.len() > 20);
    for text in outputs.iter().chain(std::iter::once(&logs)) {
        assert!(!text.contains(PASSWORD), "secret leaked: {text}");
        assert!(
            !text.contains(&PASSWORD[3..12]),
            "secret fragment leaked: {text}"
        );
    }
}

// ------------------------------------------------------------------------------------------
// cosign public keys (`source.verify.secretRef`)
// ------------------------------------------------------------------------------------------

const COSIGN_PUB: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEwm0e3ZIgYzU1mic4fBrssvkFpNNU\nLnzuqmq4FYyciLnH0qdt3XCL6N++HsGMFV2GauRyNHMhYiHTwv+JaqVOfA==\n-----END PUBLIC KEY-----\n";
const TEAM_PUB: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEpEytAuGFuo+azRnpDy+7xc1sXvD2\nZWD2UmhnZEAgG5wN/XO6hOWq79qgT+tJHMPnSnQaZ7zTTo9/7+cekvhSmQ==\n-----END PUBLIC KEY-----\n";

fn verified_spec(secret_ref: Value) -> SourceSpec {
    chart_source::spec::parse_source(&json!({"source": {
        "type": "oci",
        "chart": "oci://ghcr.io/acme/charts/app:1.2.3",
        "verify": {"provider": "cosign", "secretRef": secret_ref}
    }}))
    .unwrap()
}

async fn resolve_keys(b: &Backend, name: &str) -> Result<chart_source::SourceAuth, Error> {
    let spec = verified_spec(json!({ "name": name }));
    resolver().resolve(b.store.as_ref(), COMPONENT, &spec).await
}

#[tokio::test]
async fn cosign_keys_follow_the_namespace_rules() {
    let keys = SecretData::new(Some("Opaque"))
        .with("cosign.pub", COSIGN_PUB)
        .with("team.pub", TEAM_PUB)
        .with("README", "not a key");
    for b in backends(vec![(SYSTEM, "cosign-keys", keys.clone())]) {
        // Component namespace first, then the system namespace.
        let auth = resolve_keys(&b, "cosign-keys").await.unwrap();
        let described = auth.cosign_keys.expect("keys").describe();
        assert_eq!(
            described, "`cosign.pub`, `team.pub` of Secret deployment-system/cosign-keys",
            "{}",
            b.name
        );
        assert_eq!(
            b.lookups(),
            vec!["apps/cosign-keys", "deployment-system/cosign-keys"],
            "{}",
            b.name
        );
    }
    // Another tenant's namespace: refused before any lookup.
    for b in backends(vec![("other-tenant", "cosign-keys", keys.clone())]) {
        let spec = verified_spec(json!({"name": "cosign-keys", "namespace": "other-tenant"}));
        let err = resolver()
            .resolve(b.store.as_ref(), COMPONENT, &spec)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::SecretNamespaceNotAllowed { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("source.verify.secretRef.namespace"),
            "{err}"
        );
        assert!(
            b.lookups().is_empty(),
            "{}: looked up {:?}",
            b.name,
            b.lookups()
        );
    }
    // The Secret is watched like the credentials' (a key change reconciles the Component).
    let refs = resolver().referenced_secrets(COMPONENT, &verified_spec(json!({"name": "k"})));
    assert_eq!(
        refs,
        vec![
            ("apps".to_string(), "k".to_string()),
            ("deployment-system".to_string(), "k".to_string())
        ]
    );
}

#[tokio::test]
async fn unusable_cosign_key_secrets_are_config_errors() {
    let table: Vec<(SecretData, &str)> = vec![
        (
            SecretData::new(None).with("ca.crt", CA_PEM),
            "holds no cosign public key",
        ),
        (
            SecretData::new(None).with("cosign.pub", "not a key"),
            "key `cosign.pub` is not a PEM public key",
        ),
        (
            SecretData::new(None).with("cosign.pub", CA_PEM),
            "key `cosign.pub` is not a PEM public key",
        ),
    ];
    for (data, needle) in table {
        for b in backends(vec![(COMPONENT, "keys", data.clone())]) {
            let err = resolve_keys(&b, "keys").await.unwrap_err();
            assert_eq!(err.category(), ErrorCategory::Config, "{err}");
            let text = err.to_string();
            assert!(
                text.contains("Secret `apps/keys` (field `source.verify.secretRef`)"),
                "{text}"
            );
            assert!(text.contains(needle), "{}: {text}", b.name);
        }
    }
}
