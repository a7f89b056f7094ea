//! Reading untrusted YAML the way helm and kubectl read it, with bounds.
//!
//! Helm reads every YAML file through `sigs.k8s.io/yaml` over go-yaml v2, so that is the
//! semantics here: YAML 1.1 plain scalars (`yes`/`on`/`y` are booleans, `0755` is octal,
//! `0x1F`, `0b101`, `1_000`, `.inf`), merge keys (`<<`), keys turned into strings as
//! `sigs.k8s.io/yaml` does (`1` → `"1"`, `true` → `"true"`, floats as Go's `%g` of a float32),
//! the last of duplicate keys wins, timestamps stay strings, only the first document of a
//! single-document read counts. The result is JSON (`serde_json::Value`), as in helm.
//!
//! The events come from `saphyr-parser` (pure Rust, no unsafe, streaming); the composer is
//! ours because it must carry bounds that the YAML crates do not have:
//! - an alias budget in the spirit of go-yaml's `allowedAliasRatio`: what aliases expand to
//!   (nodes and scalar bytes, measured before anything is copied) may not exceed
//!   [`Limits::alias_allowance`] plus [`Limits::alias_ratio`] times the input's size, so a
//!   "billion laughs" document is refused after a few MB of work;
//! - a nesting-depth bound (helm's library stops at 10 000; ours is lower, because our
//!   composer and serde recurse and run on 2 MiB task stacks);
//! - characters YAML forbids (C0/C1 controls, `U+FFFE/FFFF`) are refused anywhere in the
//!   input, comments included, as go-yaml refuses them.
//!
//! Errors carry the line and column (1-based) where the parser stood.

use std::collections::{HashMap, HashSet};
use std::fmt;

use base64::Engine as _;
use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, StrInput, Tag};
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};

/// The bounds a read enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of sequences and mappings.
    pub max_depth: usize,
    /// Alias expansions may cost this many times the input's size in bytes …
    pub alias_ratio: u64,
    /// … plus this much (units: see [`Stats`]).
    pub alias_allowance: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 256,
            alias_ratio: 16,
            alias_allowance: 1 << 20,
        }
    }
}

/// What a read built. A node costs [`NODE_COST`] units plus its scalar's length in bytes,
/// roughly its memory in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Everything materialized (the document's own nodes and alias copies).
    pub materialized: u64,
    /// What aliases expanded to (checked against the budget before copying).
    pub aliased: u64,
    /// Parser events read: the parser's work, bounded by the input's size.
    pub events: u64,
}

/// The cost of one node, apart from its scalar bytes.
pub const NODE_COST: u64 = 32;

/// Why a read failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not YAML: the parser's own message.
    Syntax,
    /// Aliases expand beyond the budget.
    ExcessiveAliasing,
    /// Nesting beyond [`Limits::max_depth`].
    TooDeep,
    /// Valid YAML that has no JSON form in helm either (`.inf`, a map as a key, a bad merge).
    Unsupported,
    /// The document does not have the shape the caller expects.
    Shape,
}

/// A YAML read error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    /// 1-based; `None` when the error is about the whole document's shape.
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => {
                write!(f, "line {line} column {column}: {}", self.message)
            }
            (Some(line), None) => write!(f, "line {line}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    fn at(kind: ErrorKind, span: &Span, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            line: Some(span.start.line()),
            column: Some(span.start.col() + 1),
        }
    }

    fn scan(e: &ScanError) -> Error {
        // The scanner's own bound on flow nesting (255 levels).
        let (kind, message) = if e.info().contains("recursion limit") {
            (
                ErrorKind::TooDeep,
                "nesting too deep: more than 255 levels of flow collections".to_string(),
            )
        } else {
            (ErrorKind::Syntax, e.info().to_string())
        };
        Error {
            kind,
            message,
            line: Some(e.marker().line()),
            column: Some(e.marker().col() + 1),
        }
    }

    /// A shape error from serde, without a position.
    pub fn shape(message: impl Into<String>) -> Error {
        Error {
            kind: ErrorKind::Shape,
            message: message.into(),
            line: None,
            column: None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The first document of `text` as JSON (`null` when there is none).
pub fn from_str_value(text: &str) -> Result<Value> {
    from_str_value_with(text, Limits::default()).0
}

/// [`from_str_value`] from bytes, which must be UTF-8.
pub fn from_slice_value(bytes: &[u8]) -> Result<Value> {
    from_str_value(utf8(bytes)?)
}

/// The first document of `bytes`, deserialized into `T` from its JSON form.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_value(from_slice_value(bytes)?).map_err(|e| Error::shape(e.to_string()))
}

/// Every document of `text` (a multi-document manifest); empty documents are `null`.
pub fn documents(text: &str) -> Result<Vec<Value>> {
    let mut composer = Composer::new(text, Limits::default())?;
    let mut docs = Vec::new();
    while let Some(doc) = composer.next_document()? {
        docs.push(doc);
    }
    Ok(docs)
}

/// [`from_str_value`] with explicit limits, also returning what the read built.
pub fn from_str_value_with(text: &str, limits: Limits) -> (Result<Value>, Stats) {
    let mut composer = match Composer::new(text, limits) {
        Ok(c) => c,
        Err(e) => return (Err(e), Stats::default()),
    };
    let doc = composer.next_document().map(Option::unwrap_or_default);
    (doc, composer.stats)
}

fn utf8(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|e| {
        let before = &bytes[..e.valid_up_to()];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
        Error {
            kind: ErrorKind::Syntax,
            message: "invalid UTF-8".to_string(),
            line: Some(line),
            column: Some(column),
        }
    })
}

/// The first character YAML does not allow in a stream (go-yaml's reader check).
fn check_characters(text: &str) -> Result<()> {
    let allowed = |c: char| {
        matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{7E}' | '\u{85}')
            || ('\u{A0}'..='\u{D7FF}').contains(&c)
            || ('\u{E000}'..='\u{FFFD}').contains(&c)
            || c >= '\u{10000}'
    };
    for (line_no, line) in text.split('\n').enumerate() {
        if let Some((column, c)) = line.chars().enumerate().find(|(_, c)| !allowed(*c)) {
            return Err(Error {
                kind: ErrorKind::Syntax,
                message: format!(
                    "control characters are not allowed (U+{:04X})",
                    u32::from(c)
                ),
                line: Some(line_no + 1),
                column: Some(column + 1),
            });
        }
    }
    Ok(())
}

/// An anchored node, kept for its aliases.
struct Anchored {
    value: Value,
    cost: u64,
}

/// A composed node: its value when it was kept, and its cost either way.
pub(crate) struct Node {
    pub(crate) value: Option<Value>,
    pub(crate) cost: u64,
}

/// Which mapping keys to build; the others are skipped (parsed, bounded, not built).
pub(crate) type KeyFilter<'f> = &'f dyn Fn(&str) -> bool;

/// Builds JSON values from parser events, under [`Limits`].
pub(crate) struct Composer<'a> {
    parser: Parser<'a, StrInput<'a>>,
    anchors: HashMap<usize, Anchored>,
    limits: Limits,
    input_len: u64,
    depth: usize,
    pub(crate) stats: Stats,
    done: bool,
    /// A key set twice in one mapping (by merges too) is an error, as in go-yaml's
    /// `UnmarshalStrict` (helm reads `index.yaml` that way); otherwise the last one wins.
    strict: bool,
}

impl<'a> Composer<'a> {
    pub(crate) fn new(text: &'a str, limits: Limits) -> Result<Composer<'a>> {
        check_characters(text)?;
        Ok(Composer {
            parser: Parser::new_from_str(text),
            anchors: HashMap::new(),
            limits,
            input_len: text.len() as u64,
            depth: 0,
            stats: Stats::default(),
            done: false,
            strict: false,
        })
    }

    /// Duplicate keys are errors (see `strict`).
    pub(crate) fn strict(mut self) -> Self {
        self.strict = true;
        self
    }

    /// In strict mode, refuses a key already set in this mapping.
    pub(crate) fn once(&self, seen: &mut HashSet<String>, key: &str, span: &Span) -> Result<()> {
        if self.strict && !seen.insert(key.to_string()) {
            return Err(Error::at(
                ErrorKind::Shape,
                span,
                format!("key {key:?} already set in map"),
            ));
        }
        Ok(())
    }

    pub(crate) fn next_event(&mut self) -> Result<(Event<'a>, Span)> {
        self.stats.events += 1;
        match self.parser.next_event() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => Err(Error::scan(&e)),
            None => Err(Error {
                kind: ErrorKind::Syntax,
                message: "unexpected end of the YAML stream".to_string(),
                line: None,
                column: None,
            }),
        }
    }

    /// Moves to the next document's root node; `None` at the end of the stream.
    pub(crate) fn start_document(&mut self) -> Result<Option<(Event<'a>, Span)>> {
        if self.done {
            return Ok(None);
        }
        loop {
            let (ev, span) = self.next_event()?;
            match ev {
                Event::StreamStart | Event::Nothing | Event::DocumentEnd => {}
                Event::DocumentStart(_) => {
                    // Anchors do not cross documents.
                    self.anchors.clear();
                    return self.next_event().map(Some);
                }
                Event::StreamEnd => {
                    self.done = true;
                    return Ok(None);
                }
                _ => return Err(Error::at(ErrorKind::Syntax, &span, "unexpected event")),
            }
        }
    }

    fn next_document(&mut self) -> Result<Option<Value>> {
        let Some((ev, span)) = self.start_document()? else {
            return Ok(None);
        };
        let node = self.node(ev, span, true)?;
        Ok(Some(node.value.unwrap_or_default()))
    }

    /// Composes the node that starts with `ev`; builds it only when `keep` (or anchored).
    pub(crate) fn node(&mut self, ev: Event<'a>, span: Span, keep: bool) -> Result<Node> {
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let cost = NODE_COST + text.len() as u64;
                let value = if keep || anchor != 0 {
                    Some(scalar(&text, style, tag.as_deref(), &span)?)
                } else {
                    None
                };
                self.built(cost);
                self.anchor(anchor, Node { value, cost })
            }
            Event::Alias(id) => self.alias(id, &span, keep),
            Event::SequenceStart(anchor, _) => {
                let node = self.sequence(&span, keep || anchor != 0)?;
                self.anchor(anchor, node)
            }
            Event::MappingStart(anchor, _) => {
                let node = self.mapping(&span, keep || anchor != 0, None)?;
                self.anchor(anchor, node)
            }
            _ => Err(Error::at(ErrorKind::Syntax, &span, "unexpected event")),
        }
    }

    fn built(&mut self, cost: u64) {
        self.stats.materialized = self.stats.materialized.saturating_add(cost);
    }

    fn anchor(&mut self, anchor: usize, node: Node) -> Result<Node> {
        if anchor == 0 {
            return Ok(node);
        }
        let value = node.value.clone().unwrap_or_default();
        self.built(node.cost);
        self.anchors.insert(
            anchor,
            Anchored {
                value,
                cost: node.cost,
            },
        );
        Ok(node)
    }

    fn alias(&mut self, id: usize, span: &Span, keep: bool) -> Result<Node> {
        let Some(anchored) = self.anchors.get(&id) else {
            return Err(Error::at(
                ErrorKind::Unsupported,
                span,
                "alias to an anchor whose node contains the alias itself",
            ));
        };
        let cost = anchored.cost;
        let aliased = self.stats.aliased.saturating_add(cost);
        let budget = self
            .limits
            .alias_allowance
            .saturating_add(self.limits.alias_ratio.saturating_mul(self.input_len));
        if aliased > budget {
            return Err(Error::at(
                ErrorKind::ExcessiveAliasing,
                span,
                format!(
                    "document contains excessive aliasing: aliases expand to more than \
                     {budget} units for a document of {} bytes",
                    self.input_len
                ),
            ));
        }
        self.stats.aliased = aliased;
        let value = keep.then(|| anchored.value.clone());
        if keep {
            self.built(cost);
        }
        Ok(Node { value, cost })
    }

    pub(crate) fn enter(&mut self, span: &Span) -> Result<()> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(Error::at(
                ErrorKind::TooDeep,
                span,
                format!(
                    "nesting too deep: more than {} levels of sequences and mappings",
                    self.limits.max_depth
                ),
            ));
        }
        Ok(())
    }

    pub(crate) fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn sequence(&mut self, span: &Span, keep: bool) -> Result<Node> {
        self.enter(span)?;
        let mut items = Vec::new();
        let mut cost = NODE_COST;
        loop {
            let (ev, span) = self.next_event()?;
            if matches!(ev, Event::SequenceEnd) {
                break;
            }
            let node = self.node(ev, span, keep)?;
            cost = cost.saturating_add(node.cost);
            if let Some(v) = node.value {
                items.push(v);
            }
        }
        self.leave();
        self.built(NODE_COST);
        Ok(Node {
            value: keep.then_some(Value::Array(items)),
            cost,
        })
    }

    /// A mapping (after its start event). With a `filter`, only the keys it accepts are
    /// built; merge keys are always applied.
    pub(crate) fn mapping(
        &mut self,
        span: &Span,
        keep: bool,
        filter: Option<KeyFilter<'_>>,
    ) -> Result<Node> {
        self.enter(span)?;
        let mut map = Map::new();
        let mut seen = HashSet::new();
        let mut cost = NODE_COST;
        loop {
            let (ev, key_span) = self.next_event()?;
            if matches!(ev, Event::MappingEnd) {
                break;
            }
            let merge = is_merge_key(&ev);
            let key = self.node(ev, key_span, true)?;
            cost = cost.saturating_add(key.cost);
            let (ev, value_span) = self.next_event()?;
            if merge {
                let node = self.node(ev, value_span, true)?;
                cost = cost.saturating_add(node.cost);
                let mut merged = Map::new();
                merge_into(&mut merged, node.value.unwrap_or_default(), &value_span)?;
                if self.strict {
                    for key in merged.keys() {
                        self.once(&mut seen, key, &value_span)?;
                    }
                }
                if keep {
                    map.extend(merged);
                }
                continue;
            }
            let key = key_string(key.value.unwrap_or_default(), &key_span)?;
            self.once(&mut seen, &key, &key_span)?;
            let wanted = keep && filter.is_none_or(|f| f(&key));
            let node = self.node(ev, value_span, wanted)?;
            cost = cost.saturating_add(node.cost);
            if let Some(v) = node.value {
                map.insert(key, v);
            }
        }
        self.leave();
        self.built(NODE_COST);
        Ok(Node {
            value: keep.then_some(Value::Object(map)),
            cost,
        })
    }
}

/// `<<` as a plain, untagged key (or tagged `!!merge`), as go-yaml's `isMerge`.
pub(crate) fn is_merge_key(ev: &Event<'_>) -> bool {
    match ev {
        Event::Scalar(text, ScalarStyle::Plain, _, None) => text == "<<",
        Event::Scalar(text, _, _, Some(tag)) => text == "<<" && core_tag(tag) == Some("merge"),
        _ => false,
    }
}

/// go-yaml v2's merge: a mapping, or a sequence of mappings where earlier ones win; applied
/// in document order, so a key written before the `<<` is overwritten and one after wins.
pub(crate) fn merge_into(map: &mut Map<String, Value>, merged: Value, span: &Span) -> Result<()> {
    let want_map = || {
        Error::at(
            ErrorKind::Unsupported,
            span,
            "map merge requires map or sequence of maps as the value",
        )
    };
    match merged {
        Value::Object(m) => map.extend(m),
        Value::Array(items) => {
            if !items.iter().all(Value::is_object) {
                return Err(want_map());
            }
            for item in items.into_iter().rev() {
                if let Value::Object(m) = item {
                    map.extend(m);
                }
            }
        }
        _ => return Err(want_map()),
    }
    Ok(())
}

/// A key as `sigs.k8s.io/yaml` turns it into a JSON object key.
pub(crate) fn key_string(key: Value, span: &Span) -> Result<String> {
    match key {
        Value::String(s) => Ok(s),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i.to_string())
            } else if n.is_f64() {
                Ok(go_float32_g(n.as_f64().unwrap_or_default()))
            } else {
                Err(Error::at(
                    ErrorKind::Unsupported,
                    span,
                    format!("unsupported map key {n} (an unsigned 64-bit integer)"),
                ))
            }
        }
        Value::Null => Err(Error::at(
            ErrorKind::Unsupported,
            span,
            "unsupported map key: null",
        )),
        Value::Array(_) | Value::Object(_) => Err(Error::at(
            ErrorKind::Unsupported,
            span,
            "invalid map key: a sequence or mapping",
        )),
    }
}

/// A scalar as text where a string is expected, as `sigs.k8s.io/yaml` coerces a number or
/// boolean into a Go string field (`version: 1.10` becomes `"1.1"`).
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) if n.is_f64() => Some(go_float32_g(n.as_f64().unwrap_or_default())),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 32)`: shortest float32 digits, exponent form when
/// the exponent is below -4 or at least 6 (at least two exponent digits).
fn go_float32_g(f: f64) -> String {
    #[allow(clippy::cast_possible_truncation)]
    let f = f as f32;
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let sci = format!("{f:e}");
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci;
    };
    let exp: i32 = exp.parse().unwrap_or_default();
    if (-4..6).contains(&exp) {
        return format!("{f}");
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

/// The core-schema name of a `!!name` tag.
fn core_tag(tag: &Tag) -> Option<&str> {
    tag.is_yaml_core_schema().then_some(tag.suffix.as_str())
}

/// A scalar's JSON value: plain scalars are resolved (YAML 1.1, go-yaml v2), quoted and
/// block scalars are strings, tags `!!str`/`!!int`/… force or check the type.
fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>, span: &Span) -> Result<Value> {
    let unsupported = |m: String| Error::at(ErrorKind::Unsupported, span, m);
    let to_json = |r: Resolved| -> Result<Value> {
        Ok(match r {
            Resolved::Null => Value::Null,
            Resolved::Bool(b) => Value::Bool(b),
            Resolved::Int(i) => Value::from(i),
            Resolved::Uint(u) => Value::from(u),
            Resolved::Float(f) => Value::Number(Number::from_f64(f).ok_or_else(|| {
                unsupported(format!("`{text}` has no JSON form (helm refuses it too)"))
            })?),
            Resolved::Str => Value::String(text.to_string()),
        })
    };
    let Some(tag) = tag else {
        return if style == ScalarStyle::Plain {
            to_json(resolve_plain(text))
        } else {
            Ok(Value::String(text.to_string()))
        };
    };
    let resolved = resolve_plain(text);
    let mismatch = |want: &str| {
        unsupported(format!(
            "cannot decode `{text}` as a !!{want} (it reads as {})",
            resolved.name()
        ))
    };
    match core_tag(tag) {
        Some("int") => match resolved {
            Resolved::Int(_) | Resolved::Uint(_) => to_json(resolved),
            _ => Err(mismatch("int")),
        },
        Some("float") => match resolved {
            Resolved::Float(_) => to_json(resolved),
            #[allow(clippy::cast_precision_loss)]
            Resolved::Int(i) => to_json(Resolved::Float(i as f64)),
            #[allow(clippy::cast_precision_loss)]
            Resolved::Uint(u) => to_json(Resolved::Float(u as f64)),
            _ => Err(mismatch("float")),
        },
        Some("bool") => match resolved {
            Resolved::Bool(_) => to_json(resolved),
            _ => Err(mismatch("bool")),
        },
        Some("null") => match resolved {
            Resolved::Null => to_json(resolved),
            _ => Err(mismatch("null")),
        },
        Some("binary") => {
            let compact: String = text.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|_| unsupported("!!binary value contains invalid base64 data".into()))?;
            Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        }
        // `!!str`, `!!timestamp`, and any other tag: the text.
        _ => Ok(Value::String(text.to_string())),
    }
}

/// A plain scalar's type under go-yaml v2's `resolve`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Resolved {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str,
}

impl Resolved {
    fn name(self) -> &'static str {
        match self {
            Resolved::Null => "null",
            Resolved::Bool(_) => "a bool",
            Resolved::Int(_) | Resolved::Uint(_) => "an int",
            Resolved::Float(_) => "a float",
            Resolved::Str => "a string",
        }
    }
}

/// go-yaml v2's `resolve` for an untagged plain scalar.
pub(crate) fn resolve_plain(s: &str) -> Resolved {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Resolved::Bool(true);
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Resolved::Bool(false);
        }
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        _ => {}
    }
    match s.as_bytes().first() {
        Some(b'.') => {
            if yaml_style_float(s)
                && let Ok(f) = s.parse::<f64>()
                && f.is_finite()
            {
                return Resolved::Float(f);
            }
            Resolved::Str
        }
        Some(b'0'..=b'9' | b'+' | b'-') => {
            let plain = s.replace('_', "");
            if let Some(i) = go_parse_int(&plain) {
                return Resolved::Int(i);
            }
            if let Some(u) = go_parse_uint(&plain) {
                return Resolved::Uint(u);
            }
            if yaml_style_float(&plain)
                && let Ok(f) = plain.parse::<f64>()
                && f.is_finite()
            {
                return Resolved::Float(f);
            }
            Resolved::Str
        }
        _ => Resolved::Str,
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go's `strconv.ParseUint(s, 0, 64)` digits part: base prefixes `0x`, `0o`, `0b`, and a
/// leading `0` meaning octal.
fn go_parse_base0(s: &str) -> Option<u64> {
    let (radix, digits) = if let Some(d) = s.strip_prefix("0x").or(s.strip_prefix("0X")) {
        (16, d)
    } else if let Some(d) = s.strip_prefix("0b").or(s.strip_prefix("0B")) {
        (2, d)
    } else if let Some(d) = s.strip_prefix("0o").or(s.strip_prefix("0O")) {
        (8, d)
    } else if s.len() > 1 && s.starts_with('0') {
        (8, &s[1..])
    } else {
        (10, s)
    };
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
fn go_parse_int(s: &str) -> Option<i64> {
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let magnitude = go_parse_base0(rest)?;
    if negative {
        0i64.checked_sub_unsigned(magnitude)
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Go's `strconv.ParseUint(s, 0, 64)` (no sign).
fn go_parse_uint(s: &str) -> Option<u64> {
    if s.starts_with(['+', '-']) {
        return None;
    }
    go_parse_base0(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plain_scalars_resolve_like_go_yaml_v2() {
        use Resolved::*;
        let table: &[(&str, Resolved)] = &[
            ("", Null),
            ("~", Null),
            ("null", Null),
            ("Null", Null),
            ("NULL", Null),
            ("nULL", Str),
            ("y", Bool(true)),
            ("Y", Bool(true)),
            ("yes", Bool(true)),
            ("Yes", Bool(true)),
            ("YES", Bool(true)),
            ("yEs", Str),
            ("on", Bool(true)),
            ("On", Bool(true)),
            ("ON", Bool(true)),
            ("true", Bool(true)),
            ("True", Bool(true)),
            ("TRUE", Bool(true)),
            ("n", Bool(false)),
            ("no", Bool(false)),
            ("off", Bool(false)),
            ("Off", Bool(false)),
            ("false", Bool(false)),
            ("FALSE", Bool(false)),
            ("0", Int(0)),
            ("-0", Int(0)),
            ("+5", Int(5)),
            ("0755", Int(493)),
            ("0o755", Int(493)),
            ("0x1F", Int(31)),
            ("0X1f", Int(31)),
            ("-0x1F", Int(-31)),
            ("0b101", Int(5)),
            ("-0b101", Int(-5)),
            ("1_000", Int(1000)),
            ("0x_1F", Int(31)),
            ("_1", Str),
            ("08", Float(8.0)),
            ("0755.5", Float(755.5)),
            ("9223372036854775807", Int(i64::MAX)),
            ("-9223372036854775808", Int(i64::MIN)),
            ("9223372036854775808", Uint(9_223_372_036_854_775_808)),
            ("18446744073709551616", Float(18_446_744_073_709_551_616.0)),
            ("1.10", Float(1.1)),
            ("1.", Float(1.0)),
            (".5", Float(0.5)),
            ("-.5", Float(-0.5)),
            ("1e3", Float(1000.0)),
            ("1E-2", Float(0.01)),
            ("1e400", Str),
            (".", Str),
            ("0x", Str),
            ("1.2.3", Str),
            ("12:30", Str),
            ("2001-12-14", Str),
            ("2001-12-14T21:59:43.10-05:00", Str),
            ("+", Str),
            ("-", Str),
            ("<<", Str),
            ("abc", Str),
            ("inf", Str),
            ("nan", Str),
        ];
        for (input, want) in table {
            assert_eq!(resolve_plain(input), *want, "{input:?}");
        }
        assert!(matches!(resolve_plain(".inf"), Float(f) if f == f64::INFINITY));
        assert!(matches!(resolve_plain("-.Inf"), Float(f) if f == f64::NEG_INFINITY));
        assert!(matches!(resolve_plain(".NaN"), Float(f) if f.is_nan()));
    }

    #[test]
    fn float_keys_format_like_go() {
        let table: &[(f64, &str)] = &[
            (1.0, "1"),
            (1.5, "1.5"),
            (1.1, "1.1"),
            (std::f64::consts::PI, "3.1415927"),
            (123_456.0, "123456"),
            (1_234_567.0, "1.234567e+06"),
            (1e21, "1e+21"),
            (0.0001, "0.0001"),
            (0.000_01, "1e-05"),
            (-2.5, "-2.5"),
            (0.0, "0"),
        ];
        for (f, want) in table {
            assert_eq!(go_float32_g(*f), *want, "{f}");
        }
    }

    #[test]
    fn documents_compose_to_json() {
        let v = |s: &str| from_str_value(s).unwrap();
        assert_eq!(
            v("a: yes\nb: 0755\nc: '0755'\nd: \"yes\"\ne:\n"),
            json!({"a": true, "b": 493, "c": "0755", "d": "yes", "e": null})
        );
        assert_eq!(
            v("1: a\ntrue: b\n1.5: c\n~x: d\n"),
            json!({"1": "a", "true": "b", "1.5": "c", "~x": "d"})
        );
        assert_eq!(v("a: 1\na: 2\n"), json!({"a": 2}));
        assert_eq!(
            v("b: &b {x: 1, z: 2}\nc:\n  <<: *b\n  z: 3\n"),
            json!({"b": {"x": 1, "z": 2}, "c": {"x": 1, "z": 3}})
        );
        assert_eq!(
            v("c:\n  z: 3\n  <<: {x: 1, z: 2}\n"),
            json!({"c": {"x": 1, "z": 2}})
        );
        assert_eq!(v("y: 1\nn: 2\n"), json!({"true": 1, "false": 2}));
        assert_eq!(
            v("c:\n  <<: [{x: 1}, {x: 2, z: 3}]\n"),
            json!({"c": {"x": 1, "z": 3}})
        );
        assert_eq!(v("c:\n  '<<': {x: 1}\n"), json!({"c": {"<<": {"x": 1}}}));
        assert_eq!(
            v("a: !!str 0755\nb: !!float 1\nc: !!binary aGk=\nd: !foo 12\ne: |\n  yes\n"),
            json!({"a": "0755", "b": 1.0, "c": "hi", "d": "12", "e": "yes\n"})
        );
        assert_eq!(
            v("a: &x [1, 2]\nb: *x\n"),
            json!({"a": [1, 2], "b": [1, 2]})
        );
        assert_eq!(v(""), Value::Null);
        assert_eq!(v("a: 1\n---\nb: 2\n"), json!({"a": 1}));
        assert_eq!(
            documents("a: 1\n---\n---\nb: 2\n").unwrap(),
            vec![json!({"a": 1}), Value::Null, json!({"b": 2})]
        );
    }

    #[test]
    fn refusals_name_the_rule_and_the_position() {
        let table: &[(&str, ErrorKind, &str)] = &[
            ("a: .inf\n", ErrorKind::Unsupported, "no JSON form"),
            ("? [1]\n: a\n", ErrorKind::Unsupported, "invalid map key"),
            ("~: a\n", ErrorKind::Unsupported, "null"),
            ("a:\n  <<: 1\n", ErrorKind::Unsupported, "map merge"),
            ("a: !!int abc\n", ErrorKind::Unsupported, "!!int"),
            ("a: [1\n", ErrorKind::Syntax, ""),
            ("# \u{1}\na: 1\n", ErrorKind::Syntax, "control characters"),
            ("a: b\u{7f}\n", ErrorKind::Syntax, "control characters"),
            ("a: *nope\n", ErrorKind::Syntax, "anchor"),
        ];
        for (input, kind, text) in table {
            let err = from_str_value(input).unwrap_err();
            assert_eq!(err.kind, *kind, "{input:?}: {err}");
            assert!(err.to_string().contains(text), "{input:?}: {err}");
            assert!(err.line.is_some(), "{input:?}: {err}");
        }
        let err = from_str_value("x: 1\n# \u{1}\n").unwrap_err();
        assert_eq!((err.line, err.column), (Some(2), Some(3)));
    }

    /// `levels` levels of aliases, each `fan` times the one below: `fan^levels` nodes.
    fn laughs(levels: usize, fan: usize) -> String {
        let mut s = String::from("l0: &l0 [x]\n");
        for i in 1..=levels {
            let refs = vec![format!("*l{}", i - 1); fan].join(", ");
            s.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
        }
        s
    }

    #[test]
    fn alias_expansion_is_bounded_by_the_input_size() {
        let limits = Limits::default();
        for (levels, fan) in [(9, 10), (30, 2), (4, 1000)] {
            let bomb = laughs(levels, fan);
            let (result, stats) = from_str_value_with(&bomb, limits);
            let err = result.unwrap_err();
            assert_eq!(err.kind, ErrorKind::ExcessiveAliasing, "{err}");
            assert!(err.to_string().contains("excessive aliasing"), "{err}");
            let bound = limits.alias_allowance + limits.alias_ratio * bomb.len() as u64;
            // What was built: the document and the alias budget, each at most twice (an
            // anchored node is also kept for its aliases).
            assert!(stats.aliased <= bound, "{stats:?}");
            assert!(
                stats.materialized <= 2 * bound + 4 * NODE_COST * bomb.len() as u64,
                "{stats:?} for {} bytes",
                bomb.len()
            );
        }
        // Ordinary anchors are fine.
        let ok = laughs(3, 5);
        assert!(from_str_value(&ok).is_ok());
    }

    #[test]
    fn nesting_is_bounded() {
        for deep in [
            "[".repeat(100_000),
            "{a: ".repeat(100_000),
            "- ".repeat(5000),
        ] {
            let err = from_str_value(&deep).unwrap_err();
            assert_eq!(err.kind, ErrorKind::TooDeep, "{err}");
            assert!(err.to_string().contains("nesting too deep"), "{err}");
        }
        let fine = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        assert!(from_str_value(&fine).is_ok());
    }
}
