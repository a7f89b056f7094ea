//! Handler configuration: [`HelmConfig`] parsed from a Component's `spec.config`.
//!
//! ```yaml
//! releaseName: my-app          # required, a Helm release name
//! releaseNamespace: apps       # default: the Component's namespace
//! manageNamespace: true        # default true
//! values: { replicaCount: 2 }  # default {}
//! valuesFrom:                  # default []; merged in order, then `values` on top
//!   - { kind: Secret, name: app-secrets }                      # valuesKey: values.yaml
//!   - { kind: ConfigMap, name: app-env, valuesKey: replicas, targetPath: replicaCount, optional: true }
//! driftDetection: { mode: warn } # enabled | warn | disabled; see crate::drift
//! serviceAccountName: deployer # helm and the release reads act as this SA (crate::identity)
//! source: { type: oci, chart: "oci://ghcr.io/acme/charts/app:1.2.3" }
//! ```
//!
//! The source may also be written in the flat legacy forms (see
//! [`chart_source::spec::parse_source`]). Unknown top-level fields are errors naming the field.

use chart_source::SourceSpec;
use chart_source::spec::{
    FLAT_SOURCE_FIELDS, closest, is_dns_label, is_dns_subdomain, kind_of, parse_source,
};
use serde_json::{Map, Value};

use crate::drift::DriftDetection;
use crate::error::Error;
use crate::identity::{SERVICE_ACCOUNT_FIELD, ServiceAccountName};
use crate::validated_name::validated_name;
use crate::values::{TargetPath, ValuesKind};

/// Helm's limit on release names.
pub const MAX_RELEASE_NAME_LEN: usize = 53;

const HANDLER_FIELDS: &[&str] = &[
    "releaseName",
    "releaseNamespace",
    "manageNamespace",
    "values",
    "valuesFrom",
    "driftDetection",
    "serviceAccountName",
    "source",
];

const VALUES_REFERENCE_FIELDS: &[&str] = &[
    "kind",
    "name",
    "namespace",
    "valuesKey",
    "targetPath",
    "optional",
];

/// The key read when a `valuesFrom` entry names none (Flux's default).
pub const DEFAULT_VALUES_KEY: &str = "values.yaml";
/// Flux's bound on `valuesKey`.
pub const MAX_VALUES_KEY_LEN: usize = 253;

validated_name! {
    /// A Helm release name, valid by construction: a lowercase RFC 1123 subdomain
    /// (`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`) of at most 53 characters.
    ReleaseName
}

impl ReleaseName {
    /// Validates a release name; the error says what is wrong (without a field name).
    pub fn new(name: &str) -> Result<Self, String> {
        if name.is_empty() {
            return Err("empty; expected a release name such as `my-app`".into());
        }
        if name.len() > MAX_RELEASE_NAME_LEN {
            return Err(format!(
                "{name:?} is {} characters long; Helm allows at most {MAX_RELEASE_NAME_LEN}",
                name.len()
            ));
        }
        if !name.split('.').all(is_dns_label) {
            return Err(format!(
                "{name:?} is not a valid release name: lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit"
            ));
        }
        Ok(ReleaseName(name.to_string()))
    }
}

impl std::str::FromStr for ReleaseName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        ReleaseName::new(s).map_err(|m| Error::config("releaseName", m))
    }
}

validated_name! {
    /// A Kubernetes namespace name, valid by construction: a lowercase RFC 1123 label of at
    /// most 63 characters (where a release goes, and what helm is given as `--namespace`).
    NamespaceName
}

impl NamespaceName {
    /// Validates a namespace name; the error says what is wrong (without a field name).
    pub fn new(name: &str) -> Result<Self, String> {
        if is_dns_label(name) {
            Ok(NamespaceName(name.to_string()))
        } else {
            Err(format!(
                "{name:?} is not a valid namespace name (lowercase letters, digits and `-`, at most 63 characters, starting and ending with a letter or digit)"
            ))
        }
    }
}

/// The Helm handler's configuration of one Component.
#[derive(Debug, Clone, PartialEq)]
pub struct HelmConfig {
    pub release_name: ReleaseName,
    /// Where the release is installed; defaults to the Component's namespace.
    pub release_namespace: NamespaceName,
    /// Create the namespace on install, delete it on uninstall when empty. Default true.
    pub manage_namespace: bool,
    /// Helm values (an object, possibly empty); merged on top of `values_from`.
    pub values: Map<String, Value>,
    /// Secrets and ConfigMaps of the Component's namespace to read values from, in order.
    pub values_from: Vec<ValuesReference>,
    /// Comparing the release's live objects with what it applied (default: warn).
    pub drift_detection: DriftDetection,
    /// The ServiceAccount of the Component's namespace that helm and the release reads act
    /// as (impersonated); `None`: the `run --default-service-account`, else the controller.
    pub service_account_name: Option<ServiceAccountName>,
    pub source: SourceSpec,
}

/// One `valuesFrom` entry, valid by construction: a Secret or ConfigMap of the Component's
/// namespace (checked at parse time), the key to read, and where its content goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValuesReference {
    pub kind: ValuesKind,
    /// A DNS subdomain (the object's name).
    pub name: String,
    /// Default `values.yaml`; `[-._a-zA-Z0-9]+`.
    pub values_key: String,
    /// The key's content becomes this one value; without it, the content is a YAML
    /// mapping deep-merged into the values.
    pub target_path: Option<TargetPath>,
    /// A missing object or key is skipped instead of failing.
    pub optional: bool,
}

impl ValuesReference {
    /// Parses `valuesFrom[index]`; a `namespace` other than `component_namespace` is refused.
    fn parse(value: &Value, index: usize, component_namespace: &str) -> Result<Self, Error> {
        let field = format!("valuesFrom[{index}]");
        let Some(obj) = value.as_object() else {
            return Err(Error::config(
                field,
                format!(
                    "expected an object such as `{{kind: ConfigMap, name: app-values}}`, found {}",
                    kind_of(value)
                ),
            ));
        };
        for key in obj.keys() {
            if !VALUES_REFERENCE_FIELDS.contains(&key.as_str()) {
                let hint = closest(key, VALUES_REFERENCE_FIELDS)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                return Err(Error::config(
                    format!("{field}.{key}"),
                    format!(
                        "unknown field{hint}; expected `kind`, `name`, `valuesKey`, `targetPath`, `optional`"
                    ),
                ));
            }
        }
        let string = |name: &str| -> Result<Option<&str>, Error> {
            match obj.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(other) => Err(Error::config(
                    format!("{field}.{name}"),
                    format!("expected a string, found {}", kind_of(other)),
                )),
            }
        };
        let kind = match string("kind")? {
            Some("Secret") => ValuesKind::Secret,
            Some("ConfigMap") => ValuesKind::ConfigMap,
            Some(other) => {
                return Err(Error::config(
                    format!("{field}.kind"),
                    format!("{other:?} is not supported; expected `Secret` or `ConfigMap`"),
                ));
            }
            None => {
                return Err(Error::config(
                    format!("{field}.kind"),
                    "missing; expected `Secret` or `ConfigMap`",
                ));
            }
        };
        let name = match string("name")? {
            Some(n) if is_dns_subdomain(n) => n.to_string(),
            Some(n) => {
                return Err(Error::config(
                    format!("{field}.name"),
                    format!(
                        "{n:?} is not a valid {kind} name (lowercase letters, digits, `-` and `.`, at most 253 characters)"
                    ),
                ));
            }
            None => {
                return Err(Error::config(
                    format!("{field}.name"),
                    format!(
                        "missing; expected the name of a {kind} in namespace {component_namespace:?}"
                    ),
                ));
            }
        };
        if let Some(ns) = string("namespace")?
            && ns != component_namespace
        {
            return Err(Error::ValuesNamespaceNotAllowed {
                field: format!("{field}.namespace"),
                kind,
                name,
                namespace: ns.to_string(),
                component_namespace: component_namespace.to_string(),
            });
        }
        let values_key = match string("valuesKey")? {
            None => DEFAULT_VALUES_KEY.to_string(),
            Some(k)
                if !k.is_empty()
                    && k.len() <= MAX_VALUES_KEY_LEN
                    && k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')) =>
            {
                k.to_string()
            }
            Some(k) => {
                return Err(Error::config(
                    format!("{field}.valuesKey"),
                    format!(
                        "{k:?} is not a valid {kind} key (letters, digits, `-`, `.` and `_`, at most {MAX_VALUES_KEY_LEN} characters)"
                    ),
                ));
            }
        };
        let target_path = match string("targetPath")? {
            None => None,
            Some(p) => Some(
                TargetPath::parse(p)
                    .map_err(|m| Error::config(format!("{field}.targetPath"), m))?,
            ),
        };
        let optional = match obj.get("optional") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(Error::config(
                    format!("{field}.optional"),
                    format!("expected true or false, found {}", kind_of(other)),
                ));
            }
        };
        Ok(ValuesReference {
            kind,
            name,
            values_key,
            target_path,
            optional,
        })
    }
}

impl HelmConfig {
    /// Parses `spec.config`. `component_namespace` is the default release namespace.
    pub fn parse(config: &Value, component_namespace: &str) -> Result<HelmConfig, Error> {
        let Some(top) = config.as_object() else {
            return Err(Error::config(
                "spec.config",
                format!(
                    "expected an object with `releaseName` and `source`, found {}",
                    kind_of(config)
                ),
            ));
        };
        for key in top.keys() {
            if !HANDLER_FIELDS.contains(&key.as_str())
                && !FLAT_SOURCE_FIELDS.contains(&key.as_str())
            {
                let hint = closest(key, HANDLER_FIELDS.iter().chain(FLAT_SOURCE_FIELDS))
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                return Err(Error::config(
                    key.as_str(),
                    format!(
                        "unknown field{hint}; expected `releaseName`, `releaseNamespace`, `manageNamespace`, `values`, `valuesFrom`, `driftDetection`, `serviceAccountName`, `source` (or, in the flat forms, {})",
                        FLAT_SOURCE_FIELDS
                            .iter()
                            .map(|f| format!("`{f}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }

        let release_name = match top.get("releaseName") {
            None | Some(Value::Null) => {
                return Err(Error::config(
                    "releaseName",
                    "missing; expected a Helm release name such as `my-app`",
                ));
            }
            Some(Value::String(s)) => {
                ReleaseName::new(s).map_err(|m| Error::config("releaseName", m))?
            }
            Some(other) => {
                return Err(Error::config(
                    "releaseName",
                    format!("expected a string, found {}", kind_of(other)),
                ));
            }
        };

        let release_namespace = match top.get("releaseNamespace") {
            None | Some(Value::Null) => NamespaceName::new(component_namespace)
                .map_err(|m| Error::config("metadata.namespace", m))?,
            Some(Value::String(s)) => {
                NamespaceName::new(s).map_err(|m| Error::config("releaseNamespace", m))?
            }
            Some(other) => {
                return Err(Error::config(
                    "releaseNamespace",
                    format!("expected a string, found {}", kind_of(other)),
                ));
            }
        };

        let manage_namespace = match top.get("manageNamespace") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(Error::config(
                    "manageNamespace",
                    format!("expected true or false, found {}", kind_of(other)),
                ));
            }
        };

        let values = match top.get("values") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(other) => {
                return Err(Error::config(
                    "values",
                    format!(
                        "expected an object (a map of Helm values), found {}",
                        kind_of(other)
                    ),
                ));
            }
        };

        let values_from = match top.get("valuesFrom") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| ValuesReference::parse(item, i, component_namespace))
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(Error::config(
                    "valuesFrom",
                    format!(
                        "expected a list of `{{kind, name, valuesKey, targetPath, optional}}`, found {}",
                        kind_of(other)
                    ),
                ));
            }
        };

        let drift_detection = DriftDetection::parse(top.get("driftDetection"))?;
        let service_account_name = match top.get(SERVICE_ACCOUNT_FIELD) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(
                ServiceAccountName::new(s).map_err(|m| Error::config(SERVICE_ACCOUNT_FIELD, m))?,
            ),
            Some(other) => {
                return Err(Error::config(
                    SERVICE_ACCOUNT_FIELD,
                    format!(
                        "expected the name of a ServiceAccount of the Component's namespace {component_namespace:?}, found {}",
                        kind_of(other)
                    ),
                ));
            }
        };
        let source = parse_source(config)?;
        Ok(HelmConfig {
            release_name,
            release_namespace,
            manage_namespace,
            values,
            values_from,
            drift_detection,
            service_account_name,
            source,
        })
    }
}
