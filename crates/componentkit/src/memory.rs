//! An in-memory Component API with API-server semantics, for tests of the engine and of
//! handlers:
//!
//! - every write bumps `metadata.resourceVersion`; a write guarded by a stale one gets 409;
//! - `metadata.generation` starts at 1 and bumps only when `spec` changes;
//! - status (subresource) and spec/metadata are updated separately: a status patch never
//!   changes metadata or spec, a finalizer update never changes status;
//! - deleting an object with finalizers only sets `deletionTimestamp`; it disappears when
//!   the last finalizer is removed; no new finalizer may be added once it is being deleted.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{ApiError, ComponentApi, ComponentEvent};
use crate::clock::{Clock, SystemClock};
use crate::crd::{Component, ComponentSpec};
use crate::handler::ErrorCategory;

type Key = (String, String);

#[derive(Default)]
struct State {
    objects: BTreeMap<Key, Component>,
    events: Vec<(Key, ComponentEvent)>,
    resource_version: u64,
    uid: u64,
    status_patches: u64,
}

impl State {
    fn next_rv(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }
}

/// The in-memory API. Cheap to clone (shared state).
#[derive(Clone)]
pub struct InMemoryApi {
    state: Arc<Mutex<State>>,
    clock: Arc<dyn Clock>,
}

impl Default for InMemoryApi {
    fn default() -> Self {
        Self::new(Arc::new(SystemClock))
    }
}

fn key(ns: &str, name: &str) -> Key {
    (ns.to_string(), name.to_string())
}

fn not_found(ns: &str, name: &str) -> ApiError {
    ApiError::NotFound(format!("components {ns}/{name}"))
}

impl InMemoryApi {
    /// An empty API whose timestamps (creation, deletion) come from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::default())),
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a Component (as the composition controller would). Status is dropped.
    pub fn create(&self, mut component: Component) -> Result<Component, ApiError> {
        let ns = component.metadata.namespace.clone().unwrap_or_default();
        let name = component.metadata.name.clone().unwrap_or_default();
        if name.is_empty() {
            return Err(ApiError::Rejected("metadata.name is required".into()));
        }
        let mut st = self.lock();
        if st.objects.contains_key(&key(&ns, &name)) {
            return Err(ApiError::Conflict(format!(
                "components {ns}/{name} already exists"
            )));
        }
        st.uid += 1;
        component.metadata.namespace = Some(ns.clone());
        component.metadata.uid = Some(format!("uid-{}", st.uid));
        component.metadata.generation = Some(1);
        component.metadata.creation_timestamp = Some(Time(self.clock.now()));
        component.metadata.deletion_timestamp = None;
        component.metadata.resource_version = Some(st.next_rv());
        component.status = None;
        st.objects.insert(key(&ns, &name), component.clone());
        Ok(component)
    }

    /// A Component as it is stored now.
    pub fn get_now(&self, ns: &str, name: &str) -> Option<Component> {
        self.lock().objects.get(&key(ns, name)).cloned()
    }

    /// Changes metadata/spec (not status) like an update of the main resource; the
    /// generation bumps when the spec changed.
    pub fn modify(
        &self,
        ns: &str,
        name: &str,
        f: impl FnOnce(&mut Component),
    ) -> Result<Component, ApiError> {
        let mut st = self.lock();
        let current = st
            .objects
            .get(&key(ns, name))
            .cloned()
            .ok_or_else(|| not_found(ns, name))?;
        let mut next = current.clone();
        f(&mut next);
        // Immutable / server-owned fields.
        next.metadata.name = current.metadata.name.clone();
        next.metadata.namespace = current.metadata.namespace.clone();
        next.metadata.uid = current.metadata.uid.clone();
        next.metadata.creation_timestamp = current.metadata.creation_timestamp.clone();
        next.metadata.deletion_timestamp = current.metadata.deletion_timestamp.clone();
        next.metadata.generation = current.metadata.generation;
        next.status = current.status.clone();
        self.check_new_finalizers(&current, next.metadata.finalizers.as_deref())?;
        if next.spec != current.spec {
            next.metadata.generation = Some(current.metadata.generation.unwrap_or(0) + 1);
        }
        Self::store(&mut st, next)
    }

    /// Changes the spec (bumps the generation when it changed).
    pub fn update_spec(
        &self,
        ns: &str,
        name: &str,
        f: impl FnOnce(&mut ComponentSpec),
    ) -> Result<Component, ApiError> {
        self.modify(ns, name, |c| f(&mut c.spec))
    }

    /// Sets an annotation.
    pub fn annotate(&self, ns: &str, name: &str, k: &str, v: &str) -> Result<Component, ApiError> {
        self.modify(ns, name, |c| {
            c.metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(k.to_string(), v.to_string());
        })
    }

    /// Adds a finalizer (as another controller would).
    pub fn add_finalizer(&self, ns: &str, name: &str, f: &str) -> Result<Component, ApiError> {
        self.modify(ns, name, |c| {
            let list = c.metadata.finalizers.get_or_insert_with(Vec::new);
            if !list.iter().any(|x| x == f) {
                list.push(f.to_string());
            }
        })
    }

    /// Removes a finalizer (as another controller would); the object goes when it was the
    /// last one and deletion was requested. Returns whether the object still exists.
    pub fn remove_finalizer(&self, ns: &str, name: &str, f: &str) -> Result<bool, ApiError> {
        self.modify(ns, name, |c| {
            if let Some(list) = c.metadata.finalizers.as_mut() {
                list.retain(|x| x != f);
            }
        })?;
        Ok(self.get_now(ns, name).is_some())
    }

    /// Requests deletion: with finalizers, only sets `deletionTimestamp`; without, removes.
    pub fn delete(&self, ns: &str, name: &str) -> Result<(), ApiError> {
        let mut st = self.lock();
        let k = key(ns, name);
        let current = st
            .objects
            .get(&k)
            .cloned()
            .ok_or_else(|| not_found(ns, name))?;
        if current
            .metadata
            .finalizers
            .as_ref()
            .is_none_or(|f| f.is_empty())
        {
            st.objects.remove(&k);
            return Ok(());
        }
        if current.metadata.deletion_timestamp.is_none() {
            let mut next = current;
            next.metadata.deletion_timestamp = Some(Time(self.clock.now()));
            next.metadata.resource_version = Some(st.next_rv());
            st.objects.insert(k, next);
        }
        Ok(())
    }

    /// Events published for a Component, oldest first.
    pub fn events(&self, ns: &str, name: &str) -> Vec<ComponentEvent> {
        let k = key(ns, name);
        self.lock()
            .events
            .iter()
            .filter(|(ek, _)| *ek == k)
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// Number of status patches applied so far (all objects).
    pub fn status_patch_count(&self) -> u64 {
        self.lock().status_patches
    }

    fn check_new_finalizers(
        &self,
        current: &Component,
        next: Option<&[String]>,
    ) -> Result<(), ApiError> {
        if current.metadata.deletion_timestamp.is_none() {
            return Ok(());
        }
        let old = current.metadata.finalizers.as_deref().unwrap_or(&[]);
        if next.unwrap_or(&[]).iter().any(|f| !old.contains(f)) {
            return Err(ApiError::Rejected(
                "no new finalizers can be added if the object is being deleted".into(),
            ));
        }
        Ok(())
    }

    fn store(st: &mut State, mut next: Component) -> Result<Component, ApiError> {
        let k = key(
            next.metadata.namespace.as_deref().unwrap_or(""),
            next.metadata.name.as_deref().unwrap_or(""),
        );
        if next.metadata.deletion_timestamp.is_some()
            && next
                .metadata
                .finalizers
                .as_ref()
                .is_none_or(|f| f.is_empty())
        {
            st.objects.remove(&k);
            return Ok(next);
        }
        next.metadata.resource_version = Some(st.next_rv());
        st.objects.insert(k, next.clone());
        Ok(next)
    }
}

#[async_trait]
impl ComponentApi for InMemoryApi {
    async fn get(&self, namespace: &str, name: &str) -> Result<Option<Component>, ApiError> {
        Ok(self.get_now(namespace, name))
    }

    async fn set_finalizers(
        &self,
        component: &Component,
        finalizers: Vec<String>,
    ) -> Result<Option<Component>, ApiError> {
        let ns = component.metadata.namespace.as_deref().unwrap_or("");
        let name = component.metadata.name.as_deref().unwrap_or("");
        let mut st = self.lock();
        let current = st
            .objects
            .get(&key(ns, name))
            .cloned()
            .ok_or_else(|| not_found(ns, name))?;
        if current.metadata.resource_version != component.metadata.resource_version {
            return Err(ApiError::Conflict(format!(
                "Operation cannot be fulfilled on components {ns}/{name}: the object has been modified"
            )));
        }
        self.check_new_finalizers(&current, Some(&finalizers))?;
        let mut next = current;
        next.metadata.finalizers = Some(finalizers);
        let stored = Self::store(&mut st, next)?;
        Ok(st.objects.contains_key(&key(ns, name)).then_some(stored))
    }

    async fn patch_status(
        &self,
        namespace: &str,
        name: &str,
        patch: serde_json::Value,
    ) -> Result<Component, ApiError> {
        let mut st = self.lock();
        let k = key(namespace, name);
        let current = st
            .objects
            .get(&k)
            .cloned()
            .ok_or_else(|| not_found(namespace, name))?;
        let mut status = serde_json::to_value(&current.status)
            .map_err(|e| ApiError::Other(ErrorCategory::Internal, e.to_string()))?;
        if status.is_null() {
            status = serde_json::json!({});
        }
        if let Some(p) = patch.get("status") {
            json_patch::merge(&mut status, p);
        }
        let status = serde_json::from_value(status)
            .map_err(|e| ApiError::Rejected(format!("status: {e}")))?;
        let mut next = current;
        next.status = Some(status);
        next.metadata.resource_version = Some(st.next_rv());
        st.status_patches += 1;
        st.objects.insert(k, next.clone());
        Ok(next)
    }

    async fn publish_event(
        &self,
        component: &Component,
        event: &ComponentEvent,
    ) -> Result<(), ApiError> {
        let k = key(
            component.metadata.namespace.as_deref().unwrap_or(""),
            component.metadata.name.as_deref().unwrap_or(""),
        );
        self.lock().events.push((k, event.clone()));
        Ok(())
    }
}

/// A new Component object (not stored) — convenience for tests and examples.
pub fn component(ns: &str, name: &str, handler: &str, config: serde_json::Value) -> Component {
    let mut c = Component::new(
        name,
        ComponentSpec {
            handler: handler.to_string(),
            config: Some(config),
            deployment_timeout: None,
            termination_timeout: None,
        },
    );
    c.metadata.namespace = Some(ns.to_string());
    c
}
