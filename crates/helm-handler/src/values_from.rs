//! Resolving `valuesFrom`: reads the referenced Secrets and ConfigMaps (the Component's
//! namespace only; the parser has refused any other) through the same stores the controller
//! and the offline CLI use, and composes the values helm gets ([`crate::values`]).
//!
//! Each object is read once per resolution, so two entries naming the same object see the
//! same version of it (as in Flux). A missing object or key fails with `not-found` naming it,
//! unless the entry is `optional`; content that cannot be read fails with `config` naming
//! the key. Nothing read from a Secret is logged or put in a message.

use std::collections::BTreeMap;

use crate::config::{HelmConfig, ValuesReference};
use crate::config_maps::ConfigMapStore;
use crate::credentials::SecretStore;
use crate::error::Error;
use crate::values::{
    Fragment, MergedValues, ValuesKind, compose, read_document, read_single_value,
};

/// The objects `valuesFrom` reads, by kind: `(namespace, name)` pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValuesObjects {
    pub secrets: Vec<(String, String)>,
    pub config_maps: Vec<(String, String)>,
}

/// The Secrets and ConfigMaps the entries read (for the watches that re-reconcile a
/// Component when one of them changes).
pub fn referenced_objects(namespace: &str, refs: &[ValuesReference]) -> ValuesObjects {
    let mut out = ValuesObjects::default();
    for r in refs {
        let list = match r.kind {
            ValuesKind::Secret => &mut out.secrets,
            ValuesKind::ConfigMap => &mut out.config_maps,
        };
        let key = (namespace.to_string(), r.name.clone());
        if !list.contains(&key) {
            list.push(key);
        }
    }
    out
}

/// A fetched object's keys: bytes for a Secret, text for a ConfigMap.
enum Fetched {
    Missing,
    Secret(crate::credentials::SecretData),
    ConfigMap(crate::config_maps::ConfigMapData),
}

impl Fetched {
    fn get(&self, key: &str) -> Option<&[u8]> {
        match self {
            Fetched::Missing => None,
            Fetched::Secret(s) => s.get(key),
            Fetched::ConfigMap(c) => c.get(key).map(str::as_bytes),
        }
    }

    fn keys(&self) -> Vec<String> {
        match self {
            Fetched::Missing => Vec::new(),
            Fetched::Secret(s) => s.keys().map(str::to_string).collect(),
            Fetched::ConfigMap(c) => c.keys().map(str::to_string).collect(),
        }
    }
}

/// `valuesFrom` (in order) then `values` on top: the values helm gets.
pub async fn resolve(
    secrets: &dyn SecretStore,
    config_maps: &dyn ConfigMapStore,
    namespace: &str,
    config: &HelmConfig,
) -> Result<MergedValues, Error> {
    let mut fetched: BTreeMap<(ValuesKind, String), Fetched> = BTreeMap::new();
    let mut fragments = Vec::with_capacity(config.values_from.len());
    for (index, r) in config.values_from.iter().enumerate() {
        let field = format!("valuesFrom[{index}]");
        let cache_key = (r.kind, r.name.clone());
        if !fetched.contains_key(&cache_key) {
            let object = match r.kind {
                ValuesKind::Secret => secrets
                    .get(namespace, &r.name)
                    .await?
                    .map_or(Fetched::Missing, Fetched::Secret),
                ValuesKind::ConfigMap => config_maps
                    .get(namespace, &r.name)
                    .await?
                    .map_or(Fetched::Missing, Fetched::ConfigMap),
            };
            fetched.insert(cache_key.clone(), object);
        }
        let Some(object) = fetched.get(&cache_key) else {
            continue;
        };
        let not_found = |key: Option<String>| Error::ValuesSourceNotFound {
            field: field.clone(),
            kind: r.kind,
            namespace: namespace.to_string(),
            name: r.name.clone(),
            keys: if key.is_some() {
                object.keys()
            } else {
                Vec::new()
            },
            key,
        };
        if matches!(object, Fetched::Missing) {
            if r.optional {
                tracing::debug!(kind = %r.kind, object = %format!("{namespace}/{}", r.name), "optional values source not found; skipped");
                continue;
            }
            return Err(not_found(None));
        }
        let Some(bytes) = object.get(&r.values_key) else {
            if r.optional {
                tracing::debug!(kind = %r.kind, object = %format!("{namespace}/{}", r.name), key = %r.values_key, "optional values key not found; skipped");
                continue;
            }
            return Err(not_found(Some(r.values_key.clone())));
        };
        let format_error = |message: String| Error::ValuesSourceFormat {
            field: field.clone(),
            kind: r.kind,
            namespace: namespace.to_string(),
            name: r.name.clone(),
            key: r.values_key.clone(),
            message,
        };
        let fragment = match &r.target_path {
            Some(path) => {
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| format_error("not UTF-8 text".into()))?;
                let value = read_single_value(text).map_err(format_error)?;
                Fragment::AtPath(path.clone(), value)
            }
            None => {
                Fragment::Document(read_document(bytes).map_err(|e| format_error(e.to_string()))?)
            }
        };
        tracing::debug!(kind = %r.kind, object = %format!("{namespace}/{}", r.name), key = %r.values_key, target_path = r.target_path.as_ref().map(|p| p.as_str()), "values read");
        fragments.push(fragment);
    }
    Ok(compose(fragments, &config.values))
}
