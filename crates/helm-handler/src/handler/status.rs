//! `HandlerStatus`: what the Helm handler persists in a Component's `status.handlerStatus`
//! between reconciles, and the values hash used to detect a changed desired state.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// The chart a release was last deployed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ChartStatus {
    pub name: String,
    pub version: String,
    /// `sha256:<hex>` of the chart archive.
    pub digest: String,
    /// Set when the chart's `Chart.yaml` names another chart or version than the reference
    /// (a mirrored chart, a short tag): deployed as helm deploys it, and announced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub differs_from_reference: Option<chart_source::ReferenceMismatch>,
}

/// A verified signature: which manifest digest, checked against which key set (a changed
/// key set in the Secret is verified again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedStatus {
    /// `cosign`.
    pub provider: String,
    /// `sha256:<hex>` of the OCI manifest the signature is for.
    pub manifest_digest: String,
    /// `sha256:<hex>` fingerprint of the public keys.
    pub key_set: String,
}

impl From<&chart_source::verify::Verified> for VerifiedStatus {
    fn from(v: &chart_source::verify::Verified) -> Self {
        VerifiedStatus {
            provider: v.provider.to_string(),
            manifest_digest: v.manifest_digest.to_string(),
            key_set: v.key_set.to_string(),
        }
    }
}

/// The handler's persisted state (`status.handlerStatus`, camelCase JSON).
///
/// Written after every successful install/upgrade; the desired state (chart digest, values
/// hash, release name and namespace) is compared against it to decide whether an upgrade is
/// needed. Absent fields are omitted, never `null`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct HandlerStatus {
    pub release_name: String,
    pub release_namespace: String,
    /// Helm release revision of the last install/upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    #[serde(default)]
    pub chart: ChartStatus,
    /// Secret-free description of the source (`oci://…` or `URL chart@version`).
    #[serde(default)]
    pub source: String,
    /// `sha256:<hex>` of the canonical JSON of the values.
    #[serde(default)]
    pub values_hash: String,
    /// RFC 3339 time of the last install/upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_deploy_time: Option<String>,
    /// The signature check the deployed chart passed (`source.verify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<VerifiedStatus>,
    /// True when the handler created the release namespace (`manageNamespace`), so it may
    /// delete it on uninstall (only when empty).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub namespace_created: bool,
    /// The ServiceAccount (of the Component's namespace) the release was last deployed as;
    /// absent: the controller's own identity. Removal acts as it when the configuration no
    /// longer parses — never falling back to the controller's rights for a tenant's release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
}

impl HandlerStatus {
    /// Reads a persisted status; anything unreadable (absent, an older shape) is `None`.
    pub fn from_value(value: Option<&Value>) -> Option<HandlerStatus> {
        let value = value?;
        if value.is_null() {
            return None;
        }
        let status: HandlerStatus = serde_json::from_value(value.clone()).ok()?;
        if status.release_name.is_empty() {
            return None;
        }
        Some(status)
    }

    pub fn to_value(&self) -> Value {
        // Serializing plain strings/integers/bools cannot fail; fall back to null anyway.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// True when this status describes the same desired state.
    pub fn same_desired_state(&self, desired: &DesiredState<'_>) -> bool {
        self.release_name == desired.release_name
            && self.release_namespace == desired.release_namespace
            && self.chart.digest == desired.chart_digest
            && self.values_hash == desired.values_hash
    }
}

/// The identity of a desired release: what, when changed, triggers an upgrade.
#[derive(Debug, Clone, Copy)]
pub struct DesiredState<'a> {
    pub release_name: &'a str,
    pub release_namespace: &'a str,
    pub chart_digest: &'a str,
    pub values_hash: &'a str,
}

/// `sha256:<hex>` of the canonical JSON (object keys sorted, no whitespace) of `values`.
pub fn values_hash(values: &serde_json::Map<String, Value>) -> String {
    let mut out = String::new();
    write_canonical(&Value::Object(values.clone()), &mut out);
    let digest = Sha256::digest(out.as_bytes());
    format!("sha256:{}", hex::encode(digest))
}

/// Canonical JSON: keys sorted at every level; numbers and strings as serde_json writes them.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Now, as RFC 3339 with seconds (UTC).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> serde_json::Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn hash_ignores_key_order() {
        let a = map(json!({"b": 1, "a": {"y": [1, {"q": 2, "p": 1}], "x": "s"}}));
        let b = map(json!({"a": {"x": "s", "y": [1, {"p": 1, "q": 2}]}, "b": 1}));
        assert_eq!(values_hash(&a), values_hash(&b));
        let c = map(json!({"a": {"x": "s", "y": [{"p": 1, "q": 2}, 1]}, "b": 1}));
        assert_ne!(values_hash(&a), values_hash(&c));
        assert!(values_hash(&a).starts_with("sha256:"));
        assert_eq!(
            canonical_json(&json!({"b": [true, null], "a": "\"q"})),
            r#"{"a":"\"q","b":[true,null]}"#
        );
    }

    #[test]
    fn status_round_trip_without_nulls() {
        let s = HandlerStatus {
            release_name: "web".into(),
            release_namespace: "apps".into(),
            revision: Some(3),
            chart: ChartStatus {
                name: "web".into(),
                version: "1.0.0".into(),
                digest: "sha256:ab".into(),
                differs_from_reference: None,
            },
            source: "oci://r/web:1.0.0".into(),
            values_hash: "sha256:cd".into(),
            last_deploy_time: None,
            verified: None,
            namespace_created: false,
            service_account_name: None,
        };
        let v = s.to_value();
        assert_eq!(
            v,
            json!({"releaseName": "web", "releaseNamespace": "apps", "revision": 3,
                   "chart": {"name": "web", "version": "1.0.0", "digest": "sha256:ab"},
                   "source": "oci://r/web:1.0.0", "valuesHash": "sha256:cd"})
        );
        assert_eq!(HandlerStatus::from_value(Some(&v)), Some(s.clone()));
        assert_eq!(HandlerStatus::from_value(Some(&json!({"x": 1}))), None);
        assert_eq!(HandlerStatus::from_value(Some(&Value::Null)), None);
        assert_eq!(HandlerStatus::from_value(None), None);

        // A verified chart records the signed manifest digest and the key set.
        let verified = HandlerStatus {
            verified: Some(VerifiedStatus {
                provider: "cosign".into(),
                manifest_digest: "sha256:ef".into(),
                key_set: "sha256:01".into(),
            }),
            ..s
        };
        let v = verified.to_value();
        assert_eq!(
            v["verified"],
            json!({"provider": "cosign", "manifestDigest": "sha256:ef", "keySet": "sha256:01"})
        );
        assert_eq!(HandlerStatus::from_value(Some(&v)), Some(verified));
    }
}
