//! Which Components reference which Secrets and ConfigMaps, so that a change of one
//! re-reconciles the Components that use it (credential rotation, a CA bundle fixed, a
//! missing Secret created, a `valuesFrom` source edited).
//!
//! The handler updates the index on every operation that parses a Component's configuration
//! and forgets a Component once it is deleted; the controller's Secret watch asks
//! [`SecretIndex::components_for`].

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use componentkit::crd::Component;
use kube::ResourceExt;

use crate::config::HelmConfig;
use crate::credentials::CredentialResolver;

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

/// The kinds of referenced object whose changes are watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watched {
    /// Credentials, CA bundles, cosign keys, `valuesFrom` Secrets.
    Secret,
    /// `valuesFrom` ConfigMaps.
    ConfigMap,
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

    /// The Components to re-reconcile when the `kind` object `namespace/name` changed.
    /// Components not yet seen by this process (e.g. `Ready` ones after a restart) are
    /// indexed from `components` (the controller's store) first.
    pub fn changed(
        &self,
        kind: Watched,
        resolver: &CredentialResolver,
        components: &[Arc<Component>],
        namespace: &str,
        name: &str,
    ) -> Vec<ObjectKey> {
        self.index_unseen(resolver, components);
        match kind {
            Watched::Secret => self.components_for(namespace, name),
            Watched::ConfigMap => self.components_for_config_map(namespace, name),
        }
    }

    /// Indexes the helm Components this process has not seen yet.
    fn index_unseen(&self, resolver: &CredentialResolver, components: &[Arc<Component>]) {
        for c in components {
            if c.spec.handler != componentkit::names::HELM_HANDLER {
                continue;
            }
            let ns = c.namespace().unwrap_or_default();
            let key = ObjectKey::new(ns.clone(), c.name_any());
            if self.contains(&key) {
                continue;
            }
            let empty = serde_json::Value::Object(Default::default());
            let objects = match HelmConfig::parse(c.spec.config.as_ref().unwrap_or(&empty), &ns) {
                Ok(config) => super::referenced_objects(resolver, &ns, &config),
                Err(_) => Default::default(),
            };
            self.set(key, objects.secrets, objects.config_maps);
        }
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

    fn component(ns: &str, name: &str, handler: &str, config: serde_json::Value) -> Arc<Component> {
        Arc::new(componentkit::memory::component(ns, name, handler, config))
    }

    #[test]
    fn secret_changes_map_to_the_components_that_reference_them() {
        let resolver = CredentialResolver::new("deployment-system");
        let index = SecretIndex::new();
        let source = |secret: serde_json::Value| {
            serde_json::json!({
                "releaseName": "web",
                "source": {"type": "oci", "chart": "oci://r.example/c/web:1.0.0",
                           "authentication": {"method": "registry", "secretRef": secret}}
            })
        };
        let components = vec![
            component(
                "a",
                "web",
                "helm",
                source(serde_json::json!({"name": "creds"})),
            ),
            component(
                "b",
                "db",
                "helm",
                source(serde_json::json!({"name": "creds", "namespace": "deployment-system"})),
            ),
            component(
                "c",
                "other",
                "kustomize",
                source(serde_json::json!({"name": "creds"})),
            ),
            component("d", "broken", "helm", serde_json::json!({"releaseName": 1})),
        ];
        let hits = index.changed(
            Watched::Secret,
            &resolver,
            &components,
            "deployment-system",
            "creds",
        );
        assert_eq!(
            hits,
            vec![ObjectKey::new("a", "web"), ObjectKey::new("b", "db")]
        );
        let hits = index.changed(Watched::Secret, &resolver, &components, "a", "creds");
        assert_eq!(hits, vec![ObjectKey::new("a", "web")]);
        assert!(
            index
                .changed(Watched::Secret, &resolver, &components, "c", "creds")
                .is_empty()
        );
        // Indexed once: helm Components only, the broken one with no Secrets.
        assert_eq!(index.len(), 3);
    }

    #[test]
    fn config_map_and_values_secret_changes_map_to_their_components() {
        let resolver = CredentialResolver::new("deployment-system");
        let index = SecretIndex::new();
        let config = serde_json::json!({
            "releaseName": "web",
            "valuesFrom": [{"kind": "ConfigMap", "name": "env"}, {"kind": "Secret", "name": "vals"}],
            "source": {"type": "oci", "chart": "oci://r.example/c/web:1.0.0"}
        });
        let components = vec![
            component("a", "web", "helm", config.clone()),
            component("b", "web", "kustomize", config),
        ];
        let web = vec![ObjectKey::new("a", "web")];
        assert_eq!(
            index.changed(Watched::ConfigMap, &resolver, &components, "a", "env"),
            web
        );
        assert_eq!(
            index.changed(Watched::Secret, &resolver, &components, "a", "vals"),
            web
        );
        // Values sources live in the Component's namespace only.
        assert!(
            index
                .changed(
                    Watched::ConfigMap,
                    &resolver,
                    &components,
                    "deployment-system",
                    "env"
                )
                .is_empty()
        );
        assert!(
            index
                .changed(Watched::ConfigMap, &resolver, &components, "a", "vals")
                .is_empty()
        );
    }
}
