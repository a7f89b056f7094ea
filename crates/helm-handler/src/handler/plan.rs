//! What `apply` does to a release, decided from three things: what the Component recorded
//! (its handler status: the release it deployed last), what helm recorded (the release's
//! newest revision) and what is desired. Pure, and tested with a table as
//! `componentkit::decision` is; `HelmHandler::apply` does the I/O and carries the plan out.

use super::RELEASE_DESCRIPTION_PREFIX;
use super::status::{DesiredState, HandlerStatus};
use crate::helm::{ReleaseInfo, ReleaseStatus};
use crate::metrics::ReleaseOperation;

/// The release this Component deployed last, against the desired one — the question
/// "same release as before?", answered once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Before<'a> {
    /// Nothing recorded: a first deployment (or a status lost).
    Nothing,
    /// The desired release (same name and namespace).
    Same(&'a HandlerStatus),
    /// Another name or namespace: the old release must go first.
    Moved(&'a HandlerStatus),
}

impl<'a> Before<'a> {
    pub fn of(previous: Option<&'a HandlerStatus>, desired: &DesiredState<'_>) -> Self {
        match previous {
            None => Before::Nothing,
            Some(p)
                if p.release_name == desired.release_name
                    && p.release_namespace == desired.release_namespace =>
            {
                Before::Same(p)
            }
            Some(p) => Before::Moved(p),
        }
    }

    /// The recorded release, when it is the desired one.
    pub fn same(self) -> Option<&'a HandlerStatus> {
        match self {
            Before::Same(p) => Some(p),
            _ => None,
        }
    }

    /// Whether the handler created the namespace the release now goes to (and may delete it
    /// when the release is removed): recorded for a release in the same namespace.
    pub fn namespace_created(self, desired: &DesiredState<'_>) -> bool {
        match self {
            Before::Same(p) | Before::Moved(p) => {
                p.namespace_created && p.release_namespace == desired.release_namespace
            }
            Before::Nothing => false,
        }
    }
}

/// What to do with the desired release once it is not pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseAction {
    /// The desired chart and values are deployed: no helm; check readiness and drift.
    Observe,
    /// A release of that name exists and another Component deployed it: taking it over
    /// would make two Components fight over it.
    Refuse { owner: String },
    /// `helm upgrade --install`.
    Deploy {
        operation: ReleaseOperation,
        /// helm 4 applies a new release server-side, and an existing one as it was applied.
        server_side_apply: bool,
    },
}

/// The plan for the desired release. `current` is helm's newest revision of it; `this` is
/// the Component (`namespace/name`) that helm's release description names as its owner.
pub fn plan(
    before: Before<'_>,
    current: Option<&ReleaseInfo>,
    desired: &DesiredState<'_>,
    this: &str,
) -> ReleaseAction {
    if let (Before::Same(prev), Some(cur)) = (before, current)
        && prev.same_desired_state(desired)
        && cur.status == ReleaseStatus::Deployed
    {
        return ReleaseAction::Observe;
    }
    if let Some(cur) = current
        && before.same().is_none()
        && let Some(owner) = cur.description.strip_prefix(RELEASE_DESCRIPTION_PREFIX)
        && owner != this
    {
        return ReleaseAction::Refuse {
            owner: owner.to_string(),
        };
    }
    ReleaseAction::Deploy {
        operation: match current {
            Some(_) => ReleaseOperation::upgrade,
            None => ReleaseOperation::install,
        },
        server_side_apply: current.is_none_or(|cur| cur.apply_method.as_deref() == Some("ssa")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::status::ChartStatus;

    const THIS: &str = "apps/web";

    fn desired() -> DesiredState<'static> {
        DesiredState {
            release_name: "web",
            release_namespace: "apps",
            chart_digest: "sha256:new",
            values_hash: "sha256:v",
        }
    }

    fn recorded(name: &str, namespace: &str, digest: &str) -> HandlerStatus {
        HandlerStatus {
            release_name: name.into(),
            release_namespace: namespace.into(),
            chart: ChartStatus {
                digest: digest.into(),
                ..ChartStatus::default()
            },
            values_hash: "sha256:v".into(),
            namespace_created: true,
            ..HandlerStatus::default()
        }
    }

    fn helm(status: ReleaseStatus, owner: &str, apply_method: Option<&str>) -> ReleaseInfo {
        ReleaseInfo {
            name: "web".into(),
            namespace: "apps".into(),
            revision: 3,
            status,
            description: format!("{RELEASE_DESCRIPTION_PREFIX}{owner}"),
            first_deployed: None,
            last_deployed: None,
            chart: None,
            notes: None,
            manifest: String::new(),
            apply_method: apply_method.map(str::to_string),
        }
    }

    fn deploy(operation: ReleaseOperation, server_side_apply: bool) -> ReleaseAction {
        ReleaseAction::Deploy {
            operation,
            server_side_apply,
        }
    }

    #[test]
    fn before_answers_same_release_once() {
        let d = desired();
        let same = recorded("web", "apps", "sha256:old");
        let renamed = recorded("old-web", "apps", "sha256:old");
        let moved = recorded("web", "other", "sha256:old");
        assert_eq!(Before::of(None, &d), Before::Nothing);
        assert_eq!(Before::of(Some(&same), &d), Before::Same(&same));
        assert_eq!(Before::of(Some(&renamed), &d), Before::Moved(&renamed));
        assert_eq!(Before::of(Some(&moved), &d), Before::Moved(&moved));
        // The namespace the handler created is still its own only where the release stays.
        assert!(Before::of(Some(&same), &d).namespace_created(&d));
        assert!(Before::of(Some(&renamed), &d).namespace_created(&d));
        assert!(!Before::of(Some(&moved), &d).namespace_created(&d));
        assert!(!Before::Nothing.namespace_created(&d));
    }

    #[test]
    fn plan_table() {
        use ReleaseOperation::{install, upgrade};
        use ReleaseStatus::{Deployed, Failed, Superseded};
        let d = desired();
        let unchanged = recorded("web", "apps", "sha256:new");
        let new_chart = recorded("web", "apps", "sha256:old");
        let renamed = recorded("old-web", "apps", "sha256:new");
        let ssa = Some("ssa");
        let csa = Some("csa");
        let cases: Vec<(
            &str,
            Option<&HandlerStatus>,
            Option<ReleaseInfo>,
            ReleaseAction,
        )> = vec![
            ("first install", None, None, deploy(install, true)),
            (
                "unchanged and deployed",
                Some(&unchanged),
                Some(helm(Deployed, THIS, ssa)),
                ReleaseAction::Observe,
            ),
            (
                "unchanged but failed: upgrade again",
                Some(&unchanged),
                Some(helm(Failed, THIS, ssa)),
                deploy(upgrade, true),
            ),
            (
                "unchanged but superseded (rolled back by hand)",
                Some(&unchanged),
                Some(helm(Superseded, THIS, ssa)),
                deploy(upgrade, true),
            ),
            (
                "unchanged but the release is gone: install",
                Some(&unchanged),
                None,
                deploy(install, true),
            ),
            (
                "new chart",
                Some(&new_chart),
                Some(helm(Deployed, THIS, ssa)),
                deploy(upgrade, true),
            ),
            (
                "client-side applied release stays client-side",
                Some(&new_chart),
                Some(helm(Deployed, THIS, csa)),
                deploy(upgrade, false),
            ),
            (
                "helm 3 release (no apply method)",
                Some(&new_chart),
                Some(helm(Deployed, THIS, None)),
                deploy(upgrade, false),
            ),
            (
                "another Component's release",
                None,
                Some(helm(Deployed, "team-b/web", ssa)),
                ReleaseAction::Refuse {
                    owner: "team-b/web".into(),
                },
            ),
            (
                "renamed onto another Component's release",
                Some(&renamed),
                Some(helm(Deployed, "team-b/web", ssa)),
                ReleaseAction::Refuse {
                    owner: "team-b/web".into(),
                },
            ),
            (
                "our own release, status lost: adopted",
                None,
                Some(helm(Deployed, THIS, ssa)),
                deploy(upgrade, true),
            ),
            (
                "a release helm made by hand (no owner): adopted",
                None,
                Some(ReleaseInfo {
                    description: "Install complete".into(),
                    ..helm(Deployed, THIS, ssa)
                }),
                deploy(upgrade, true),
            ),
            (
                "recorded as ours: never refused",
                Some(&new_chart),
                Some(helm(Deployed, "team-b/web", ssa)),
                deploy(upgrade, true),
            ),
        ];
        for (name, previous, current, expected) in cases {
            let before = Before::of(previous, &d);
            assert_eq!(plan(before, current.as_ref(), &d, THIS), expected, "{name}");
        }
    }
}
