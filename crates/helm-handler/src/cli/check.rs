//! `helm-handler check -f FILE [-f FILE…] [--system-namespace NS]
//! [--default-service-account NAME] [--no-cross-namespace-releases]`: validates the
//! configuration of every helm Component in the files, offline.
//!
//! One line per helm Component on stdout: `ok NS/NAME (runs as IDENTITY)` or
//! `error NS/NAME: CATEGORY: MESSAGE`. IDENTITY is who the controller, run with the same
//! tenancy flags, would act as: `system:serviceaccount:NS:NAME`, or the controller's own
//! identity (see [`crate::identity`]); whether that ServiceAccount exists, and its rights,
//! are the cluster's and are not checked offline. With `--no-cross-namespace-releases` a
//! `releaseNamespace` other than the Component's is an error, as in the controller.
//! Secrets referenced by a Component, and the Secrets and ConfigMaps of its `valuesFrom`, are
//! read when they are in the files (same code as the controller); a reference to a forbidden
//! namespace is an error either way.
//!
//! Exit codes: 0 all valid, 1 at least one invalid Component, 2 a file could not be read or
//! is not valid YAML (or bad arguments).

use std::path::PathBuf;
use std::process::ExitCode;

use chart_source::SourceSpec;
use componentkit::crd::Component;

use crate::config::HelmConfig;
use crate::config_maps::FileConfigMapStore;
use crate::credentials::{CredentialResolver, FileSecretStore};
use crate::error::Error;
use crate::identity::{Identity, ServiceAccountName, TenancyPolicy};
use crate::manifests::{DEFAULT_NAMESPACE, Manifests};
use crate::values::ValuesKind;

/// Exit code when every helm Component is valid.
pub const EXIT_OK: u8 = 0;
/// Exit code when at least one helm Component is invalid.
pub const EXIT_INVALID: u8 = 1;
/// Exit code when a file could not be read or parsed.
pub const EXIT_UNREADABLE: u8 = 2;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Kubernetes YAML with Components and Secrets (multi-document); a directory or `-`
    /// (stdin) also works; repeatable.
    #[arg(short = 'f', long = "filename", value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
    /// The system namespace, searched for Secrets after the Component's namespace.
    #[arg(
        long,
        env = "HELM_HANDLER_SYSTEM_NAMESPACE",
        default_value = "deployment-system"
    )]
    pub system_namespace: String,
    /// Also say, on stderr, which Components were skipped and which Secrets were not checked.
    #[arg(short, long)]
    pub verbose: bool,
    /// As `run --default-service-account` (lockdown): the identity of Components without
    /// `serviceAccountName`.
    #[arg(long, value_name = "NAME")]
    pub default_service_account: Option<ServiceAccountName>,
    /// As `run --no-cross-namespace-releases`: a release outside its Component's namespace
    /// is an error.
    #[arg(long)]
    pub no_cross_namespace_releases: bool,
}

/// The verdict on one helm Component.
#[derive(Debug)]
pub struct Verdict {
    pub namespace: String,
    pub name: String,
    pub result: Result<(), Error>,
    /// Who the release would be acted on as (known once the configuration parses).
    pub identity: Option<Identity>,
    /// Secrets referenced but not in the files (not checked).
    pub unchecked_secrets: Vec<String>,
    /// `valuesFrom` sources not in the files (not checked).
    pub unchecked_values: Vec<String>,
}

impl Verdict {
    pub fn line(&self) -> String {
        match &self.result {
            Ok(()) => {
                let identity = self.identity.clone().unwrap_or_default();
                format!("ok {}/{} (runs as {identity})", self.namespace, self.name)
            }
            Err(e) => format!("error {}/{}: {e}", self.namespace, self.name),
        }
    }
}

pub fn main(args: CheckArgs) -> ExitCode {
    let manifests = match Manifests::load(&args.files) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_UNREADABLE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: internal: starting the runtime: {e}");
            return ExitCode::from(EXIT_UNREADABLE);
        }
    };
    let resolver = CredentialResolver::new(args.system_namespace.clone());
    let tenancy = TenancyPolicy {
        default_service_account: args.default_service_account.clone(),
        no_cross_namespace_releases: args.no_cross_namespace_releases,
    };

    if args.verbose {
        for c in &manifests.components {
            if c.spec.handler != componentkit::names::HELM_HANDLER {
                eprintln!(
                    "skip {}: handler is {:?}, not \"helm\"",
                    key(c),
                    c.spec.handler
                );
            }
        }
    }
    let mut invalid = 0usize;
    let mut total = 0usize;
    for (component, _) in manifests.helm_components() {
        total += 1;
        let verdict = runtime.block_on(check_component(
            &tenancy,
            &resolver,
            &manifests.secrets,
            &manifests.config_maps,
            component,
        ));
        if verdict.result.is_err() {
            invalid += 1;
        }
        println!("{}", verdict.line());
        if args.verbose {
            for s in &verdict.unchecked_secrets {
                eprintln!(
                    "note {}/{}: Secret {s} is not in the files; its contents were not checked",
                    verdict.namespace, verdict.name
                );
            }
            for s in &verdict.unchecked_values {
                eprintln!(
                    "note {}/{}: {s} is not in the files; its contents were not checked",
                    verdict.namespace, verdict.name
                );
            }
        }
    }
    if total == 0 {
        eprintln!("no helm Components found in the files");
    } else if args.verbose || invalid > 0 {
        eprintln!("{} valid, {invalid} invalid", total - invalid);
    }
    if invalid > 0 {
        ExitCode::from(EXIT_INVALID)
    } else {
        ExitCode::from(EXIT_OK)
    }
}

fn key(c: &Component) -> String {
    format!(
        "{}/{}",
        c.metadata.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE),
        c.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Validates one Component: its configuration, the tenancy rules (`tenancy`: the release
/// namespace, and who it would run as), the namespace rule of its Secret references, the
/// contents of the referenced Secrets that are in the files, and its `valuesFrom` with the
/// sources that are in the files.
pub async fn check_component(
    tenancy: &TenancyPolicy,
    resolver: &CredentialResolver,
    secrets: &FileSecretStore,
    config_maps: &FileConfigMapStore,
    component: &Component,
) -> Verdict {
    let namespace = component
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string());
    let name = component.metadata.name.clone().unwrap_or_default();
    let mut unchecked_secrets = Vec::new();
    let mut unchecked_values = Vec::new();
    let mut identity = None;
    let result = async {
        let null = serde_json::Value::Null;
        let mut config =
            HelmConfig::parse(component.spec.config.as_ref().unwrap_or(&null), &namespace)?;
        tenancy.check_release_namespace(&namespace, &config.release_namespace)?;
        identity = Some(
            tenancy
                .identity(config.service_account_name.as_ref(), &namespace)
                .identity,
        );
        // Values: read what the files hold, as the controller would; note the rest.
        let mut index = 0usize;
        config.values_from.retain(|r| {
            let present = match r.kind {
                ValuesKind::Secret => secrets.contains(&namespace, &r.name),
                ValuesKind::ConfigMap => config_maps.contains(&namespace, &r.name),
            };
            if !present {
                unchecked_values.push(format!(
                    "{} `{}` (field `valuesFrom[{index}]`)",
                    r.kind, r.name
                ));
            }
            index += 1;
            present
        });
        crate::values_from::resolve(secrets, config_maps, &namespace, &config).await?;
        resolver.check_namespaces(&namespace, &config.source)?;
        let mut spec = config.source.clone();
        // Resolve only what the files hold: a Secret that is elsewhere (in the cluster) is
        // not an error offline.
        let present = |spec: &SourceSpec, which: Which| -> bool {
            let single = only(spec, which);
            resolver
                .referenced_secrets(&namespace, &single)
                .iter()
                .any(|(ns, n)| secrets.contains(ns, n))
        };
        for which in Which::ALL {
            if which.is_set(&spec) && !present(&spec, which) {
                unchecked_secrets.extend(describe_refs(resolver, &namespace, &only(&spec, which)));
                clear(&mut spec, which);
            }
        }
        resolver.resolve(secrets, &namespace, &spec).await?;
        Ok(())
    }
    .await;
    Verdict {
        namespace,
        name,
        result,
        identity,
        unchecked_secrets,
        unchecked_values,
    }
}

/// One of a source's Secret references.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Auth,
    Ca,
    Verify,
}

impl Which {
    const ALL: [Which; 3] = [Which::Auth, Which::Ca, Which::Verify];

    fn is_set(self, spec: &SourceSpec) -> bool {
        match self {
            Which::Auth => spec.authentication().is_some(),
            Which::Ca => spec.tls().ca_secret_ref.is_some(),
            Which::Verify => spec.verify().is_some(),
        }
    }
}

/// A copy of `spec` keeping only one of its Secret references.
fn only(spec: &SourceSpec, which: Which) -> SourceSpec {
    let mut s = spec.clone();
    for other in Which::ALL.into_iter().filter(|w| *w != which) {
        clear(&mut s, other);
    }
    s
}

fn clear(spec: &mut SourceSpec, which: Which) {
    match (spec, which) {
        (SourceSpec::Oci(s), Which::Auth) => s.authentication = None,
        (SourceSpec::Http(s), Which::Auth) => s.authentication = None,
        (SourceSpec::Oci(s), Which::Ca) => s.tls.ca_secret_ref = None,
        (SourceSpec::Http(s), Which::Ca) => s.tls.ca_secret_ref = None,
        (SourceSpec::Oci(s), Which::Verify) => s.verify = None,
        (SourceSpec::Http(_), Which::Verify) => {}
    }
}

fn describe_refs(resolver: &CredentialResolver, namespace: &str, spec: &SourceSpec) -> Vec<String> {
    let refs = resolver.referenced_secrets(namespace, spec);
    let Some((_, name)) = refs.first() else {
        return Vec::new();
    };
    let namespaces: Vec<&str> = refs.iter().map(|(ns, _)| ns.as_str()).collect();
    vec![format!("`{name}` (namespaces {})", namespaces.join(", "))]
}
