//! Leader election with two real `helm-handler run` processes on the real control plane (see
//! `e2e.rs` for the set-up): one holds the Lease and works, the other waits; SIGKILL the
//! leader (no shutdown path, the Lease is not released) and the standby takes the Lease once
//! it expires, reports itself as leader on `/readyz` and `helm_handler_leader`, and finishes
//! the work.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e_support;

use std::time::{Duration, Instant};

use componentkit::crd::{Component, Phase};
use e2e_support::{Controller, Env, delete_namespace, oci_config, phase, wait};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use test_support::RegistryMode;

/// The Lease's validity (componentkit's default) and how often a standby retries.
const LEASE_DURATION: Duration = Duration::from_secs(15);
const RETRY: Duration = Duration::from_secs(2);

async fn holder(leases: &Api<Lease>) -> Option<String> {
    let name = componentkit::names::lease::default_name(componentkit::names::HELM_HANDLER);
    leases
        .get_opt(&name)
        .await
        .ok()??
        .spec?
        .holder_identity
        .filter(|h| !h.is_empty())
}

async fn claimed_ready_by(components: &Api<Component>, name: &str) -> Option<String> {
    let c = components.get_opt(name).await.ok()??;
    (c.phase() == Phase::Ready)
        .then(|| c.status.and_then(|s| s.claimed_by))
        .flatten()
}

#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn standby_takes_over_after_the_leader_is_killed() {
    let Some(env) = Env::start(
        "hh-e2e-lead",
        RegistryMode::Anonymous,
        ("lead", "0.1.0"),
        "charts",
    )
    .await
    else {
        return;
    };
    let Env {
        client,
        ns,
        dir,
        registry,
        components,
        controller_kc,
        ..
    } = &env;
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    let mut a = Controller::start_electing(controller_kc, ns, dir.path(), "replica-a");
    let mut b = Controller::start_electing(controller_kc, ns, dir.path(), "replica-b");

    wait("a Lease holder", Duration::from_secs(60), || async {
        holder(&leases).await.is_some()
    })
    .await;
    let first = holder(&leases).await.unwrap();
    let (leader, standby, standby_name) = match first.as_str() {
        "replica-a" => (&mut a, &mut b, "replica-b"),
        "replica-b" => (&mut b, &mut a, "replica-a"),
        other => panic!("unexpected Lease holder {other}"),
    };

    // Both report their role: the leader's gauge is 1, the standby's 0; both are ready.
    wait("roles reported", Duration::from_secs(30), || async {
        leader.leader_metric().await == Some(1) && standby.leader_metric().await == Some(0)
    })
    .await;
    let (code, body) = leader.get("/readyz").await.unwrap();
    assert_eq!((code, body.trim()), (200, "leader, controller running"));
    let (code, body) = standby.get("/readyz").await.unwrap();
    assert_eq!(code, 200, "a standby is ready to take over: {body}");
    assert!(body.starts_with("standby"), "{body}");

    // Only the leader works.
    let c = componentkit::memory::component(
        ns,
        "before",
        "helm",
        oci_config(registry, "before", ns, "charts/lead"),
    );
    components.create(&PostParams::default(), &c).await.unwrap();
    wait(
        "first Component Ready",
        Duration::from_secs(180),
        || async { claimed_ready_by(components, "before").await.is_some() },
    )
    .await;
    assert_eq!(
        claimed_ready_by(components, "before").await.as_deref(),
        Some(first.as_str())
    );

    // SIGKILL the leader: the Lease is not released, the standby waits for it to expire.
    leader.kill();
    let killed = Instant::now();
    wait(
        "standby holds the Lease",
        Duration::from_secs(60),
        || async { holder(&leases).await.as_deref() == Some(standby_name) },
    )
    .await;
    let takeover = killed.elapsed();
    eprintln!("takeover after SIGKILL: {takeover:?}");
    assert!(
        takeover <= LEASE_DURATION + RETRY + Duration::from_secs(3),
        "took {takeover:?}, the Lease lasts {LEASE_DURATION:?}"
    );
    wait("new leader reports it", Duration::from_secs(30), || async {
        standby.leader_metric().await == Some(1)
            && standby.get("/readyz").await.is_some_and(|(code, body)| {
                code == 200 && body.trim() == "leader, controller running"
            })
    })
    .await;

    // The new leader finishes the work: a new Component is claimed and deployed by it, and
    // the earlier one stays Ready.
    let c = componentkit::memory::component(
        ns,
        "after",
        "helm",
        oci_config(registry, "after", ns, "charts/lead"),
    );
    components.create(&PostParams::default(), &c).await.unwrap();
    wait(
        "second Component Ready",
        Duration::from_secs(180),
        || async { claimed_ready_by(components, "after").await.is_some() },
    )
    .await;
    assert_eq!(
        claimed_ready_by(components, "after").await.as_deref(),
        Some(standby_name)
    );
    assert_eq!(
        phase(components, "before").await.map(|(p, _)| p),
        Some(Phase::Ready)
    );
    delete_namespace(client, ns).await;
}
