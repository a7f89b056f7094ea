//! [`ComponentApi`] on a real API server (`kube::Api<Component>`, Events through
//! `kube::runtime::events::Recorder`).

use async_trait::async_trait;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource};

use crate::api::{ApiError, ComponentApi, ComponentEvent};
use crate::crd::Component;

/// Maps a kube error to an [`ApiError`] by HTTP status.
pub fn map_kube_error(e: kube::Error) -> ApiError {
    match e {
        kube::Error::Api(status) => {
            let msg = if status.message.is_empty() {
                status.reason.clone()
            } else {
                status.message.clone()
            };
            match status.code {
                409 => ApiError::Conflict(msg),
                404 => ApiError::NotFound(msg),
                400 | 403 | 422 => ApiError::Rejected(msg),
                _ => ApiError::Other(format!("HTTP {}: {msg}", status.code)),
            }
        }
        other => ApiError::Other(other.to_string()),
    }
}

/// The Component API of a cluster.
#[derive(Clone)]
pub struct KubeComponentApi {
    client: Client,
    recorder: Recorder,
}

impl KubeComponentApi {
    /// `controller` names the Event reporter (e.g. `helm-handler`), `instance` the replica.
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: controller.to_string(),
            instance,
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
        }
    }

    fn api(&self, namespace: &str) -> Api<Component> {
        Api::namespaced(self.client.clone(), namespace)
    }
}

fn ns_name(c: &Component) -> (&str, &str) {
    (
        c.metadata.namespace.as_deref().unwrap_or(""),
        c.metadata.name.as_deref().unwrap_or(""),
    )
}

#[async_trait]
impl ComponentApi for KubeComponentApi {
    async fn get(&self, namespace: &str, name: &str) -> Result<Option<Component>, ApiError> {
        self.api(namespace)
            .get_opt(name)
            .await
            .map_err(map_kube_error)
    }

    async fn set_finalizers(
        &self,
        component: &Component,
        finalizers: Vec<String>,
    ) -> Result<Option<Component>, ApiError> {
        let (ns, name) = ns_name(component);
        let Some(rv) = component.metadata.resource_version.clone() else {
            return Err(ApiError::Rejected(
                "cannot update finalizers without a resourceVersion".into(),
            ));
        };
        // A merge patch carrying metadata.resourceVersion is a precondition: stale → 409.
        let patch = serde_json::json!({
            "metadata": { "resourceVersion": rv, "finalizers": finalizers }
        });
        match self
            .api(ns)
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(obj) => {
                let gone = obj.metadata.deletion_timestamp.is_some()
                    && obj
                        .metadata
                        .finalizers
                        .as_ref()
                        .is_none_or(|f| f.is_empty());
                Ok((!gone).then_some(obj))
            }
            Err(e) => match map_kube_error(e) {
                ApiError::NotFound(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    async fn patch_status(
        &self,
        namespace: &str,
        name: &str,
        patch: serde_json::Value,
    ) -> Result<Component, ApiError> {
        self.api(namespace)
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(map_kube_error)
    }

    async fn publish_event(
        &self,
        component: &Component,
        event: &ComponentEvent,
    ) -> Result<(), ApiError> {
        let ev = Event {
            type_: if event.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: event.reason.clone(),
            note: Some(event.note.clone()),
            action: event.action.clone(),
            secondary: None,
        };
        self.recorder
            .publish(&ev, &component.object_ref(&()))
            .await
            .map_err(map_kube_error)
    }
}
