//! Drift detection, the pure parts: the configuration (`spec.config.driftDetection`, Flux's
//! names), the field-level comparison of what applying the release's manifest would give
//! (a server-side apply dry-run of each object) with the live object, and what to do about
//! a drift.
//!
//! ```yaml
//! driftDetection:
//!   mode: warn                     # enabled | warn | disabled (default warn)
//!   ignore:                        # fields other managers own (an HPA's replicas)
//!     - paths: ["/spec/replicas"]
//!       target: {kind: Deployment} # optional: group, kind, name, namespace
//! ```

use std::fmt;

use serde_json::{Map, Value};

use crate::error::Error;
use chart_source::spec::{closest, kind_of};

/// What drift detection does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DriftMode {
    /// Detect, report and correct (re-apply the drifted objects; no new release revision).
    Enabled,
    /// Detect and report only.
    #[default]
    Warn,
    /// Do not look.
    Disabled,
}

impl DriftMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DriftMode::Enabled => "enabled",
            DriftMode::Warn => "warn",
            DriftMode::Disabled => "disabled",
        }
    }
}

/// A JSON pointer (RFC 6901), parsed: `/spec/replicas`, `/metadata/annotations/a~1b`.
#[derive(Clone, PartialEq, Eq)]
pub struct JsonPointer {
    text: String,
    tokens: Vec<String>,
}

impl JsonPointer {
    pub fn parse(text: &str) -> Result<JsonPointer, String> {
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!(
                "{text:?} is not a JSON pointer: it must start with `/` (e.g. `/spec/replicas`)"
            ));
        };
        let mut tokens = Vec::new();
        for raw in rest.split('/') {
            let mut token = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => token.push('~'),
                        Some('1') => token.push('/'),
                        _ => {
                            return Err(format!(
                                "{text:?}: `~` must be followed by `0` (for `~`) or `1` (for `/`)"
                            ));
                        }
                    }
                } else {
                    token.push(c);
                }
            }
            tokens.push(token);
        }
        Ok(JsonPointer {
            text: text.to_string(),
            tokens,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Removes the pointed-to value, if present (array indexes are numbers).
    pub fn remove_from(&self, value: &mut Value) {
        let Some((last, parents)) = self.tokens.split_last() else {
            return;
        };
        let mut current = value;
        for token in parents {
            let next = match current {
                Value::Object(map) => map.get_mut(token),
                Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
                _ => None,
            };
            match next {
                Some(v) => current = v,
                None => return,
            }
        }
        match current {
            Value::Object(map) => {
                map.remove(last);
            }
            Value::Array(items) => {
                if let Ok(i) = last.parse::<usize>()
                    && i < items.len()
                {
                    items.remove(i);
                }
            }
            _ => {}
        }
    }
}

impl fmt::Debug for JsonPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonPointer({:?})", self.text)
    }
}

impl fmt::Display for JsonPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Which objects an ignore rule applies to; an absent field matches anything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Target {
    /// API group (`apps`; `""` is the core group).
    pub group: Option<String>,
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
}

/// The identity of an object, for matching ignore rules and for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectId {
    pub group: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

impl Target {
    pub fn matches(&self, id: &ObjectId) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        eq(&self.group, &id.group)
            && eq(&self.kind, &id.kind)
            && eq(&self.name, &id.name)
            && eq(&self.namespace, id.namespace.as_deref().unwrap_or(""))
    }
}

/// Fields not compared (Flux's `ignore`): `paths` of the objects `target` selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoreRule {
    pub paths: Vec<JsonPointer>,
    pub target: Option<Target>,
}

/// `spec.config.driftDetection`, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DriftDetection {
    pub mode: DriftMode,
    pub ignore: Vec<IgnoreRule>,
}

const FIELDS: &[&str] = &["mode", "ignore"];
const RULE_FIELDS: &[&str] = &["paths", "target"];
const TARGET_FIELDS: &[&str] = &["group", "kind", "name", "namespace"];

fn unknown(field: &str, key: &str, expected: &[&str]) -> Error {
    let hint = closest(key, expected)
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
    Error::config(
        format!("{field}.{key}"),
        format!(
            "unknown field{hint}; expected {}",
            expected
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}

fn object<'a>(
    value: &'a Value,
    field: &str,
    expected: &[&str],
) -> Result<&'a Map<String, Value>, Error> {
    let Some(obj) = value.as_object() else {
        return Err(Error::config(
            field,
            format!("expected an object, found {}", kind_of(value)),
        ));
    };
    if let Some(key) = obj.keys().find(|k| !expected.contains(&k.as_str())) {
        return Err(unknown(field, key, expected));
    }
    Ok(obj)
}

impl DriftDetection {
    /// Parses `driftDetection` (`None`/`null`: the defaults).
    pub fn parse(value: Option<&Value>) -> Result<DriftDetection, Error> {
        const FIELD: &str = "driftDetection";
        let value = match value {
            None | Some(Value::Null) => return Ok(DriftDetection::default()),
            Some(v) => v,
        };
        let obj = object(value, FIELD, FIELDS)?;
        let mode = match obj.get("mode") {
            None | Some(Value::Null) => DriftMode::default(),
            Some(Value::String(s)) => match s.as_str() {
                "enabled" => DriftMode::Enabled,
                "warn" => DriftMode::Warn,
                "disabled" => DriftMode::Disabled,
                other => {
                    return Err(Error::config(
                        "driftDetection.mode",
                        format!(
                            "{other:?} is not a mode; expected `enabled`, `warn` or `disabled`"
                        ),
                    ));
                }
            },
            Some(other) => {
                return Err(Error::config(
                    "driftDetection.mode",
                    format!(
                        "expected `enabled`, `warn` or `disabled`, found {}",
                        kind_of(other)
                    ),
                ));
            }
        };
        let ignore = match obj.get("ignore") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(rules)) => rules
                .iter()
                .enumerate()
                .map(|(i, r)| parse_rule(r, &format!("{FIELD}.ignore[{i}]")))
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(Error::config(
                    "driftDetection.ignore",
                    format!(
                        "expected a list of `{{paths, target}}`, found {}",
                        kind_of(other)
                    ),
                ));
            }
        };
        Ok(DriftDetection { mode, ignore })
    }

    /// The pointers ignored for one object.
    pub fn ignored_paths(&self, id: &ObjectId) -> Vec<&JsonPointer> {
        self.ignore
            .iter()
            .filter(|r| r.target.as_ref().is_none_or(|t| t.matches(id)))
            .flat_map(|r| r.paths.iter())
            .collect()
    }
}

fn parse_rule(value: &Value, field: &str) -> Result<IgnoreRule, Error> {
    let obj = object(value, field, RULE_FIELDS)?;
    let paths = match obj.get("paths") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, p)| match p {
                Value::String(s) => JsonPointer::parse(s)
                    .map_err(|m| Error::config(format!("{field}.paths[{i}]"), m)),
                other => Err(Error::config(
                    format!("{field}.paths[{i}]"),
                    format!("expected a JSON pointer string, found {}", kind_of(other)),
                )),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(Error::config(
                format!("{field}.paths"),
                "expected a non-empty list of JSON pointers such as `/spec/replicas`",
            ));
        }
    };
    let target = match obj.get("target") {
        None | Some(Value::Null) => None,
        Some(t) => {
            let tf = format!("{field}.target");
            let t = object(t, &tf, TARGET_FIELDS)?;
            let text = |k: &str| -> Result<Option<String>, Error> {
                match t.get(k) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s.clone())),
                    Some(other) => Err(Error::config(
                        format!("{tf}.{k}"),
                        format!("expected a string, found {}", kind_of(other)),
                    )),
                }
            };
            Some(Target {
                group: text("group")?,
                kind: text("kind")?,
                name: text("name")?,
                namespace: text("namespace")?,
            })
        }
    };
    Ok(IgnoreRule { paths, target })
}

/// Fields the API server owns or rewrites on every write; never drift.
const SERVER_FIELDS: &[&[&str]] = &[
    &["status"],
    &["metadata", "managedFields"],
    &["metadata", "resourceVersion"],
    &["metadata", "generation"],
    &["metadata", "uid"],
    &["metadata", "creationTimestamp"],
    &["metadata", "selfLink"],
];

fn strip(value: &mut Value, ignored: &[&JsonPointer]) {
    for path in SERVER_FIELDS {
        let pointer = JsonPointer {
            text: String::new(),
            tokens: path.iter().map(|s| s.to_string()).collect(),
        };
        pointer.remove_from(value);
    }
    for p in ignored {
        p.remove_from(value);
    }
}

/// The JSON pointers where `live` differs from `applied` (what a server-side apply of the
/// manifest gives, from a dry run), server-owned and `ignored` fields left out. Sorted;
/// empty when nothing drifted.
pub fn drifted_fields(applied: &Value, live: &Value, ignored: &[&JsonPointer]) -> Vec<String> {
    let (mut a, mut l) = (applied.clone(), live.clone());
    strip(&mut a, ignored);
    strip(&mut l, ignored);
    let mut out = Vec::new();
    diff(&a, &l, &mut String::new(), &mut out);
    out.sort();
    out
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn diff(a: &Value, b: &Value, path: &mut String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for key in keys {
                let len = path.len();
                path.push('/');
                path.push_str(&escape(key));
                match (x.get(key), y.get(key)) {
                    (Some(v), Some(w)) => diff(v, w, path, out),
                    _ => out.push(path.clone()),
                }
                path.truncate(len);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                let len = path.len();
                path.push('/');
                path.push_str(&i.to_string());
                diff(v, w, path, out);
                path.truncate(len);
            }
        }
        _ if a == b => {}
        _ => out.push(if path.is_empty() {
            "/".to_string()
        } else {
            path.clone()
        }),
    }
}

/// One object's drift.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectDrift {
    /// The object is gone.
    Deleted(ObjectId),
    /// These fields differ from what the release applied.
    Modified(ObjectId, Vec<String>),
}

impl fmt::Display for ObjectDrift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectDrift::Deleted(id) => write!(f, "{id} deleted"),
            ObjectDrift::Modified(id, fields) => write!(f, "{id} {}", fields.join(", ")),
        }
    }
}

/// What to do after a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftAction {
    /// Nothing drifted, or drift detection is off: no write at all.
    Nothing,
    /// Report (condition + Event), leave the objects as they are.
    Report,
    /// Report and re-apply the drifted objects.
    Correct,
}

/// The decision: from the mode and whether anything drifted.
pub fn plan(mode: DriftMode, drifted: bool) -> DriftAction {
    match (mode, drifted) {
        (DriftMode::Disabled, _) | (_, false) => DriftAction::Nothing,
        (DriftMode::Warn, true) => DriftAction::Report,
        (DriftMode::Enabled, true) => DriftAction::Correct,
    }
}

/// A one-line summary naming the objects and fields (bounded in length).
pub fn summary(drifts: &[ObjectDrift]) -> String {
    const MAX: usize = 5;
    let mut parts: Vec<String> = drifts.iter().take(MAX).map(|d| d.to_string()).collect();
    if drifts.len() > MAX {
        parts.push(format!("and {} more", drifts.len() - MAX));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(kind: &str, name: &str) -> ObjectId {
        ObjectId {
            group: "apps".into(),
            kind: kind.into(),
            namespace: Some("apps".into()),
            name: name.into(),
        }
    }

    #[test]
    fn the_plan_follows_the_mode() {
        use DriftAction::*;
        let table = [
            (DriftMode::Enabled, true, Correct),
            (DriftMode::Enabled, false, Nothing),
            (DriftMode::Warn, true, Report),
            (DriftMode::Warn, false, Nothing),
            (DriftMode::Disabled, true, Nothing),
            (DriftMode::Disabled, false, Nothing),
        ];
        for (mode, drifted, want) in table {
            assert_eq!(plan(mode, drifted), want, "{mode:?} {drifted}");
        }
    }

    #[test]
    fn fields_that_differ_are_named_server_fields_and_ignored_ones_are_not() {
        let applied = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "resourceVersion": "2", "generation": 3,
                         "managedFields": [{"manager": "helm"}], "labels": {"a/b": "1"}},
            "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}},
            "status": {"replicas": 1}
        });
        let mut live = applied.clone();
        live["metadata"]["resourceVersion"] = json!("9");
        live["metadata"]["managedFields"] = json!([{"manager": "kubectl"}]);
        live["status"] = json!({"replicas": 5});
        assert!(
            drifted_fields(&applied, &live, &[]).is_empty(),
            "server fields"
        );

        live["spec"]["replicas"] = json!(5);
        live["metadata"]["labels"]["a/b"] = json!("2");
        live["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        live["spec"]["paused"] = json!(true);
        assert_eq!(
            drifted_fields(&applied, &live, &[]),
            [
                "/metadata/labels/a~1b",
                "/spec/paused",
                "/spec/replicas",
                "/spec/template/spec/containers/0/image"
            ]
        );
        let replicas = JsonPointer::parse("/spec/replicas").unwrap();
        let labels = JsonPointer::parse("/metadata/labels/a~1b").unwrap();
        assert_eq!(
            drifted_fields(&applied, &live, &[&replicas, &labels]),
            ["/spec/paused", "/spec/template/spec/containers/0/image"]
        );
        // A list of another length differs as a whole.
        let mut shorter = applied.clone();
        shorter["spec"]["template"]["spec"]["containers"] = json!([]);
        assert_eq!(
            drifted_fields(&applied, &shorter, &[]),
            ["/spec/template/spec/containers"]
        );
    }

    #[test]
    fn json_pointers_parse_and_remove() {
        let p = JsonPointer::parse("/metadata/annotations/a~1b~0c").unwrap();
        let mut v = json!({"metadata": {"annotations": {"a/b~c": "x", "k": "y"}}});
        p.remove_from(&mut v);
        assert_eq!(v, json!({"metadata": {"annotations": {"k": "y"}}}));
        let mut list = json!({"l": [1, 2, 3]});
        JsonPointer::parse("/l/1").unwrap().remove_from(&mut list);
        assert_eq!(list, json!({"l": [1, 3]}));
        JsonPointer::parse("/absent/x")
            .unwrap()
            .remove_from(&mut list);
        assert_eq!(list, json!({"l": [1, 3]}));
        assert!(
            JsonPointer::parse("spec/replicas")
                .unwrap_err()
                .contains("start with `/`")
        );
        assert!(
            JsonPointer::parse("/a~2")
                .unwrap_err()
                .contains("`~` must be")
        );
    }

    #[test]
    fn ignore_rules_select_by_target() {
        let d = DriftDetection::parse(Some(&json!({
            "mode": "enabled",
            "ignore": [
                {"paths": ["/spec/replicas"], "target": {"kind": "Deployment"}},
                {"paths": ["/metadata/annotations"]},
            ]
        })))
        .unwrap();
        assert_eq!(d.mode, DriftMode::Enabled);
        let on_deployment: Vec<&str> = d
            .ignored_paths(&id("Deployment", "web"))
            .iter()
            .map(|p| p.as_str())
            .collect();
        assert_eq!(on_deployment, ["/spec/replicas", "/metadata/annotations"]);
        assert_eq!(d.ignored_paths(&id("StatefulSet", "db")).len(), 1);
        assert_eq!(DriftDetection::parse(None).unwrap().mode, DriftMode::Warn);
    }

    #[test]
    fn bad_drift_configuration_names_the_field() {
        let table = [
            (json!("on"), "driftDetection", "expected an object"),
            (
                json!({"mode": "on"}),
                "driftDetection.mode",
                "expected `enabled`",
            ),
            (
                json!({"mod": "warn"}),
                "driftDetection.mod",
                "did you mean `mode`?",
            ),
            (
                json!({"ignore": {}}),
                "driftDetection.ignore",
                "expected a list",
            ),
            (
                json!({"ignore": [{}]}),
                "driftDetection.ignore[0].paths",
                "non-empty list",
            ),
            (
                json!({"ignore": [{"paths": ["spec"]}]}),
                "driftDetection.ignore[0].paths[0]",
                "must start with `/`",
            ),
            (
                json!({"ignore": [{"paths": ["/a"], "target": {"knd": "X"}}]}),
                "driftDetection.ignore[0].target.knd",
                "did you mean `kind`?",
            ),
        ];
        for (value, field, needle) in table {
            let err = DriftDetection::parse(Some(&value)).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("config: field `{field}`")) && err.contains(needle),
                "{value}: {err}"
            );
        }
    }

    #[test]
    fn the_summary_names_objects_and_fields_and_is_bounded() {
        let drifts: Vec<ObjectDrift> = (0..7)
            .map(|i| {
                ObjectDrift::Modified(
                    id("Deployment", &format!("d{i}")),
                    vec!["/spec/replicas".into()],
                )
            })
            .chain([ObjectDrift::Deleted(id("Service", "web"))])
            .collect();
        let text = summary(&drifts[..1]);
        assert_eq!(text, "Deployment/apps/d0 /spec/replicas");
        let text = summary(&drifts);
        assert!(text.ends_with("and 3 more"), "{text}");
        assert_eq!(
            ObjectDrift::Deleted(id("Service", "web")).to_string(),
            "Service/apps/web deleted"
        );
    }
}
