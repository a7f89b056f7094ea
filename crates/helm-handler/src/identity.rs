//! Tenancy: the identity helm and the handler's reads act as for a Component's release.
//!
//! Without tenancy settings helm runs with the controller's own rights (in effect
//! cluster-admin): whoever may create a Component could install anything anywhere. A
//! Component may therefore name a ServiceAccount of its own namespace
//! (`spec.config.serviceAccountName`); `helm-handler run --default-service-account NAME`
//! makes one mandatory (lockdown: a Component without the field uses that ServiceAccount of
//! its namespace), and `--no-cross-namespace-releases` keeps every release in its
//! Component's namespace. The release is then installed, read, upgraded, rolled back and
//! uninstalled as `system:serviceaccount:<Component namespace>:<name>` through Kubernetes
//! impersonation, so RBAC on that ServiceAccount bounds what a Component can do — as Flux's
//! `serviceAccountName` / `--default-service-account` / `--no-cross-namespace-refs` do.
//!
//! What stays with the controller's own identity, on purpose: reading the Component's
//! credential and `valuesFrom` Secrets/ConfigMaps (under the namespace scoping of
//! [`crate::credentials`] and [`crate::values_from`], as Flux does), the Component itself,
//! Events, the leader Lease, the existence check of the ServiceAccount and the namespace
//! reads of `manageNamespace`.
//!
//! Everything here is pure: [`TenancyPolicy::identity`] decides who acts, and
//! [`TenancyPolicy::check_release_namespace`] whether a release namespace is allowed. The
//! handler carries the decision out.

use std::fmt;

use chart_source::spec::is_dns_subdomain;

use crate::error::Error;
use crate::validated_name::validated_name;

/// The `spec.config` field naming the ServiceAccount.
pub const SERVICE_ACCOUNT_FIELD: &str = "serviceAccountName";
/// The `run` flag naming the ServiceAccount of Components without the field (lockdown).
pub const DEFAULT_SERVICE_ACCOUNT_FLAG: &str = "--default-service-account";
/// The `run` flag keeping releases in their Component's namespace.
pub const NO_CROSS_NAMESPACE_FLAG: &str = "--no-cross-namespace-releases";
/// The groups every ServiceAccount belongs to (besides `system:serviceaccounts:<ns>`).
pub const SERVICE_ACCOUNTS_GROUP: &str = "system:serviceaccounts";

validated_name! {
    /// A ServiceAccount name, valid by construction: a lowercase RFC 1123 subdomain of at
    /// most 253 characters (what the API server accepts as a ServiceAccount's `metadata.name`).
    ServiceAccountName
}

impl ServiceAccountName {
    /// Validates a name; the error says what is wrong (without a field name).
    pub fn new(name: &str) -> Result<Self, String> {
        if is_dns_subdomain(name) {
            Ok(ServiceAccountName(name.to_string()))
        } else if name.is_empty() {
            Err("empty; expected the name of a ServiceAccount such as `deployer`".into())
        } else {
            Err(format!(
                "{name:?} is not a valid ServiceAccount name (lowercase letters, digits, `-` and `.`, starting and ending with a letter or digit, at most 253 characters)"
            ))
        }
    }
}

impl std::str::FromStr for ServiceAccountName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ServiceAccountName::new(s)
    }
}

/// Who acts on a release.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Identity {
    /// The controller's own credentials (no impersonation): what helm-handler did before
    /// tenancy, and still does for Components without a ServiceAccount outside lockdown.
    #[default]
    Controller,
    /// A ServiceAccount, impersonated.
    ServiceAccount {
        namespace: String,
        name: ServiceAccountName,
    },
}

impl Identity {
    pub fn service_account(namespace: impl Into<String>, name: ServiceAccountName) -> Self {
        Identity::ServiceAccount {
            namespace: namespace.into(),
            name,
        }
    }

    pub fn is_controller(&self) -> bool {
        matches!(self, Identity::Controller)
    }

    /// The Kubernetes user name to impersonate (`system:serviceaccount:NS:NAME`); `None` for
    /// the controller's own identity.
    pub fn username(&self) -> Option<String> {
        match self {
            Identity::Controller => None,
            Identity::ServiceAccount { namespace, name } => {
                Some(format!("system:serviceaccount:{namespace}:{name}"))
            }
        }
    }

    /// `NS/NAME` of the ServiceAccount.
    pub fn service_account_key(&self) -> Option<String> {
        match self {
            Identity::Controller => None,
            Identity::ServiceAccount { namespace, name } => Some(format!("{namespace}/{name}")),
        }
    }
}

/// `system:serviceaccount:NS:NAME`, or `the controller's own identity`.
impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.username() {
            Some(user) => f.write_str(&user),
            None => f.write_str("the controller's own identity"),
        }
    }
}

/// Where an identity came from (for messages: a missing ServiceAccount names its origin).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentitySource {
    /// `spec.config.serviceAccountName`.
    Field,
    /// `run --default-service-account` (lockdown).
    DefaultFlag,
    /// Neither: the controller's own identity.
    None,
}

impl fmt::Display for IdentitySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentitySource::Field => write!(f, "field `{SERVICE_ACCOUNT_FIELD}`"),
            IdentitySource::DefaultFlag => {
                write!(f, "flag `{DEFAULT_SERVICE_ACCOUNT_FLAG}` (lockdown)")
            }
            IdentitySource::None => f.write_str("no ServiceAccount configured"),
        }
    }
}

/// An identity and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedIdentity {
    pub identity: Identity,
    pub source: IdentitySource,
}

/// The tenancy settings of a controller (`run` flags; `check`/`template` take the same).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenancyPolicy {
    /// `--default-service-account`: lockdown. A Component without `serviceAccountName` acts
    /// as this ServiceAccount of its own namespace — never as the controller.
    pub default_service_account: Option<ServiceAccountName>,
    /// `--no-cross-namespace-releases`: `releaseNamespace` must be the Component's namespace.
    pub no_cross_namespace_releases: bool,
}

impl TenancyPolicy {
    /// Who acts on a Component's release: the configured ServiceAccount, else the lockdown
    /// default, else the controller — always a ServiceAccount of the Component's namespace.
    pub fn identity(
        &self,
        configured: Option<&ServiceAccountName>,
        component_namespace: &str,
    ) -> ResolvedIdentity {
        let (name, source) = match (configured, &self.default_service_account) {
            (Some(name), _) => (name, IdentitySource::Field),
            (None, Some(name)) => (name, IdentitySource::DefaultFlag),
            (None, None) => {
                return ResolvedIdentity {
                    identity: Identity::Controller,
                    source: IdentitySource::None,
                };
            }
        };
        ResolvedIdentity {
            identity: Identity::service_account(component_namespace, name.clone()),
            source,
        }
    }

    /// With `--no-cross-namespace-releases`, a release outside the Component's namespace is
    /// a `config` error naming `releaseNamespace` (checked before any helm call).
    pub fn check_release_namespace(
        &self,
        component_namespace: &str,
        release_namespace: &str,
    ) -> Result<(), Error> {
        if self.no_cross_namespace_releases && release_namespace != component_namespace {
            return Err(Error::config(
                "releaseNamespace",
                format!(
                    "{release_namespace:?} is not the Component's namespace {component_namespace:?}: releases in other namespaces are refused ({NO_CROSS_NAMESPACE_FLAG}); remove the field or set it to {component_namespace:?}"
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(name: &str) -> ServiceAccountName {
        ServiceAccountName::new(name).unwrap()
    }

    #[test]
    fn service_account_names_are_dns_subdomains() {
        let label = "a".repeat(63);
        let longest = format!("{label}.{label}.{label}.{}", "a".repeat(61));
        assert_eq!(longest.len(), 253);
        for ok in ["deployer", "a", "team-a.deployer", &longest] {
            assert!(ServiceAccountName::new(ok).is_ok(), "{ok}");
        }
        let too_long = format!("{longest}a");
        for bad in [
            "",
            "Deployer",
            "-x",
            "x-",
            "a_b",
            "a..b",
            "a/b",
            &label.repeat(2),
            &too_long,
        ] {
            let e = ServiceAccountName::new(bad).unwrap_err();
            assert!(!e.is_empty(), "{bad}");
        }
    }

    #[test]
    fn identity_is_decided_from_field_flag_and_namespace() {
        let none = TenancyPolicy::default();
        let lockdown = TenancyPolicy {
            default_service_account: Some(sa("helm-deployer")),
            no_cross_namespace_releases: true,
        };
        let cases = [
            (&none, None, Identity::Controller, IdentitySource::None),
            (
                &none,
                Some("deployer"),
                Identity::service_account("team-a", sa("deployer")),
                IdentitySource::Field,
            ),
            (
                &lockdown,
                None,
                Identity::service_account("team-a", sa("helm-deployer")),
                IdentitySource::DefaultFlag,
            ),
            (
                &lockdown,
                Some("deployer"),
                Identity::service_account("team-a", sa("deployer")),
                IdentitySource::Field,
            ),
        ];
        for (policy, configured, identity, source) in cases {
            let configured = configured.map(sa);
            assert_eq!(
                policy.identity(configured.as_ref(), "team-a"),
                ResolvedIdentity { identity, source },
                "{policy:?} {configured:?}"
            );
        }
    }

    #[test]
    fn identities_print_as_kubernetes_users() {
        let id = Identity::service_account("team-a", sa("deployer"));
        assert_eq!(
            id.username().as_deref(),
            Some("system:serviceaccount:team-a:deployer")
        );
        assert_eq!(id.to_string(), "system:serviceaccount:team-a:deployer");
        assert_eq!(id.service_account_key().as_deref(), Some("team-a/deployer"));
        assert_eq!(Identity::Controller.username(), None);
        assert_eq!(
            Identity::Controller.to_string(),
            "the controller's own identity"
        );
    }

    #[test]
    fn cross_namespace_releases_are_refused_only_when_asked() {
        let open = TenancyPolicy::default();
        let closed = TenancyPolicy {
            no_cross_namespace_releases: true,
            ..TenancyPolicy::default()
        };
        for (policy, release_ns, ok) in [
            (&open, "team-a", true),
            (&open, "kube-system", true),
            (&closed, "team-a", true),
            (&closed, "kube-system", false),
        ] {
            let result = policy.check_release_namespace("team-a", release_ns);
            assert_eq!(result.is_ok(), ok, "{policy:?} {release_ns}");
            if let Err(e) = result {
                let text = e.to_string();
                assert!(
                    text.starts_with("config: field `releaseNamespace`: \"kube-system\""),
                    "{text}"
                );
                assert!(text.contains(NO_CROSS_NAMESPACE_FLAG), "{text}");
            }
        }
    }
}
