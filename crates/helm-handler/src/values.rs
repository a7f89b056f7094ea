//! Helm values from several sources, merged as Flux's helm-controller merges them
//! (`spec.valuesFrom`, then `spec.values` on top). Pure functions, no I/O.
//!
//! - A whole document (a YAML mapping read like helm's `chartutil.ReadValues`: empty → `{}`)
//!   is deep-merged into what came before with Flux's `MergeMaps`: a key whose old and new
//!   values are both mappings is merged recursively; anything else is replaced (lists are
//!   replaced, not appended; `null` replaces too — helm removes such keys later).
//! - With a `targetPath`, the key's content becomes that one value, read as helm's
//!   `--set path=VALUE` reads it (Flux hands it to `strvals.ParseInto`): `true`/`false`
//!   (any case) → booleans, `null` → null, integers without a leading zero → integers,
//!   `{a,b}` → a list, `\x` → `x`, anything else → a string. A value in single or double
//!   quotes is a string (`"true"` → `"true"`), as `--set-string` reads it.
//!   One deliberate difference: helm would read an unescaped `,` as the start of another
//!   `key=value` pair (so a ConfigMap could set any other value); here it is an error that
//!   says to escape it (`\,`). Flux fails on most such values as well.
//!
//! Messages never quote a value: values may come from Secrets.

use std::fmt;

use serde_json::{Map, Number, Value};

/// Where a `valuesFrom` entry reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ValuesKind {
    Secret,
    ConfigMap,
}

impl ValuesKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ValuesKind::Secret => "Secret",
            ValuesKind::ConfigMap => "ConfigMap",
        }
    }
}

impl fmt::Display for ValuesKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// helm's `strvals` bound on list indexes.
pub const MAX_INDEX: usize = 65536;
/// Flux's bound on `targetPath`.
pub const MAX_TARGET_PATH_LEN: usize = 250;

/// One step of a [`TargetPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A dotted path into the values (`a.b`, `list[1].name`, `nodeSelector.kubernetes\.io/os`),
/// valid by construction: it starts with a key, keys are not empty, indexes are at most
/// [`MAX_INDEX`].
#[derive(Clone, PartialEq, Eq)]
pub struct TargetPath {
    text: String,
    segments: Vec<Segment>,
}

impl TargetPath {
    /// Parses Flux's `targetPath` grammar (`^([a-zA-Z0-9_\-.\\/]|\[[0-9]{1,5}\])+$`); a `\`
    /// makes the next character part of the key (`\.` is a dot inside a key).
    pub fn parse(text: &str) -> Result<TargetPath, String> {
        if text.is_empty() {
            return Err("empty; expected a dotted path such as `image.tag`".into());
        }
        if text.len() > MAX_TARGET_PATH_LEN {
            return Err(format!(
                "{} characters long; at most {MAX_TARGET_PATH_LEN} are allowed",
                text.len()
            ));
        }
        let mut segments = Vec::new();
        let mut key = String::new();
        // True right after `]`: only `.`, `[` or the end may follow.
        let mut after_index = false;
        let mut chars = text.chars().peekable();
        let bad = |c: char| {
            format!(
                "{text:?}: character {c:?} is not allowed (letters, digits, `_`, `-`, `/`, `.` between keys, `[N]` list indexes, `\\` to escape)"
            )
        };
        while let Some(c) = chars.next() {
            match c {
                '.' => {
                    if !after_index {
                        if key.is_empty() {
                            return Err(format!("{text:?}: empty key before `.`"));
                        }
                        segments.push(Segment::Key(std::mem::take(&mut key)));
                    }
                    after_index = false;
                    if chars.peek().is_none() {
                        return Err(format!("{text:?}: ends with `.`"));
                    }
                }
                '[' => {
                    if !after_index {
                        if key.is_empty() {
                            return Err(format!(
                                "{text:?}: a list index must follow a key (`list[0]`)"
                            ));
                        }
                        segments.push(Segment::Key(std::mem::take(&mut key)));
                    }
                    let mut digits = String::new();
                    loop {
                        match chars.next() {
                            Some(']') => break,
                            Some(d) if d.is_ascii_digit() && digits.len() < 5 => digits.push(d),
                            _ => {
                                return Err(format!(
                                    "{text:?}: a list index is `[N]` with at most 5 digits"
                                ));
                            }
                        }
                    }
                    let index: usize = digits.parse().map_err(|_| {
                        format!("{text:?}: a list index is `[N]` with at most 5 digits")
                    })?;
                    if index > MAX_INDEX {
                        return Err(format!(
                            "{text:?}: list index {index} is larger than helm's limit {MAX_INDEX}"
                        ));
                    }
                    segments.push(Segment::Index(index));
                    after_index = true;
                }
                _ if after_index => {
                    return Err(format!(
                        "{text:?}: after `]` only `.`, `[` or the end may follow"
                    ));
                }
                '\\' => match chars.next() {
                    Some(next) if is_path_char(next) || next == '.' || next == '\\' => {
                        key.push(next)
                    }
                    Some(next) => return Err(bad(next)),
                    None => return Err(format!("{text:?}: ends with `\\`")),
                },
                c if is_path_char(c) => key.push(c),
                c => return Err(bad(c)),
            }
        }
        if !after_index {
            segments.push(Segment::Key(key));
        }
        Ok(TargetPath {
            text: text.to_string(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/')
}

impl fmt::Display for TargetPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for TargetPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TargetPath({:?})", self.text)
    }
}

/// Flux's `MergeMaps`: `overlay` into `base`, mappings merged recursively, anything else
/// replaced.
pub fn merge_maps(base: &mut Map<String, Value>, overlay: Map<String, Value>) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Object(old)), Value::Object(new)) => merge_maps(old, new),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Why a values document could not be read. Carries positions and types, never content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentError {
    /// Not valid YAML: where the parser stopped.
    Syntax {
        line: Option<usize>,
        column: Option<usize>,
    },
    /// Valid YAML, but not a mapping (helm's values are a mapping).
    NotAMapping(&'static str),
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocumentError::Syntax {
                line: Some(l),
                column: Some(c),
            } => write!(f, "not valid YAML (line {l}, column {c})"),
            DocumentError::Syntax { line: Some(l), .. } => {
                write!(f, "not valid YAML (line {l})")
            }
            DocumentError::Syntax { .. } => f.write_str("not valid YAML"),
            DocumentError::NotAMapping(found) => write!(
                f,
                "not a YAML mapping of values (found {found}); use `targetPath` to set a single value"
            ),
        }
    }
}

/// helm's `chartutil.ReadValues`: the first YAML document as a mapping; empty or `null` is
/// `{}`.
pub fn read_document(bytes: &[u8]) -> Result<Map<String, Value>, DocumentError> {
    match chart_source::yaml::from_slice_value(bytes) {
        Ok(Value::Null) => Ok(Map::new()),
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(DocumentError::NotAMapping(json_type(&other))),
        Err(e) => Err(DocumentError::Syntax {
            line: e.line,
            column: e.column,
        }),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Reads the content of a key used with `targetPath` as helm's `--set` reads a value (see
/// the module documentation). The error says what is wrong, never the value.
pub fn read_single_value(text: &str) -> Result<Value, String> {
    let quoted = |q: char| text.starts_with(q) && text.ends_with(q);
    if quoted('\'') || quoted('"') {
        // Flux: `strings.Trim(value, "'\"")`, then `--set-string`.
        return parse_set_value(text.trim_matches(['\'', '"']), true);
    }
    parse_set_value(text, false)
}

fn parse_set_value(text: &str, as_string: bool) -> Result<Value, String> {
    let typed = |raw: String| {
        if as_string {
            Value::String(raw)
        } else {
            typed_value(raw)
        }
    };
    let mut chars = text.chars();
    if text.starts_with('{') {
        chars.next();
        let mut items = Vec::new();
        loop {
            let (item, stop) = until(&mut chars, &[',', '}']);
            match stop {
                Some('}') => {
                    items.push(typed(item));
                    if chars.next().is_some() {
                        return Err(
                            "text after the closing `}` of a list; escape `,` as `\\,`".into()
                        );
                    }
                    return Ok(Value::Array(items));
                }
                Some(_) => items.push(typed(item)),
                None => return Err("a list (`{a,b}`) must end with `}`".into()),
            }
        }
    }
    let (value, stop) = until(&mut chars, &[',']);
    if stop.is_some() {
        return Err(
            "contains an unescaped `,` (helm's --set syntax would start another key there); escape it as `\\,`"
                .into(),
        );
    }
    Ok(typed(value))
}

/// Characters up to one of `stop` (returned), `\x` read as `x`; `None` at the end.
fn until(chars: &mut std::str::Chars<'_>, stop: &[char]) -> (String, Option<char>) {
    let mut out = String::new();
    while let Some(c) = chars.next() {
        if stop.contains(&c) {
            return (out, Some(c));
        }
        if c == '\\' {
            match chars.next() {
                Some(next) => out.push(next),
                None => break,
            }
        } else {
            out.push(c);
        }
    }
    (out, None)
}

/// helm's `strvals.typedVal`.
fn typed_value(raw: String) -> Value {
    match raw.to_ascii_lowercase().as_str() {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        "null" => return Value::Null,
        "0" => return Value::Number(Number::from(0)),
        _ => {}
    }
    if !raw.starts_with('0')
        && let Ok(n) = raw.parse::<i64>()
    {
        return Value::Number(Number::from(n));
    }
    Value::String(raw)
}

/// Sets `value` at `path`, creating mappings and lists on the way; a step that holds
/// something else is replaced (as helm's `strvals` does); lists are padded with `null`.
pub fn set_at_path(values: &mut Map<String, Value>, path: &TargetPath, value: Value) {
    let segments = path.segments();
    let Some((Segment::Key(first), rest)) = segments.split_first() else {
        // A TargetPath always starts with a key.
        return;
    };
    let slot = values.entry(first.clone()).or_insert(Value::Null);
    set_in(slot, rest, value);
}

fn set_in(slot: &mut Value, rest: &[Segment], value: Value) {
    let Some((step, tail)) = rest.split_first() else {
        *slot = value;
        return;
    };
    match step {
        Segment::Key(key) => {
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(map) = slot {
                set_in(map.entry(key.clone()).or_insert(Value::Null), tail, value);
            }
        }
        Segment::Index(index) => {
            if !slot.is_array() {
                *slot = Value::Array(Vec::new());
            }
            if let Value::Array(list) = slot {
                if list.len() <= *index {
                    list.resize(index + 1, Value::Null);
                }
                set_in(&mut list[*index], tail, value);
            }
        }
    }
}

/// What one `valuesFrom` entry contributed.
#[derive(Clone, PartialEq)]
pub enum Fragment {
    /// A whole document, deep-merged.
    Document(Map<String, Value>),
    /// One value at a path.
    AtPath(TargetPath, Value),
}

impl fmt::Debug for Fragment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fragment::Document(m) => write!(f, "Document({} keys, <redacted>)", m.len()),
            Fragment::AtPath(p, _) => write!(f, "AtPath({p}, <redacted>)"),
        }
    }
}

/// The final values: the fragments in order, then `inline` (`spec.values`) on top.
pub fn compose(fragments: Vec<Fragment>, inline: &Map<String, Value>) -> MergedValues {
    let mut out = Map::new();
    for fragment in fragments {
        match fragment {
            Fragment::Document(doc) => merge_maps(&mut out, doc),
            Fragment::AtPath(path, value) => set_at_path(&mut out, &path, value),
        }
    }
    merge_maps(&mut out, inline.clone());
    MergedValues(out)
}

/// The values handed to helm. May hold values from Secrets: `Debug` shows the top-level
/// keys only.
#[derive(Clone, PartialEq, Default)]
pub struct MergedValues(Map<String, Value>);

impl MergedValues {
    pub fn new(values: Map<String, Value>) -> Self {
        MergedValues(values)
    }

    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// `sha256:<hex>` of the canonical JSON; what decides "values changed".
    pub fn hash(&self) -> String {
        crate::handler::values_hash(&self.0)
    }
}

impl fmt::Debug for MergedValues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MergedValues")
            .field("keys", &self.0.keys().collect::<Vec<_>>())
            .field("values", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            other => panic!("not an object: {other}"),
        }
    }

    fn path(s: &str) -> TargetPath {
        TargetPath::parse(s).unwrap()
    }

    #[test]
    fn target_paths_parse() {
        use Segment::{Index as I, Key as K};
        let k = |s: &str| K(s.to_string());
        let table: &[(&str, Vec<Segment>)] = &[
            ("a", vec![k("a")]),
            ("image.tag", vec![k("image"), k("tag")]),
            ("merge.at[2]", vec![k("merge"), k("at"), I(2)]),
            ("a[1].b", vec![k("a"), I(1), k("b")]),
            ("a[0][3]", vec![k("a"), I(0), I(3)]),
            (
                r"nodeSelector.kubernetes\.io/role",
                vec![k("nodeSelector"), k("kubernetes.io/role")],
            ),
            ("a_b-c/d", vec![k("a_b-c/d")]),
            ("l[65536]", vec![k("l"), I(65536)]),
        ];
        for (text, want) in table {
            assert_eq!(path(text).segments(), want.as_slice(), "{text}");
            assert_eq!(path(text).as_str(), *text);
        }
    }

    #[test]
    fn bad_target_paths_say_why() {
        let table: &[(&str, &str)] = &[
            ("", "empty"),
            (".a", "empty key"),
            ("a..b", "empty key"),
            ("a.", "ends with `.`"),
            ("[0]", "must follow a key"),
            ("a[x]", "at most 5 digits"),
            ("a[123456]", "at most 5 digits"),
            ("a[65537]", "helm's limit"),
            ("a[1", "at most 5 digits"),
            ("a[1]b", "after `]`"),
            ("a=b", "'='"),
            ("a,b", "','"),
            ("a b", "' '"),
            ("a\\", "ends with `\\`"),
        ];
        for (text, want) in table {
            let err = TargetPath::parse(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
        let long = "a".repeat(MAX_TARGET_PATH_LEN + 1);
        assert!(
            TargetPath::parse(&long)
                .unwrap_err()
                .contains("at most 250")
        );
    }

    #[test]
    fn deep_merge_follows_flux_merge_maps() {
        let table: &[(Value, Value, Value)] = &[
            // nested mappings merge
            (
                json!({"a": {"x": 1, "y": 2}, "b": 1}),
                json!({"a": {"y": 3, "z": 4}}),
                json!({"a": {"x": 1, "y": 3, "z": 4}, "b": 1}),
            ),
            // lists are replaced, not appended
            (json!({"l": [1, 2]}), json!({"l": [3]}), json!({"l": [3]})),
            // a mapping replaces a scalar and a scalar a mapping
            (
                json!({"a": "s", "b": {"x": 1}}),
                json!({"a": {"x": 1}, "b": "s"}),
                json!({"a": {"x": 1}, "b": "s"}),
            ),
            // null replaces (helm drops such keys from the chart's defaults)
            (
                json!({"a": {"x": 1}}),
                json!({"a": null}),
                json!({"a": null}),
            ),
            // Flux's own test: ConfigMap then Secret
            (
                json!({"flat": "value", "nested": {"configuration": "value"}}),
                json!({"flat": {"nested": "value"}, "nested": "value"}),
                json!({"flat": {"nested": "value"}, "nested": "value"}),
            ),
        ];
        for (base, overlay, want) in table {
            let mut b = map(base.clone());
            merge_maps(&mut b, map(overlay.clone()));
            assert_eq!(Value::Object(b), *want, "{base} + {overlay}");
        }
    }

    #[test]
    fn single_values_read_like_helm_set() {
        let table: &[(&str, Value)] = &[
            ("value", json!("value")),
            ("true", json!(true)),
            ("TRUE", json!(true)),
            ("False", json!(false)),
            ("null", Value::Null),
            ("0", json!(0)),
            ("3", json!(3)),
            ("-12", json!(-12)),
            ("007", json!("007")),
            ("1.5", json!("1.5")),
            ("", json!("")),
            ("\"true\"", json!("true")),
            ("'3'", json!("3")),
            ("{a,b,c}", json!(["a", "b", "c"])),
            ("{1,true}", json!([1, true])),
            ("\"{1,true}\"", json!(["1", "true"])),
            ("{}", json!([""])),
            (r"value1\,value2", json!("value1,value2")),
            (r"a\\b", json!(r"a\b")),
            ("line1\nline2: x", json!("line1\nline2: x")),
            ("p@ss=word", json!("p@ss=word")),
        ];
        for (text, want) in table {
            assert_eq!(read_single_value(text).unwrap(), *want, "{text:?}");
        }
        for (text, want) in [
            ("a,b", "unescaped `,`"),
            ("a,b=c", "unescaped `,`"),
            ("{p,q", "must end with `}`"),
            ("{p}q", "after the closing"),
        ] {
            let err = read_single_value(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
            assert!(!err.contains(text), "the value is not quoted: {err}");
        }
    }

    #[test]
    fn set_at_path_creates_replaces_and_pads() {
        let table: &[(Value, &str, Value, Value)] = &[
            (
                json!({}),
                "merge.at.specific.path",
                json!("value"),
                json!({"merge": {"at": {"specific": {"path": "value"}}}}),
            ),
            (
                json!({"merge": {"keep": 1}}),
                "merge.at",
                json!(true),
                json!({"merge": {"keep": 1, "at": true}}),
            ),
            (
                json!({}),
                "merge.at[2]",
                json!("value"),
                json!({"merge": {"at": [null, null, "value"]}}),
            ),
            (
                json!({"nested": {"configuration": ["list", "item", "option"]}}),
                "nested.configuration[1]",
                json!("foo"),
                json!({"nested": {"configuration": ["list", "foo", "option"]}}),
            ),
            (
                json!({"a": "scalar"}),
                "a.b",
                json!(1),
                json!({"a": {"b": 1}}),
            ),
            (
                json!({"a": [{"x": 1}, "s"]}),
                "a[1].y",
                json!(2),
                json!({"a": [{"x": 1}, {"y": 2}]}),
            ),
            (
                json!({"a": [{"x": 1}]}),
                "a[0].y",
                json!(2),
                json!({"a": [{"x": 1, "y": 2}]}),
            ),
            (
                json!({}),
                r"nodeSelector.kubernetes\.io/role",
                json!("master"),
                json!({"nodeSelector": {"kubernetes.io/role": "master"}}),
            ),
        ];
        for (start, p, value, want) in table {
            let mut m = map(start.clone());
            set_at_path(&mut m, &path(p), value.clone());
            assert_eq!(Value::Object(m), *want, "{p}");
        }
    }

    #[test]
    fn documents_read_like_chartutil_read_values() {
        assert_eq!(read_document(b"").unwrap(), Map::new());
        assert_eq!(read_document(b"~\n").unwrap(), Map::new());
        assert_eq!(
            read_document(b"a: 1\nb: {c: yes}\n").unwrap(),
            map(json!({"a": 1, "b": {"c": true}}))
        );
        let err = read_document(b"hunter2").unwrap_err();
        assert_eq!(err, DocumentError::NotAMapping("a string"));
        let err = read_document(b"a: [hunter2\n").unwrap_err();
        assert!(
            matches!(err, DocumentError::Syntax { line: Some(_), .. }),
            "{err:?}"
        );
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn compose_merges_in_order_then_inline_on_top() {
        let fragments = vec![
            Fragment::Document(map(json!({"replicaCount": 1, "env": {"A": "1", "B": "1"}}))),
            Fragment::AtPath(path("replicaCount"), json!(3)),
            Fragment::Document(map(json!({"env": {"B": "2"}}))),
        ];
        let inline = map(json!({"env": {"C": "3"}}));
        let merged = compose(fragments, &inline);
        assert_eq!(
            Value::Object(merged.as_map().clone()),
            json!({"replicaCount": 3, "env": {"A": "1", "B": "2", "C": "3"}})
        );
        let inline_wins = compose(
            vec![Fragment::AtPath(path("replicaCount"), json!(3))],
            &map(json!({"replicaCount": 5})),
        );
        assert_eq!(inline_wins.as_map()["replicaCount"], json!(5));
    }

    #[test]
    fn debug_never_shows_values() {
        let merged = compose(
            vec![Fragment::AtPath(path("db.password"), json!("hunter2"))],
            &Map::new(),
        );
        let text = format!("{merged:?}");
        assert!(text.contains("db") && !text.contains("hunter2"), "{text}");
        let f = Fragment::AtPath(path("p"), json!("hunter2"));
        assert!(!format!("{f:?}").contains("hunter2"));
    }
}
