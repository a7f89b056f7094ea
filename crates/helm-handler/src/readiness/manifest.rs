//! The objects of a release, from `helm get manifest` (multi-document YAML).

use std::fmt;

use serde_json::Value;

/// The identity of one object of a release.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    /// `None` for cluster-scoped objects (as far as the manifest tells; the fetch corrects
    /// it with API discovery).
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    /// `(group, version)` of `api_version` (`("", "v1")` for the core group).
    pub fn group_version(&self) -> (&str, &str) {
        match self.api_version.rsplit_once('/') {
            Some((g, v)) => (g, v),
            None => ("", self.api_version.as_str()),
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// A manifest document that is not a Kubernetes object.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("release manifest: invalid YAML: {0}")]
    Yaml(#[source] chart_source::yaml::Error),
    #[error("release manifest, document {index}: missing {field}")]
    MissingField { index: usize, field: &'static str },
}

/// Built-in kinds that are cluster-scoped (everything else gets the release namespace when
/// the manifest leaves `metadata.namespace` out, as helm does when it applies it).
const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("", "ComponentStatus"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ),
    ("admissionregistration.k8s.io", "MutatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicyBinding",
    ),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("node.k8s.io", "RuntimeClass"),
    ("networking.k8s.io", "IngressClass"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("policy", "PodSecurityPolicy"),
    ("cert-manager.io", "ClusterIssuer"),
];

/// True when the kind is known to be cluster-scoped.
pub fn is_cluster_scoped(api_version: &str, kind: &str) -> bool {
    let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
    CLUSTER_SCOPED.contains(&(group, kind))
}

/// Parses a multi-document manifest into object references, in order, without duplicates.
/// Empty and comment-only documents are skipped; `v1/List` documents are flattened.
pub fn parse_manifest(
    manifest: &str,
    release_namespace: &str,
) -> Result<Vec<ObjectRef>, ManifestError> {
    Ok(manifest_objects(manifest, release_namespace)?
        .into_iter()
        .map(|(r, _)| r)
        .collect())
}

/// [`parse_manifest`] with each object's document (the last of duplicates wins, as when
/// helm applies them).
pub fn manifest_objects(
    manifest: &str,
    release_namespace: &str,
) -> Result<Vec<(ObjectRef, Value)>, ManifestError> {
    let mut objects = Vec::new();
    // Rendered by a chart we do not trust: the same bounded reading as every other YAML.
    let docs = chart_source::yaml::documents(manifest).map_err(ManifestError::Yaml)?;
    for (index, value) in docs.iter().enumerate() {
        collect(index, value, release_namespace, &mut objects)?;
    }
    let mut out: Vec<(ObjectRef, Value)> = Vec::with_capacity(objects.len());
    for (r, v) in objects {
        match out.iter_mut().find(|(seen, _)| *seen == r) {
            Some(slot) => slot.1 = v,
            None => out.push((r, v)),
        }
    }
    Ok(out)
}

fn collect(
    index: usize,
    value: &Value,
    release_namespace: &str,
    refs: &mut Vec<(ObjectRef, Value)>,
) -> Result<(), ManifestError> {
    if value.is_null() {
        return Ok(());
    }
    let s = |ptr: &str| value.pointer(ptr).and_then(Value::as_str);
    let api_version = s("/apiVersion").ok_or(ManifestError::MissingField {
        index,
        field: "apiVersion",
    })?;
    let kind = s("/kind").ok_or(ManifestError::MissingField {
        index,
        field: "kind",
    })?;
    if api_version == "v1" && kind.ends_with("List") {
        if let Some(items) = value.get("items").and_then(Value::as_array) {
            for item in items {
                collect(index, item, release_namespace, refs)?;
            }
        }
        return Ok(());
    }
    let name = s("/metadata/name").ok_or(ManifestError::MissingField {
        index,
        field: "metadata.name",
    })?;
    let namespace = if is_cluster_scoped(api_version, kind) {
        None
    } else {
        Some(
            s("/metadata/namespace")
                .filter(|n| !n.is_empty())
                .unwrap_or(release_namespace)
                .to_string(),
        )
    };
    refs.push((
        ObjectRef {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace,
            name: name.to_string(),
        },
        value.clone(),
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_helm_style_manifest() {
        let m = "---\n# Source: c/templates/sa.yaml\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n---\n# Source: c/templates/empty.yaml\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: cr\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: other\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa\n";
        let refs = parse_manifest(m, "rel-ns").unwrap();
        let shown: Vec<String> = refs.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            shown,
            [
                "ServiceAccount/rel-ns/sa",
                "ClusterRole/cr",
                "Deployment/other/web",
                "ConfigMap/rel-ns/a"
            ]
        );
        assert_eq!(refs[2].group_version(), ("apps", "v1"));
        assert_eq!(refs[0].group_version(), ("", "v1"));
    }

    #[test]
    fn errors_name_the_document() {
        let err = parse_manifest("apiVersion: v1\nkind: X\n", "ns").unwrap_err();
        assert!(err.to_string().contains("metadata.name"), "{err}");
        let err = parse_manifest("---\napiVersion: v1\n---\na: [\n", "ns").unwrap_err();
        assert!(err.to_string().contains("invalid YAML: line 5"), "{err}");
        assert!(parse_manifest("", "ns").unwrap().is_empty());
        // A hostile chart's rendered manifest is bounded like any other YAML.
        let bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n";
        let err = parse_manifest(bomb, "ns").unwrap_err();
        assert!(err.to_string().contains("excessive aliasing"), "{err}");
    }
}
