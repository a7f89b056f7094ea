//! Fetching a release's objects with kube-rs (dynamic API, discovery per group/version;
//! in the controller kept process-wide for [`DISCOVERY_TTL`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use componentkit::handler::ErrorCategory;
use componentkit::kube_error::kube_category;
use kube::api::{Api, DynamicObject};
use kube::core::GroupVersion;
use kube::discovery::{self, ApiCapabilities, ApiResource, Scope};
use serde_json::Value;

use super::manifest::{ManifestError, ObjectRef, parse_manifest};
use super::{Verdict, assess_observed};

/// The kinds a group/version serves (discovery).
type ServedKinds = Vec<(ApiResource, ApiCapabilities)>;

/// An object of the release as found in the cluster.
#[derive(Clone, Debug, PartialEq)]
pub enum Observed {
    /// The object as the API returned it (JSON).
    Present(Value),
    /// Not there (yet): the object, or its kind (CRD not established), does not exist.
    Missing(ObjectRef),
}

/// Reading the release's objects failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("reading {object}: {}", describe(source))]
    Api {
        object: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error(
        "reading {object}: the API returned an object that is not JSON-serialisable: {message}"
    )]
    Decode { object: String, message: String },
}

impl FetchError {
    pub fn category(&self) -> ErrorCategory {
        match self {
            FetchError::Manifest(_) | FetchError::Decode { .. } => ErrorCategory::Internal,
            FetchError::Api { source, .. } => kube_category(source),
        }
    }
}

/// A kube-rs error for a message: an RBAC refusal as who may not do what where (the
/// release's ServiceAccount, under tenancy), anything else as kube-rs prints it.
fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) if status.code == 403 => {
            match crate::helm::Forbidden::parse(&status.message) {
                Some(forbidden) => format!("forbidden: {forbidden}"),
                None => format!("forbidden: {}", status.message),
            }
        }
        other => other.to_string(),
    }
}

fn is_missing(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => status.code == 404,
        kube::Error::Discovery(_) => true,
        _ => false,
    }
}

/// How long what a group/version serves is reused across checks. Every readiness and drift
/// check of every release needs it; asking again each time made discovery a fifth of the
/// controller's API requests. Only served group/versions are kept: a kind that is not
/// served yet (a CRD being installed) is asked for again at the next check.
pub const DISCOVERY_TTL: Duration = Duration::from_secs(300);

type GroupKey = (String, String);

/// Discovery results shared by every resolver of the process, once
/// [`share_discovery_process_wide`] was called.
static SERVED: LazyLock<Mutex<HashMap<GroupKey, (Instant, ServedKinds)>>> =
    LazyLock::new(Default::default);
static SHARED: AtomicBool = AtomicBool::new(false);

/// Lets every [`ApiResolver`] of the process reuse discovery results for
/// [`DISCOVERY_TTL`]. For a process that talks to one cluster (`helm-handler run`); off by
/// default, so that a process talking to several clusters (tests) never mixes them up.
pub fn share_discovery_process_wide() {
    SHARED.store(true, Ordering::Relaxed);
}

fn served_recently(key: &GroupKey) -> Option<ServedKinds> {
    if !SHARED.load(Ordering::Relaxed) {
        return None;
    }
    let cache = SERVED.lock().unwrap_or_else(|p| p.into_inner());
    cache
        .get(key)
        .filter(|(at, _)| at.elapsed() < DISCOVERY_TTL)
        .map(|(_, kinds)| kinds.clone())
}

fn remember_served(key: GroupKey, kinds: &ServedKinds) {
    if !SHARED.load(Ordering::Relaxed) {
        return;
    }
    let mut cache = SERVED.lock().unwrap_or_else(|p| p.into_inner());
    cache.insert(key, (Instant::now(), kinds.clone()));
}

/// Finds the API of a kind (discovery once per group/version, reused process-wide for
/// [`DISCOVERY_TTL`]).
pub struct ApiResolver {
    client: kube::Client,
    groups: HashMap<GroupKey, Option<ServedKinds>>,
    requests: usize,
}

impl ApiResolver {
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            groups: HashMap::new(),
            requests: 0,
        }
    }

    /// Discovery requests this resolver made (at most one per group/version).
    pub fn discoveries(&self) -> usize {
        self.requests
    }

    /// The API serving `r` (its namespace for namespaced kinds, the manifest's or the
    /// default), or `None` when the kind is not served (yet).
    pub async fn api_for(
        &mut self,
        r: &ObjectRef,
    ) -> Result<Option<Api<DynamicObject>>, FetchError> {
        let (group, version) = r.group_version();
        let key = (group.to_string(), version.to_string());
        if !self.groups.contains_key(&key)
            && let Some(kinds) = served_recently(&key)
        {
            self.groups.insert(key.clone(), Some(kinds));
        }
        if !self.groups.contains_key(&key) {
            let gv = GroupVersion::gv(group, version);
            self.requests += 1;
            let found = match discovery::pinned_group(&self.client, &gv).await {
                Ok(g) => {
                    let kinds = g.versioned_resources(version);
                    remember_served(key.clone(), &kinds);
                    Some(kinds)
                }
                Err(e) if is_missing(&e) => None,
                Err(e) => {
                    return Err(FetchError::Api {
                        object: r.to_string(),
                        source: Box::new(e),
                    });
                }
            };
            self.groups.insert(key.clone(), found);
        }
        let served = self
            .groups
            .get(&key)
            .and_then(Option::as_ref)
            .and_then(|resources| resources.iter().find(|(ar, _)| ar.kind == r.kind));
        let Some((resource, caps)) = served else {
            return Ok(None);
        };
        let client = self.client.clone();
        Ok(Some(match (&caps.scope, &r.namespace) {
            (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client, ns, resource),
            (Scope::Namespaced, None) => Api::default_namespaced_with(client, resource),
            (Scope::Cluster, _) => Api::all_with(client, resource),
        }))
    }
}

/// Fetches every referenced object (`GET`, one per object; discovery once per
/// group/version). Objects or kinds that do not exist are [`Observed::Missing`];
/// namespaces of cluster-scoped kinds are ignored.
pub async fn fetch_objects(
    client: kube::Client,
    refs: &[ObjectRef],
) -> Result<Vec<Observed>, FetchError> {
    let mut resolver = ApiResolver::new(client);
    let mut out = Vec::with_capacity(refs.len());
    for r in refs {
        let Some(api) = resolver.api_for(r).await? else {
            out.push(Observed::Missing(r.clone()));
            continue;
        };
        match api.get_opt(&r.name).await {
            Ok(Some(object)) => {
                let value = serde_json::to_value(&object).map_err(|e| FetchError::Decode {
                    object: r.to_string(),
                    message: e.to_string(),
                })?;
                out.push(Observed::Present(value));
            }
            Ok(None) => out.push(Observed::Missing(r.clone())),
            Err(e) => {
                return Err(FetchError::Api {
                    object: r.to_string(),
                    source: Box::new(e),
                });
            }
        }
    }
    Ok(out)
}

/// The readiness of a release: parse its manifest (`helm get manifest`, or
/// `ReleaseInfo::manifest`), fetch its objects, assess them.
pub async fn check_release(
    client: kube::Client,
    manifest: &str,
    release_namespace: &str,
) -> Result<Verdict, FetchError> {
    let refs = parse_manifest(manifest, release_namespace)?;
    let observed = fetch_objects(client, &refs).await?;
    Ok(assess_observed(&observed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16, message: &str) -> FetchError {
        FetchError::Api {
            object: "Service/team-a/web".into(),
            source: Box::new(kube::Error::Api(Box::new(
                Status::failure(message, "Forbidden").with_code(code),
            ))),
        }
    }

    #[test]
    fn a_forbidden_read_names_who_may_not_do_what() {
        let e = api(
            403,
            r#"services "web" is forbidden: User "system:serviceaccount:team-a:deployer" cannot get resource "services" in API group "" in the namespace "team-a""#,
        );
        assert_eq!(e.category(), ErrorCategory::Auth);
        assert_eq!(
            e.to_string(),
            "reading Service/team-a/web: forbidden: ServiceAccount team-a/deployer cannot get services (the core API group) in namespace \"team-a\""
        );
        let e = api(403, "something else");
        assert_eq!(
            e.to_string(),
            "reading Service/team-a/web: forbidden: something else"
        );
        let e = api(500, "boom");
        assert!(
            e.to_string()
                .starts_with("reading Service/team-a/web: ApiError: boom"),
            "{e}"
        );
    }
}
