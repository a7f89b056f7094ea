//! The production [`DriftProbe`]: for each object of the release manifest, a `GET` of the
//! live object and a server-side apply dry run of the manifest's object (field manager
//! `helm`, forced), compared field by field ([`crate::drift::drifted_fields`]); correction
//! is the same apply without the dry run. All of it as the release's identity (tenancy). Correction — it recreates a deleted object and sets drifted
//! fields back, and makes no helm revision.

use std::sync::Arc;

use async_trait::async_trait;
use kube::api::{Patch, PatchParams};
use serde_json::Value;

use super::{DriftCheck, DriftProbe, Failure};
use crate::drift::{DriftDetection, ObjectDrift, ObjectId};
use crate::helm::Release;
use crate::impersonation::KubeClients;
use crate::readiness::{ApiResolver, FetchError, ObjectRef, manifest_objects};

/// The field manager of the apply (helm's own).
pub const FIELD_MANAGER: &str = "helm";

/// Drift through the Kubernetes API, read and corrected as the release's identity.
#[derive(Clone)]
pub struct KubeDrift {
    clients: Arc<KubeClients>,
}

impl KubeDrift {
    pub fn new(clients: Arc<KubeClients>) -> Self {
        Self { clients }
    }
}

fn object_id(r: &ObjectRef) -> ObjectId {
    ObjectId {
        group: r.group_version().0.to_string(),
        kind: r.kind.clone(),
        namespace: r.namespace.clone(),
        name: r.name.clone(),
    }
}

fn failure(e: FetchError) -> Failure {
    Failure::new(e.category(), format!("drift detection: {e}"))
}

fn api_failure(r: &ObjectRef, e: kube::Error) -> Failure {
    failure(FetchError::Api {
        object: r.to_string(),
        source: Box::new(e),
    })
}

/// The manifest's object as helm applies it: in the release namespace when namespaced, with
/// the ownership metadata helm adds to every object (without it, an apply as `helm` would
/// remove helm's own annotations).
fn applied_document(release: &Release, r: &ObjectRef, doc: &Value) -> Value {
    let mut doc = doc.clone();
    let Some(meta) = doc.get_mut("metadata").and_then(Value::as_object_mut) else {
        return doc;
    };
    if let Some(ns) = &r.namespace {
        meta.insert("namespace".into(), Value::String(ns.clone()));
    }
    let mut set = |map: &str, key: &str, value: &str| {
        let entry = meta
            .entry(map.to_string())
            .or_insert_with(|| Value::Object(Default::default()));
        if !entry.is_object() {
            *entry = Value::Object(Default::default());
        }
        if let Some(m) = entry.as_object_mut() {
            m.insert(key.to_string(), Value::String(value.to_string()));
        }
    };
    set("annotations", "meta.helm.sh/release-name", &release.name);
    set(
        "annotations",
        "meta.helm.sh/release-namespace",
        &release.namespace,
    );
    set("labels", "app.kubernetes.io/managed-by", "Helm");
    doc
}

#[async_trait]
impl DriftProbe for KubeDrift {
    async fn check(
        &self,
        release: &Release,
        manifest: &str,
        config: &DriftDetection,
    ) -> Result<DriftCheck, Failure> {
        let objects = manifest_objects(manifest, &release.namespace)
            .map_err(|e| failure(FetchError::Manifest(e)))?;
        let mut resolver = ApiResolver::new(self.clients.client(&release.identity)?);
        let mut drifts = Vec::new();
        let mut requests = 0usize;
        let dry_run = PatchParams::apply(FIELD_MANAGER).force().dry_run();
        for (r, doc) in &objects {
            let id = object_id(r);
            let Some(api) = resolver.api_for(r).await.map_err(failure)? else {
                // The kind is not served (a CRD removed): the object is gone with it.
                drifts.push(ObjectDrift::Deleted(id));
                continue;
            };
            requests += 1;
            let live = match api.get_opt(&r.name).await {
                Ok(Some(live)) => live,
                Ok(None) => {
                    drifts.push(ObjectDrift::Deleted(id));
                    continue;
                }
                Err(e) => return Err(api_failure(r, e)),
            };
            requests += 1;
            let applied = api
                .patch(
                    &r.name,
                    &dry_run,
                    &Patch::Apply(applied_document(release, r, doc)),
                )
                .await
                .map_err(|e| api_failure(r, e))?;
            let (Ok(live), Ok(applied)) =
                (serde_json::to_value(&live), serde_json::to_value(&applied))
            else {
                return Err(Failure::new(
                    componentkit::handler::ErrorCategory::Internal,
                    format!("drift detection: {r}: the API returned an object that is not JSON"),
                ));
            };
            let ignored = config.ignored_paths(&id);
            let fields = crate::drift::drifted_fields(&applied, &live, &ignored);
            if !fields.is_empty() {
                drifts.push(ObjectDrift::Modified(id, fields));
            }
        }
        Ok(DriftCheck {
            drifts,
            requests: requests + resolver.discoveries(),
        })
    }

    async fn correct(
        &self,
        release: &Release,
        manifest: &str,
        drifts: &[ObjectDrift],
    ) -> Result<(), Failure> {
        let objects = manifest_objects(manifest, &release.namespace)
            .map_err(|e| failure(FetchError::Manifest(e)))?;
        let mut resolver = ApiResolver::new(self.clients.client(&release.identity)?);
        let apply = PatchParams::apply(FIELD_MANAGER).force();
        for (r, doc) in &objects {
            let id = object_id(r);
            let drifted = drifts.iter().any(|d| match d {
                ObjectDrift::Deleted(x) | ObjectDrift::Modified(x, _) => *x == id,
            });
            if !drifted {
                continue;
            }
            let Some(api) = resolver.api_for(r).await.map_err(failure)? else {
                continue;
            };
            api.patch(
                &r.name,
                &apply,
                &Patch::Apply(applied_document(release, r, doc)),
            )
            .await
            .map_err(|e| api_failure(r, e))?;
            tracing::info!(object = %r, "drift corrected (re-applied)");
        }
        Ok(())
    }
}
