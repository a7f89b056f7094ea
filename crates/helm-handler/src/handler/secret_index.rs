//! Which Components reference which Secrets, so that a Secret change re-reconciles the
//! Components that use it (credential rotation, a CA bundle fixed, a missing Secret created).
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

/// Component → the Secrets its configuration references (every candidate namespace).
#[derive(Debug, Default)]
pub struct SecretIndex {
    by_component: Mutex<HashMap<ObjectKey, BTreeSet<ObjectKey>>>,
}

impl SecretIndex {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the Secrets (namespace, name) a Component references, replacing earlier ones.
    pub fn set(&self, component: ObjectKey, secrets: impl IntoIterator<Item = (String, String)>) {
        let secrets: BTreeSet<ObjectKey> = secrets
            .into_iter()
            .map(|(ns, name)| ObjectKey::new(ns, name))
            .collect();
        self.lock().insert(component, secrets);
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
        let mut out: Vec<ObjectKey> = self
            .lock()
            .iter()
            .filter(|(_, secrets)| secrets.contains(&secret))
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ObjectKey, BTreeSet<ObjectKey>>> {
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
        );
        idx.set(ObjectKey::new("b", "db"), [s("deployment-system", "creds")]);
        assert_eq!(
            idx.components_for("deployment-system", "creds"),
            vec![ObjectKey::new("a", "web"), ObjectKey::new("b", "db")]
        );
        assert_eq!(
            idx.components_for("a", "creds"),
            vec![ObjectKey::new("a", "web")]
        );
        assert!(idx.components_for("b", "creds").is_empty());
        idx.set(ObjectKey::new("a", "web"), []);
        assert!(idx.contains(&ObjectKey::new("a", "web")));
        assert!(idx.components_for("a", "creds").is_empty());
        assert_eq!(idx.len(), 2);
        idx.remove(&ObjectKey::new("a", "web"));
        idx.remove(&ObjectKey::new("b", "db"));
        assert!(idx.is_empty());
    }
}
