//! Sharding on the real control plane (see `e2e.rs` for the set-up): two `helm-handler run`
//! processes, each with `--watch-label-selector` naming its shard and leader election on
//! (each shard elects on a Lease of its own), split 6 Components labelled round-robin: each
//! is claimed and deployed by the controller of its shard only (one revision, its
//! `claimedBy`, and the other controller never reconciles it), none is left unclaimed, and
//! a Component matching no shard is left alone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e_support;

use std::time::Duration;

use componentkit::crd::{Component, Phase};
use e2e_support::{Controller, Env, HELM_FINALIZER, delete_namespace, oci_config, wait};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, PostParams};
use test_support::RegistryMode;

const KEY: &str = "sharding.deployment-orchestrator.io/key";

#[cfg_attr(
    not(control_plane),
    ignore = "needs a Kubernetes control plane: scripts/dev-setup builds one (or set HELM_HANDLER_E2E_KUBECONFIG)"
)]
#[tokio::test(flavor = "multi_thread")]
async fn two_shards_split_the_components_with_no_double_claims() {
    let Some(env) = Env::start(
        "hh-e2e-shard",
        RegistryMode::Anonymous,
        ("shard", "0.1.0"),
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
    // Unique per run: the cluster is shared with other suites' namespaces.
    let shard = |i: usize| format!("s{}-{}", std::process::id(), ["a", "b"][i]);
    let selector = |i: usize| format!("{KEY}={}", shard(i));
    let mut controllers: Vec<Controller> = (0..2)
        .map(|i| {
            Controller::start_electing_with(
                controller_kc,
                ns,
                dir.path(),
                &shard(i),
                &["--watch-label-selector", &selector(i)],
            )
        })
        .collect();

    let names: Vec<String> = (0..6).map(|i| format!("sharded-{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let mut c = componentkit::memory::component(
            ns,
            name,
            "helm",
            oci_config(registry, name, ns, "charts/shard"),
        );
        c.metadata.labels = Some([(KEY.to_string(), shard(i % 2))].into());
        components.create(&PostParams::default(), &c).await.unwrap();
    }
    let mut stray = componentkit::memory::component(
        ns,
        "no-shard",
        "helm",
        oci_config(registry, "no-shard", ns, "charts/shard"),
    );
    stray.metadata.labels = Some([(KEY.to_string(), "nobody".to_string())].into());
    components
        .create(&PostParams::default(), &stray)
        .await
        .unwrap();

    wait("6 Components Ready", Duration::from_secs(400), || async {
        let list = components.list(&Default::default()).await.unwrap();
        list.items
            .iter()
            .filter(|c| c.phase() == Phase::Ready)
            .count()
            == 6
    })
    .await;

    for (i, name) in names.iter().enumerate() {
        let c: Component = components.get(name).await.unwrap();
        let status = c.status.clone().unwrap();
        assert_eq!(
            status.claimed_by.as_deref(),
            Some(shard(i % 2).as_str()),
            "{name}"
        );
        assert_eq!(
            c.metadata.finalizers.clone().unwrap_or_default(),
            vec![HELM_FINALIZER.to_string()],
            "{name}"
        );
        // One controller deployed it, once (two writers would race to a second revision).
        assert_eq!(
            c.handler_status().unwrap()["revision"].as_u64(),
            Some(1),
            "{name}"
        );
    }
    // Nobody's shard: never claimed.
    let c = components.get("no-shard").await.unwrap();
    assert!(c.metadata.finalizers.unwrap_or_default().is_empty());
    assert!(c.status.is_none_or(|s| s.phase.is_none()));

    // Each shard led on a Lease of its own.
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns);
    let holders: Vec<String> = leases
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|l| l.spec?.holder_identity)
        .collect();
    for i in 0..2 {
        assert!(holders.contains(&shard(i)), "{holders:?}");
    }

    // The other shard's Components never reached a controller's reconciler.
    for c in &mut controllers {
        c.kill();
    }
    for (i, c) in controllers.iter().enumerate() {
        let log = std::fs::read_to_string(&c.log).unwrap();
        for (j, name) in names.iter().enumerate() {
            let seen = log.contains(&format!("{ns}/{name}"));
            assert_eq!(seen, j % 2 == i, "shard {i} and {name}:\n{log}");
        }
        assert!(!log.contains(&format!("{ns}/no-shard")), "shard {i}");
    }
    delete_namespace(client, ns).await;
}
