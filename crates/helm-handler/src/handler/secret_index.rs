//! Which Components reference which Secrets and ConfigMaps, so that a change of one
//! re-reconciles the Components that use it (credential rotation, a CA bundle fixed, a
//! missing Secret created, a `valuesFrom` source edited).
//!
//! The handler updates the index on every operation that parses a Component's configuration
//! and forgets a Component once it is deleted; the controller's Secret watch asks
//! [`SecretIndex::components_for`].

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

/// A namespaced object name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What one Component's configuration references.
#[derive(Debug, Default)]
struct Referenced {
    /// Every candidate namespace of a credential Secret, and `valuesFrom` Secrets.
    secrets: BTreeSet<ObjectKey>,
    /// `valuesFrom` ConfigMaps.
    config_maps: BTreeSet<ObjectKey>,
}

/// Component → the Secrets and ConfigMaps its configuration references.
#[derive(Debug, Default)]
pub struct SecretIndex {
    by_component: Mutex<HashMap<ObjectKey, Referenced>>,
}

impl SecretIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the Secrets and ConfigMaps (namespace, name) a Component references,
    /// replacing earlier ones.
    pub fn set(
        &self,
        component: ObjectKey,
        secrets: impl IntoIterator<Item = (String, String)>,
        config_maps: impl IntoIterator<Item = (String, String)>,
    ) {
        let keys = |pairs: &mut dyn Iterator<Item = (String, String)>| -> BTreeSet<ObjectKey> {
            pairs.map(|(ns, name)| ObjectKey::new(ns, name)).collect()
        };
        let referenced = Referenced {
            secrets: keys(&mut secrets.into_iter()),
            config_maps: keys(&mut config_maps.into_iter()),
        };
        self.lock().insert(component, referenced);
    }

    /// True when the Component has been indexed (even with no Secrets).
    pub fn contains(&self, component: &ObjectKey) -> bool {
        self.lock().contains_key(component)
    }

    /// Forgets a Component (after its deletion).
    pub fn remove(&self, component: &ObjectKey) {
        self.lock().remove(component);
    }

    /// The Components that reference the Secret `namespace/name`, sorted.
    pub fn components_for(&self, namespace: &str, name: &str) -> Vec<ObjectKey> {
        let secret = ObjectKey::new(namespace, name);
        self.matching(|r| r.secrets.contains(&secret))
    }

    /// The Components that reference the ConfigMap `namespace/name`, sorted.
    pub fn components_for_config_map(&self, namespace: &str, name: &str) -> Vec<ObjectKey> {
        let config_map = ObjectKey::new(namespace, name);
        self.matching(|r| r.config_maps.contains(&config_map))
    }

    fn matching(&self, wanted: impl Fn(&Referenced) -> bool) -> Vec<ObjectKey> {
        let mut out: Vec<ObjectKey> = self
            .lock()
            .iter()
            .filter(|(_, referenced)| wanted(referenced))
            .map(|(component, _)| component.clone())
            .collect();
        out.sort();
        out
    }

    /// Number of Components indexed.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectKey, Referenced>> {
        // A panic while holding this lock cannot leave the map half-updated; keep going.
        self.by_component
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(ns: &str, name: &str) -> (String, String) {
        (ns.to_string(), name.to_string())
    }

    #[test]
    fn maps_secrets_to_components() {
        let idx = SecretIndex::new();
        idx.set(
            ObjectKey::new("a", "web"),
            [s("a", "creds"), s("deployment-system", "creds")],
            [s("a", "web-env")],
        );
        idx.set(
            ObjectKey::new("b", "db"),
            [s("deployment-system", "creds")],
            [],
        );
        assert_eq!(
            idx.components_for_config_map("a", "web-env"),
            vec![ObjectKey::new("a", "web")]
        );
        assert!(
            idx.components_for("a", "web-env").is_empty(),
            "kinds are apart"
        );
        assert!(idx.components_for_config_map("a", "creds").is_empty());
        assert_eq!(
            idx.components_for("deployment-system", "creds"),
            vec![ObjectKey::new("a", "web"), ObjectKey::new("b", "db")]
        );
        assert_eq!(
            idx.components_for("a", "creds"),
            vec![ObjectKey::new("a", "web")]
        );
        assert!(idx.components_for("b", "creds").is_empty());
        idx.set(ObjectKey::new("a", "web"), [], []);
        assert!(idx.contains(&ObjectKey::new("a", "web")));
        assert!(idx.components_for("a", "creds").is_empty());
        assert_eq!(idx.len(), 2);
        idx.remove(&ObjectKey::new("a", "web"));
        idx.remove(&ObjectKey::new("b", "db"));
        assert!(idx.is_empty());
    }
}
