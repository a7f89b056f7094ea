//! Where ConfigMaps (sources of `valuesFrom`) are read from: the Kubernetes API
//! ([`KubeConfigMapStore`], the controller) or YAML files ([`FileConfigMapStore`], the
//! offline CLI) — the same pair as [`crate::credentials::SecretStore`] for Secrets.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use k8s_openapi::api::core::v1::ConfigMap;

use crate::error::Error;

/// A ConfigMap's `data` (key → text). `binaryData` is not read, as in Flux.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigMapData {
    pub data: BTreeMap<String, String>,
}

impl ConfigMapData {
    pub fn from_config_map(config_map: &ConfigMap) -> Self {
        ConfigMapData {
            data: config_map.data.clone().unwrap_or_default(),
        }
    }

    /// Adds a key (builder style).
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.data.insert(key.to_string(), value.to_string());
        self
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.data.get(key).map(String::as_str)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.data.keys().map(String::as_str)
    }
}

/// Where ConfigMaps are read from.
#[async_trait]
pub trait ConfigMapStore: Send + Sync {
    /// The ConfigMap `namespace/name`, or `None` when it does not exist.
    async fn get(&self, namespace: &str, name: &str) -> Result<Option<ConfigMapData>, Error>;
}

/// ConfigMaps from the Kubernetes API. A 404 is `Ok(None)`.
#[derive(Clone)]
pub struct KubeConfigMapStore {
    client: kube::Client,
}

impl KubeConfigMapStore {
    pub fn new(client: kube::Client) -> Self {
        KubeConfigMapStore { client }
    }
}

impl fmt::Debug for KubeConfigMapStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KubeConfigMapStore")
    }
}

#[async_trait]
impl ConfigMapStore for KubeConfigMapStore {
    async fn get(&self, namespace: &str, name: &str) -> Result<Option<ConfigMapData>, Error> {
        let api: kube::Api<ConfigMap> = kube::Api::namespaced(self.client.clone(), namespace);
        match api.get_opt(name).await {
            Ok(cm) => Ok(cm.as_ref().map(ConfigMapData::from_config_map)),
            Err(e) => Err(Error::kube(
                format!("reading ConfigMap `{namespace}/{name}`"),
                e,
            )),
        }
    }
}

/// ConfigMaps held in memory, typically loaded from YAML files (see `crate::manifests`).
#[derive(Debug, Clone, Default)]
pub struct FileConfigMapStore {
    config_maps: BTreeMap<(String, String), ConfigMapData>,
}

impl FileConfigMapStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, namespace: &str, name: &str, data: ConfigMapData) {
        self.config_maps
            .insert((namespace.to_string(), name.to_string()), data);
    }

    /// Adds a ConfigMap object; `default_namespace` applies when it has none.
    pub fn insert_config_map(&mut self, config_map: &ConfigMap, default_namespace: &str) {
        let namespace = config_map
            .metadata
            .namespace
            .as_deref()
            .unwrap_or(default_namespace);
        let name = config_map.metadata.name.as_deref().unwrap_or_default();
        self.insert(namespace, name, ConfigMapData::from_config_map(config_map));
    }

    pub fn contains(&self, namespace: &str, name: &str) -> bool {
        self.config_maps
            .contains_key(&(namespace.to_string(), name.to_string()))
    }

    pub fn len(&self) -> usize {
        self.config_maps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.config_maps.is_empty()
    }
}

#[async_trait]
impl ConfigMapStore for FileConfigMapStore {
    async fn get(&self, namespace: &str, name: &str) -> Result<Option<ConfigMapData>, Error> {
        Ok(self
            .config_maps
            .get(&(namespace.to_string(), name.to_string()))
            .cloned())
    }
}
