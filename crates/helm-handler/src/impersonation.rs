//! kube-rs clients acting as an [`Identity`]: the controller's own client, or one that
//! impersonates a ServiceAccount (`Impersonate-User: system:serviceaccount:NS:NAME`), built
//! from the controller's `kube::Config`.
//!
//! Clients are cached per identity: a reconcile reuses the connection pool and TLS set-up of
//! the previous one, so 1,000 Components of 50 tenants mean at most 50 extra clients, not a
//! client per reconcile. The cache is bounded ([`MAX_CLIENTS`]); when full it is emptied and
//! refilled on demand (clients are cheap to rebuild, and dropping one only closes idle
//! connections).
//!
//! As for helm (`crate::helm`), no groups are impersonated: the API server gives an
//! impersonated ServiceAccount its own groups, and impersonating groups would need
//! `impersonate` on `groups` — the right to act as any group, `system:masters` included.

use std::collections::HashMap;
use std::sync::Mutex;

use componentkit::handler::ErrorCategory;

use crate::handler::Failure;
use crate::identity::Identity;

/// At most this many impersonating clients are kept.
pub const MAX_CLIENTS: usize = 256;

/// The controller's `kube::Config` turned into one that acts as `identity`.
pub fn impersonating_config(base: &kube::Config, identity: &Identity) -> kube::Config {
    let mut config = base.clone();
    config.auth_info.impersonate = identity.username();
    config.auth_info.impersonate_groups = None;
    config.auth_info.impersonate_uid = None;
    config.auth_info.impersonate_user_extra = None;
    config
}

/// Kubernetes clients per identity.
pub struct KubeClients {
    /// The controller's own client (no impersonation).
    own: kube::Client,
    /// What impersonating clients are built from; `None`: impersonation is not available
    /// (a client made without its config, in tests), and asking for it is an error.
    config: Option<kube::Config>,
    cache: Mutex<HashMap<Identity, kube::Client>>,
}

impl std::fmt::Debug for KubeClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeClients")
            .field("cached", &self.cached())
            .finish_non_exhaustive()
    }
}

impl KubeClients {
    /// `own` must be the client built from `config`.
    pub fn new(own: kube::Client, config: kube::Config) -> Self {
        Self {
            own,
            config: Some(config),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Only the controller's own identity (no config to impersonate from).
    pub fn own_only(own: kube::Client) -> Self {
        Self {
            own,
            config: None,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The controller's own client.
    pub fn own(&self) -> kube::Client {
        self.own.clone()
    }

    /// Number of impersonating clients cached.
    pub fn cached(&self) -> usize {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// A client acting as `identity`.
    pub fn client(&self, identity: &Identity) -> Result<kube::Client, Failure> {
        if identity.is_controller() {
            return Ok(self.own.clone());
        }
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = cache.get(identity) {
            return Ok(client.clone());
        }
        let Some(base) = &self.config else {
            return Err(Failure::new(
                ErrorCategory::Internal,
                format!(
                    "cannot act as {identity}: no Kubernetes configuration to impersonate from"
                ),
            ));
        };
        let client = kube::Client::try_from(impersonating_config(base, identity)).map_err(|e| {
            Failure::new(
                ErrorCategory::Internal,
                format!("cannot build a Kubernetes client acting as {identity}: {e}"),
            )
        })?;
        if cache.len() >= MAX_CLIENTS {
            cache.clear();
        }
        cache.insert(identity.clone(), client.clone());
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::ServiceAccountName;

    fn config() -> kube::Config {
        let mut c = kube::Config::new("https://127.0.0.1:6443".parse().unwrap());
        c.auth_info.impersonate = Some("someone-else".into());
        c.auth_info.impersonate_groups = Some(vec!["system:masters".into()]);
        c
    }

    fn sa(ns: &str, name: &str) -> Identity {
        Identity::service_account(ns, ServiceAccountName::new(name).unwrap())
    }

    #[test]
    fn impersonation_names_the_service_account_and_no_group() {
        let c = impersonating_config(&config(), &sa("team-a", "deployer"));
        assert_eq!(
            c.auth_info.impersonate.as_deref(),
            Some("system:serviceaccount:team-a:deployer")
        );
        assert_eq!(c.auth_info.impersonate_groups, None);
        let own = impersonating_config(&config(), &Identity::Controller);
        assert_eq!(own.auth_info.impersonate, None);
        assert_eq!(own.cluster_url, config().cluster_url);
    }

    #[tokio::test]
    async fn clients_are_cached_per_identity_and_bounded() {
        let base = config();
        let own = kube::Client::try_from(base.clone()).unwrap();
        let clients = KubeClients::new(own, base);
        clients.client(&Identity::Controller).unwrap();
        assert_eq!(clients.cached(), 0, "the own client is not an extra one");
        for _ in 0..3 {
            clients.client(&sa("team-a", "deployer")).unwrap();
        }
        clients.client(&sa("team-b", "deployer")).unwrap();
        assert_eq!(clients.cached(), 2);
        for i in 0..MAX_CLIENTS + 5 {
            clients.client(&sa(&format!("ns-{i}"), "d")).unwrap();
        }
        assert!(clients.cached() <= MAX_CLIENTS);
        let own_only = KubeClients::own_only(clients.own());
        let Err(e) = own_only.client(&sa("team-a", "deployer")) else {
            panic!("impersonation without a config");
        };
        assert!(e.message.contains("team-a:deployer"), "{e}");
    }
}
