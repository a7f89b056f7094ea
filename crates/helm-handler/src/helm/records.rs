//! helm's release records read straight from the cluster: what `helm status` and `helm get
//! manifest` print, with no helm process.
//!
//! helm (3 and 4, storage driver `secret`, the default and the only one the engine lets
//! helm use) keeps each revision in a Secret of the release namespace, type
//! `helm.sh/release.v1`, labelled `owner=helm`, `name=RELEASE`, `version=REVISION`; its
//! `release` key holds base64(gzip(JSON of the release)). `helm status` shows the highest
//! revision (`Storage.Last`); so does [`RecordedReleases::status`], from one labelled list
//! of the namespace's Secrets — a reconcile whose recorded state answers starts no helm
//! (a helm process costs ~0.1 CPU-second and its own API discovery).
//!
//! [`RecordedReleases`] wraps the helm engine: reads come from the records, every change
//! (install, upgrade, uninstall, rollback) and `template` still runs helm.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::ListParams;
use serde_json::{Map, Value};

use super::errors::HelmError;
use super::{Release, ReleaseEngine, ReleaseInfo, UninstallOutcome, UpgradeOptions};
use crate::impersonation::KubeClients;

/// The Secret type of helm's release records.
pub const RECORD_TYPE: &str = "helm.sh/release.v1";
/// A decoded record larger than this is refused (the engine's bound on helm's output).
pub const MAX_RECORD_BYTES: u64 = super::command::MAX_STDOUT as u64;

/// Decodes the `release` key of a record: base64, then gzip (helm compresses; an
/// uncompressed JSON body, as very old helm 3 wrote, is accepted too).
pub fn decode_record(data: &[u8]) -> Result<String, String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| format!("not base64: {e}"))?;
    let json = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .take(MAX_RECORD_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| format!("not gzip: {e}"))?;
        if out.len() as u64 > MAX_RECORD_BYTES {
            return Err(format!("larger than {MAX_RECORD_BYTES} bytes"));
        }
        out
    } else {
        raw
    };
    String::from_utf8(json).map_err(|_| "not UTF-8".to_string())
}

/// The revision a record's `version` label names (helm always writes it).
fn revision_label(secret: &Secret) -> Option<u64> {
    secret
        .metadata
        .labels
        .as_ref()?
        .get("version")?
        .parse()
        .ok()
}

/// The newest revision among the records of one release, as `helm status` reports it.
pub fn latest(
    records: &[Secret],
    operation: &'static str,
) -> Result<Option<ReleaseInfo>, HelmError> {
    let Some(newest) = records
        .iter()
        .filter(|s| s.type_.as_deref() == Some(RECORD_TYPE))
        .max_by_key(|s| revision_label(s).unwrap_or(0))
    else {
        return Ok(None);
    };
    let name = newest.metadata.name.as_deref().unwrap_or("?");
    let bad = |message: String| HelmError::BadOutput {
        operation,
        message: format!("release record Secret {name}: {message}"),
    };
    let data = newest
        .data
        .as_ref()
        .and_then(|d| d.get("release"))
        .ok_or_else(|| bad("no `release` key".into()))?;
    let json = decode_record(&data.0).map_err(bad)?;
    ReleaseInfo::from_json(operation, &json).map(Some)
}

/// A Kubernetes API failure, in the engine's error terms: categorised by `Error::kube` (the
/// workspace's one classifier of API errors), then worded as helm's own failure of that kind.
fn api_error(operation: &'static str, release: &Release, e: kube::Error) -> HelmError {
    use componentkit::handler::ErrorCategory as C;
    // An RBAC refusal reads as helm's own would: who may not do what, where.
    if let kube::Error::Api(status) = &e
        && status.code == 403
        && let Some(forbidden) = super::Forbidden::parse(&status.message)
    {
        return HelmError::Forbidden {
            operation,
            forbidden: Box::new(forbidden),
            message: format!("reading the release records of {release}"),
        };
    }
    let classified = crate::error::Error::kube(format!("release records of {release}"), e);
    let message = classified.to_string();
    match classified.category() {
        C::Network => HelmError::Unreachable { operation, message },
        C::Auth => HelmError::Unauthorized { operation, message },
        C::Conflict => HelmError::Conflict { operation, message },
        C::Timeout => HelmError::HelmTimeout { operation, message },
        _ => HelmError::Failed {
            operation,
            exit: "-".into(),
            message,
        },
    }
}

/// A [`ReleaseEngine`] whose reads (`status`, `get_manifest`) come from helm's records in
/// the cluster; changes go to the wrapped engine (helm).
pub struct RecordedReleases {
    helm: Arc<dyn ReleaseEngine>,
    clients: Arc<KubeClients>,
}

impl RecordedReleases {
    /// Records are read as the release's identity, as `helm status --kube-as-user` would:
    /// a tenant reads only the records its ServiceAccount may read.
    pub fn new(helm: Arc<dyn ReleaseEngine>, clients: Arc<KubeClients>) -> Self {
        Self { helm, clients }
    }

    async fn read(
        &self,
        release: &Release,
        operation: &'static str,
    ) -> Result<Option<ReleaseInfo>, HelmError> {
        let client =
            self.clients
                .client(&release.identity)
                .map_err(|failure| HelmError::Failed {
                    operation,
                    exit: "-".into(),
                    message: failure.message,
                })?;
        let api: Api<Secret> = Api::namespaced(client, &release.namespace);
        let params = ListParams::default()
            .labels(&format!("owner=helm,name={}", release.name))
            .fields(&format!("type={RECORD_TYPE}"));
        let list = api
            .list(&params)
            .await
            .map_err(|e| api_error(operation, release, e))?;
        latest(&list.items, operation)
    }
}

#[async_trait]
impl ReleaseEngine for RecordedReleases {
    async fn upgrade_install(
        &self,
        release: &Release,
        chart: &Path,
        values: &Map<String, Value>,
        options: &UpgradeOptions,
    ) -> Result<ReleaseInfo, HelmError> {
        self.helm
            .upgrade_install(release, chart, values, options)
            .await
    }

    async fn status(&self, release: &Release) -> Result<Option<ReleaseInfo>, HelmError> {
        self.read(release, "status").await
    }

    async fn get_manifest(&self, release: &Release) -> Result<String, HelmError> {
        match self.read(release, "get manifest").await? {
            Some(info) => Ok(info.manifest),
            None => Err(HelmError::ReleaseNotFound {
                namespace: release.namespace.to_string(),
                name: release.name.to_string(),
            }),
        }
    }

    async fn uninstall(&self, release: &Release) -> Result<UninstallOutcome, HelmError> {
        self.helm.uninstall(release).await
    }

    async fn template(
        &self,
        release: &Release,
        chart: &Path,
        values: &Map<String, Value>,
    ) -> Result<String, HelmError> {
        self.helm.template(release, chart, values).await
    }

    async fn rollback(&self, release: &Release, revision: Option<u64>) -> Result<(), HelmError> {
        self.helm.rollback(release, revision).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn encode(json: &str) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(json.as_bytes()).unwrap();
        base64::engine::general_purpose::STANDARD
            .encode(gz.finish().unwrap())
            .into_bytes()
    }

    fn record(revision: u64, status: &str, type_: &str) -> Secret {
        let json = format!(
            r#"{{"name":"web","namespace":"apps","version":{revision},"info":{{"status":"{status}","description":"d{revision}"}},"manifest":"m{revision}","chart":{{"metadata":{{"name":"app","version":"0.1.0"}}}}}}"#
        );
        let mut s = Secret {
            type_: Some(type_.into()),
            data: Some(
                [(
                    "release".to_string(),
                    k8s_openapi::ByteString(encode(&json)),
                )]
                .into(),
            ),
            ..Secret::default()
        };
        s.metadata.name = Some(format!("sh.helm.release.v1.web.v{revision}"));
        s.metadata.labels = Some(
            [
                ("owner".to_string(), "helm".to_string()),
                ("name".to_string(), "web".to_string()),
                ("version".to_string(), revision.to_string()),
            ]
            .into(),
        );
        s
    }

    #[test]
    fn the_newest_revision_is_the_status_helm_reports() {
        let records = vec![
            record(2, "deployed", RECORD_TYPE),
            record(10, "pending-upgrade", RECORD_TYPE),
            record(1, "superseded", RECORD_TYPE),
            record(11, "deployed", "Opaque"),
        ];
        let info = latest(&records, "status").unwrap().unwrap();
        assert_eq!(
            info.revision, 10,
            "numeric, not lexical; other types ignored"
        );
        assert_eq!(info.status.as_str(), "pending-upgrade");
        assert_eq!(info.manifest, "m10");
        assert_eq!(info.description, "d10");
        assert_eq!(info.chart.map(|c| c.name).as_deref(), Some("app"));
        assert!(latest(&[], "status").unwrap().is_none());
    }

    #[test]
    fn broken_records_are_errors_naming_the_secret() {
        let mut r = record(3, "deployed", RECORD_TYPE);
        r.data = Some(
            [(
                "release".to_string(),
                k8s_openapi::ByteString(b"%%".to_vec()),
            )]
            .into(),
        );
        let err = latest(&[r], "status").unwrap_err().to_string();
        assert!(
            err.contains("sh.helm.release.v1.web.v3") && err.contains("base64"),
            "{err}"
        );
        let plain = base64::engine::general_purpose::STANDARD.encode(r#"{"name":"a"}"#);
        assert_eq!(decode_record(plain.as_bytes()).unwrap(), r#"{"name":"a"}"#);
    }

    #[test]
    fn a_gzip_bomb_is_bounded() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..=(MAX_RECORD_BYTES >> 20) {
            gz.write_all(&zeros).unwrap();
        }
        let data = base64::engine::general_purpose::STANDARD.encode(gz.finish().unwrap());
        let err = decode_record(data.as_bytes()).unwrap_err();
        assert!(err.contains("larger than"), "{err}");
    }

    #[test]
    fn a_refused_record_read_names_who_may_not_read_where() {
        use componentkit::handler::ErrorCategory;
        let e = kube::Error::Api(Box::new(
            kube::core::Status::failure(
                r#"secrets is forbidden: User "system:serviceaccount:team-a:deployer" cannot list resource "secrets" in API group "" in the namespace "team-b""#,
                "Forbidden",
            )
            .with_code(403),
        ));
        let err = api_error("status", &Release::parse("web", "team-b").unwrap(), e);
        assert_eq!(err.category(), ErrorCategory::Auth);
        let text = err.to_string();
        assert!(
            text.contains(
                r#"forbidden: ServiceAccount team-a/deployer cannot list secrets (the core API group) in namespace "team-b""#
            ) && text.contains("release records of team-b/web"),
            "{text}"
        );
        let gone = kube::Error::Api(Box::new(
            kube::core::Status::failure("etcd is down", "InternalError").with_code(503),
        ));
        let err = api_error("status", &Release::parse("web", "team-b").unwrap(), gone);
        assert_eq!(err.category(), ErrorCategory::Network, "{err}");
        let slow = kube::Error::Api(Box::new(
            kube::core::Status::failure("etcd is slow", "Timeout").with_code(504),
        ));
        let err = api_error("status", &Release::parse("web", "team-b").unwrap(), slow);
        assert_eq!(err.category(), ErrorCategory::Timeout, "{err}");
    }
}
