//! Production implementations of the handler's cluster-facing traits over kube-rs:
//! [`KubeNamespaces`] (namespace create / emptiness check / delete for `manageNamespace`;
//! create and delete as the release's identity, the reads as the controller).

use async_trait::async_trait;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, ObjectMeta, PostParams};
use kube::discovery::{ApiResource, Discovery, Scope, verbs};
use kube::{Client, ResourceExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Failure, NamespaceContents, Namespaces};
use crate::error::Error;
use crate::identity::Identity;
use crate::impersonation::KubeClients;

/// Label put on namespaces the handler creates.
pub const MANAGED_BY_LABEL: (&str, &str) = ("app.kubernetes.io/managed-by", "helm-handler");

/// API groups never listed when checking whether a namespace is empty: derived views
/// (metrics) and events, which are not content.
const IGNORED_GROUPS: &[&str] = &["metrics.k8s.io", "events.k8s.io"];

/// At most this many objects of each type are looked at.
const LIST_LIMIT: u32 = 50;

/// Namespaces through the Kubernetes API.
#[derive(Clone)]
pub struct KubeNamespaces {
    /// The controller's own client: reads (existence, emptiness).
    client: Client,
    /// Creating and deleting act as the release's identity.
    clients: Arc<KubeClients>,
    /// The namespaced, listable resource types, from the last discovery.
    kinds: Arc<tokio::sync::Mutex<Option<(Instant, Kinds)>>>,
}

/// Namespaced, listable resource types and their names in messages.
type Kinds = Arc<Vec<(ApiResource, String)>>;

/// How long one discovery serves the emptiness checks (they run every few seconds while a
/// namespace drains; a new type within this window is seen at the next refresh).
const DISCOVERY_TTL: Duration = Duration::from_secs(60);

impl KubeNamespaces {
    pub fn new(clients: Arc<KubeClients>) -> Self {
        Self {
            client: clients.own(),
            clients,
            kinds: Arc::new(tokio::sync::Mutex::new(None)),
        }
    }

    /// Namespaced, listable resource types, with the name used in messages. Aggregated
    /// discovery (two requests) reports an unavailable APIService as stale instead of failing
    /// as a whole, as the namespace controller tolerates it: the types it cannot serve are
    /// left out (their lists would fail with 503 anyway).
    async fn namespaced_kinds(&self) -> Result<Kinds, Failure> {
        let mut cached = self.kinds.lock().await;
        if let Some((at, kinds)) = cached.as_ref()
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(kinds.clone());
        }
        let discovery = Discovery::new(self.client.clone())
            .exclude(IGNORED_GROUPS)
            .run_aggregated()
            .await
            .map_err(|e| kube_failure("API discovery".to_string(), e))?;
        let mut kinds = Vec::new();
        for group in discovery.groups() {
            for (ar, caps) in group.recommended_resources() {
                if caps.scope != Scope::Namespaced || !caps.supports_operation(verbs::LIST) {
                    continue;
                }
                let kind = if ar.group.is_empty() {
                    ar.kind.clone()
                } else {
                    format!("{}.{}", ar.kind, ar.group)
                };
                kinds.push((ar, kind));
            }
        }
        let kinds = Arc::new(kinds);
        *cached = Some((Instant::now(), kinds.clone()));
        Ok(kinds)
    }
}

fn kube_failure(context: String, err: kube::Error) -> Failure {
    Failure::from(Error::kube(context, err))
}

/// One object found in a namespace, reduced to what decides its emptiness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundObject {
    /// `Kind` or `Kind.group`.
    pub kind: String,
    pub name: String,
    pub terminating: bool,
    pub owned: bool,
    /// `type` of a Secret.
    pub secret_type: Option<String>,
}

/// True for objects Kubernetes puts in every namespace by itself.
pub fn is_default_object(o: &FoundObject) -> bool {
    match o.kind.as_str() {
        "ConfigMap" => o.name == "kube-root-ca.crt",
        "ServiceAccount" => o.name == "default",
        // Token Secrets of the default ServiceAccount (clusters before 1.24).
        "Secret" => {
            o.secret_type.as_deref() == Some("kubernetes.io/service-account-token")
                && o.name.starts_with("default-token-")
        }
        "Event" => true,
        _ => false,
    }
}

/// Decides what the objects of a namespace mean for deleting it.
///
/// Default objects do not count. Objects that are terminating, owned by another object
/// (garbage collection follows the owner) or `Endpoints` (removed with their Service) are on
/// their way out. Anything else belongs to someone: the namespace is in use.
pub fn classify(objects: &[FoundObject]) -> NamespaceContents {
    let relevant: Vec<&FoundObject> = objects.iter().filter(|o| !is_default_object(o)).collect();
    let describe = |list: &[&FoundObject]| {
        let mut names: Vec<String> = list
            .iter()
            .take(5)
            .map(|o| format!("{} {}", o.kind, o.name))
            .collect();
        if list.len() > 5 {
            names.push(format!("and {} more", list.len() - 5));
        }
        names.join(", ")
    };
    let in_use: Vec<&FoundObject> = relevant
        .iter()
        .copied()
        .filter(|o| !o.terminating && !o.owned && o.kind != "Endpoints")
        .collect();
    if !in_use.is_empty() {
        return NamespaceContents::InUse(describe(&in_use));
    }
    if !relevant.is_empty() {
        return NamespaceContents::Draining(describe(&relevant));
    }
    NamespaceContents::Empty
}

#[async_trait]
impl Namespaces for KubeNamespaces {
    async fn exists(&self, name: &str) -> Result<bool, Failure> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        api.get_opt(name)
            .await
            .map(|ns| ns.is_some())
            .map_err(|e| kube_failure(format!("get namespace {name}"), e))
    }

    async fn create(&self, identity: &Identity, name: &str) -> Result<(), Failure> {
        let api: Api<Namespace> = Api::all(self.clients.client(identity)?);
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                labels: Some(
                    [(
                        MANAGED_BY_LABEL.0.to_string(),
                        MANAGED_BY_LABEL.1.to_string(),
                    )]
                    .into_iter()
                    .collect(),
                ),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        match api.create(&PostParams::default(), &ns).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(e) => Err(kube_failure(format!("create namespace {name}"), e)),
        }
    }

    async fn contents(&self, name: &str) -> Result<NamespaceContents, Failure> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        match api.get_opt(name).await {
            Ok(None) => return Ok(NamespaceContents::Gone),
            Ok(Some(ns)) if ns.metadata.deletion_timestamp.is_some() => {
                return Ok(NamespaceContents::Gone);
            }
            Ok(Some(_)) => {}
            Err(e) => return Err(kube_failure(format!("get namespace {name}"), e)),
        }
        let kinds = self.namespaced_kinds().await?;
        let mut found = Vec::new();
        for (ar, kind) in kinds.iter() {
            let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), name, ar);
            let list = match api.list(&ListParams::default().limit(LIST_LIMIT)).await {
                Ok(list) => list,
                // Types that cannot be listed right now (aggregated API down, gone).
                Err(kube::Error::Api(s)) if matches!(s.code, 404 | 405 | 503) => continue,
                Err(kube::Error::Api(s)) if s.code == 403 => {
                    // Cannot see everything: never delete what we cannot inspect. (A decision
                    // on RBAC's refusal, not a category: other failures go through
                    // `Error::kube`'s classifier.)
                    return Ok(NamespaceContents::InUse(format!(
                        "{kind} cannot be listed (forbidden), so the namespace is not known to be empty"
                    )));
                }
                Err(e) => {
                    return Err(kube_failure(format!("list {kind} in {name}"), e));
                }
            };
            for obj in list.items {
                found.push(FoundObject {
                    kind: kind.clone(),
                    name: obj.name_any(),
                    terminating: obj.metadata.deletion_timestamp.is_some(),
                    owned: obj
                        .metadata
                        .owner_references
                        .as_ref()
                        .is_some_and(|o| !o.is_empty()),
                    secret_type: obj
                        .data
                        .get("type")
                        .and_then(|v| v.as_str())
                        .map(str::to_string),
                });
            }
        }
        Ok(classify(&found))
    }

    async fn delete(&self, identity: &Identity, name: &str) -> Result<(), Failure> {
        let api: Api<Namespace> = Api::all(self.clients.client(identity)?);
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(kube_failure(format!("delete namespace {name}"), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(kind: &str, name: &str) -> FoundObject {
        FoundObject {
            kind: kind.into(),
            name: name.into(),
            terminating: false,
            owned: false,
            secret_type: None,
        }
    }

    #[test]
    fn default_objects_do_not_count() {
        let objects = [
            obj("ConfigMap", "kube-root-ca.crt"),
            obj("ServiceAccount", "default"),
            obj("Event", "web.1234"),
            FoundObject {
                secret_type: Some("kubernetes.io/service-account-token".into()),
                ..obj("Secret", "default-token-abcde")
            },
        ];
        assert_eq!(classify(&objects), NamespaceContents::Empty);
        assert_eq!(classify(&[]), NamespaceContents::Empty);
    }

    #[test]
    fn terminating_or_owned_objects_drain() {
        let objects = [
            obj("ConfigMap", "kube-root-ca.crt"),
            FoundObject {
                terminating: true,
                ..obj("Pod", "web-1")
            },
            FoundObject {
                owned: true,
                ..obj("ReplicaSet.apps", "web-abc")
            },
            obj("Endpoints", "web"),
        ];
        match classify(&objects) {
            NamespaceContents::Draining(s) => assert!(s.contains("Pod web-1"), "{s}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn foreign_objects_keep_the_namespace() {
        let objects = [
            FoundObject {
                terminating: true,
                ..obj("Pod", "web-1")
            },
            obj("ConfigMap", "user-settings"),
            obj("Secret", "user-secret"),
        ];
        match classify(&objects) {
            NamespaceContents::InUse(s) => {
                assert!(s.contains("ConfigMap user-settings"), "{s}");
                assert!(!s.contains("Pod"), "{s}");
            }
            other => panic!("{other:?}"),
        }
    }
}
