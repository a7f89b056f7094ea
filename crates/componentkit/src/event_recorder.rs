//! Kubernetes Events (`events.k8s.io/v1`) about Components.
//!
//! Why not `kube::runtime::events::Recorder`: it folds a repeated Event into a series for six
//! minutes keyed without the note, so a user reading `kubectl describe` sees the first message
//! of the series, not the current one (a retry's "connection refused" stays on screen after
//! the cause became "unauthorized"); and it names Events `<object>.<nanos>`, which is over the
//! 253-character limit for long Component names, so the API server refuses them (422). Here
//! the series key includes the note, and the name is cut to fit.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use tokio::sync::Mutex;

use crate::api::EventType;

/// Kubernetes' limit on an object name (DNS subdomain).
const MAX_NAME: usize = 253;
/// How long a repeated Event is folded into the first one's series (as client-go does).
const SERIES_WINDOW: SignedDuration = SignedDuration::from_secs(6 * 60);

/// An Event's name: `<object>.<nanoseconds in hex>`, the object part cut so that the whole
/// fits [`MAX_NAME`] and does not end in `-` or `.`.
pub fn event_name(object: &str, nanos: i128) -> String {
    let suffix = format!(".{nanos:x}");
    let room = MAX_NAME.saturating_sub(suffix.len());
    let mut end = room.min(object.len());
    while !object.is_char_boundary(end) {
        end -= 1;
    }
    let head = object[..end].trim_end_matches(['-', '.']);
    format!("{head}{suffix}")
}

/// What identifies "the same Event again": the note is part of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    namespace: String,
    uid: String,
    name: String,
    type_: EventType,
    reason: String,
    action: String,
    note: String,
}

/// One Event to publish.
#[derive(Debug, Clone)]
pub struct EventSpec<'a> {
    pub type_: EventType,
    pub reason: &'a str,
    pub action: &'a str,
    pub note: &'a str,
}

/// Publishes Events; a repeat of the same Event (same note) within six minutes bumps the
/// series count of the first instead of creating another object.
#[derive(Clone)]
pub struct EventRecorder {
    client: Client,
    controller: String,
    instance: String,
    recent: Arc<Mutex<HashMap<SeriesKey, K8sEvent>>>,
}

impl EventRecorder {
    pub fn new(client: Client, controller: &str, instance: Option<String>) -> Self {
        Self {
            client,
            controller: controller.to_string(),
            instance: instance.unwrap_or_else(|| controller.to_string()),
            recent: Arc::default(),
        }
    }

    pub async fn publish(
        &self,
        regarding: &ObjectReference,
        ev: &EventSpec<'_>,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let key = SeriesKey {
            namespace: namespace.clone(),
            uid: regarding.uid.clone().unwrap_or_default(),
            name: regarding.name.clone().unwrap_or_default(),
            type_: ev.type_,
            reason: ev.reason.to_string(),
            action: ev.action.to_string(),
            note: ev.note.to_string(),
        };
        let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &namespace);
        let mut recent = self.recent.lock().await;
        recent.retain(|_, e| {
            let last = e
                .series
                .as_ref()
                .map(|s| s.last_observed_time.0)
                .or_else(|| e.event_time.as_ref().map(|t| t.0));
            last.is_none_or(|t| t + SERIES_WINDOW > now)
        });
        if let Some(first) = recent.get(&key).cloned() {
            let series = EventSeries {
                count: first.series.as_ref().map_or(2, |s| s.count + 1),
                last_observed_time: MicroTime(now),
            };
            let patch = serde_json::json!({ "series": series });
            let name = first.metadata.name.clone().unwrap_or_default();
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(updated) => {
                    recent.insert(key, updated);
                    return Ok(());
                }
                // Gone (expired by the server's TTL): start a new one below.
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    recent.remove(&key);
                }
                Err(e) => return Err(e),
            }
        }
        let event = K8sEvent {
            metadata: ObjectMeta {
                name: Some(event_name(&key.name, now.as_nanosecond())),
                namespace: Some(namespace),
                ..Default::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some(ev.action.to_string()),
            reason: Some(ev.reason.to_string()),
            note: Some(ev.note.to_string()),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            type_: Some(ev.type_.as_str().into()),
            ..Default::default()
        };
        let created = api.create(&PostParams::default(), &event).await?;
        recent.insert(key, created);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_fit_the_limit() {
        let long = "a".repeat(253);
        let dashed = format!("{}-{}", "b".repeat(235), "c".repeat(17));
        for (object, nanos, want) in [
            ("web", 255, "web.ff".to_string()),
            (long.as_str(), 1, format!("{}.1", "a".repeat(251))),
            (
                long.as_str(),
                0x1876_5432_1abc_def0,
                format!("{}.187654321abcdef0", "a".repeat(236)),
            ),
            // The cut lands on the `-`: trimmed so the name stays a DNS subdomain.
            (
                dashed.as_str(),
                0x1876_5432_1abc_def0,
                format!("{}.187654321abcdef0", "b".repeat(235)),
            ),
        ] {
            let name = event_name(object, nanos);
            assert_eq!(name, want, "{object}");
            assert!(name.len() <= MAX_NAME, "{}", name.len());
        }
    }
}
