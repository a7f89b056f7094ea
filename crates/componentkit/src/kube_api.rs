//! [`ComponentApi`] on a real API server (`kube::Api<Component>`, Events through
//! [`EventRecorder`]).

use async_trait::async_trait;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, Resource};

use crate::api::{ApiError, ComponentApi, ComponentEvent};
use crate::crd::Component;
use crate::event_recorder::{EventRecorder, EventSpec};
use crate::kube_error::map_kube_error;
use crate::leadership::Leadership;

/// An error with its causes, each once (a transport error only says "connection refused"
/// three levels down).
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// The Component API of a cluster.
#[derive(Clone)]
pub struct KubeComponentApi {
    client: Client,
    recorder: EventRecorder,
    leadership: Leadership,
}

impl KubeComponentApi {
    /// `controller` names the Event reporter (e.g. `helm-handler`), `instance` the replica.
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        Self {
            recorder: EventRecorder::new(client.clone(), controller, instance),
            client,
            leadership: Leadership::always(),
        }
    }

    /// Refuses every write unless `leadership` allows it (checked right before each call).
    pub fn fenced(mut self, leadership: Leadership) -> Self {
        self.leadership = leadership;
        self
    }

    fn may_write(&self) -> Result<(), ApiError> {
        self.leadership
            .check()
            .map_err(|e| ApiError::NotLeader(e.to_string()))
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
        self.may_write()?;
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
        self.may_write()?;
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
        self.may_write()?;
        let ev = EventSpec {
            type_: event.type_,
            reason: &event.reason,
            action: &event.action,
            note: &event.note,
        };
        self.recorder
            .publish(&component.object_ref(&()), &ev)
            .await
            .map_err(map_kube_error)
    }
}
