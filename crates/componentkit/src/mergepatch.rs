//! JSON merge patch (RFC 7386): computing the patch between two documents. Applying one is
//! `json_patch::merge` (the crate kube itself uses); no crate computes the difference.
//!
//! The engine writes status as the merge-patch *difference* between the status it read and
//! the status it wants, so fields it does not touch (notably `handlerStatus`) are never sent,
//! and never lost.

use serde_json::{Map, Value};

/// The merge patch that turns `old` into `new`, or `None` when they are equal.
/// Keys absent (or `null`) in `new` but present in `old` become `null` (removal).
pub fn diff(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut out = Map::new();
            for (k, nv) in n {
                match o.get(k) {
                    Some(ov) if nv.is_null() => {
                        if !ov.is_null() {
                            out.insert(k.clone(), Value::Null);
                        }
                    }
                    Some(ov) => {
                        if let Some(d) = diff(ov, nv) {
                            out.insert(k.clone(), d);
                        }
                    }
                    None => {
                        if !nv.is_null() {
                            out.insert(k.clone(), nv.clone());
                        }
                    }
                }
            }
            for (k, ov) in o {
                if !n.contains_key(k) && !ov.is_null() {
                    out.insert(k.clone(), Value::Null);
                }
            }
            if out.is_empty() {
                None
            } else {
                Some(Value::Object(out))
            }
        }
        _ if old == new => None,
        _ => Some(new.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_then_apply_roundtrips() {
        let cases = [
            (
                json!({"a": 1, "b": {"c": 2, "d": 3}}),
                json!({"a": 1, "b": {"c": 5}}),
            ),
            (json!({"a": [1, 2]}), json!({"a": [2]})),
            (json!({}), json!({"x": {"y": "z"}})),
            (json!({"x": {"y": "z"}}), json!({})),
            (json!({"s": "v"}), json!({"s": {"o": 1}})),
        ];
        for (old, new) in cases {
            let mut doc = old.clone();
            if let Some(p) = diff(&old, &new) {
                json_patch::merge(&mut doc, &p);
            }
            assert_eq!(doc, new, "old={old} new={new}");
        }
    }

    #[test]
    fn equal_documents_have_no_diff() {
        let v = json!({"a": {"b": [1, {"c": null}]}});
        assert_eq!(diff(&v, &v), None);
    }

    #[test]
    fn untouched_keys_are_not_sent() {
        let old = json!({"phase": "Deploying", "handlerStatus": {"digest": "sha256:1"}});
        let new = json!({"phase": "Ready", "handlerStatus": {"digest": "sha256:1"}});
        assert_eq!(diff(&old, &new), Some(json!({"phase": "Ready"})));
    }
}
