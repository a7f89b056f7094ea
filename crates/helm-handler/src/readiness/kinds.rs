//! Per-kind readiness rules over an object's JSON (as `kubectl get -o json` shows it).

use serde_json::Value;

/// The state of one object, with a reason that does not name the object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Ready,
    Progressing(String),
    Failed(String),
}

/// Container waiting reasons that will not resolve by waiting.
const POD_FAILURE_REASONS: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
];

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

fn int_at(v: &Value, ptr: &str) -> Option<i64> {
    v.pointer(ptr).and_then(Value::as_i64)
}

/// A count from `status` (Kubernetes omits zero counts).
fn count(v: &Value, field: &str) -> i64 {
    int_at(v, &format!("/status/{field}")).unwrap_or(0)
}

/// No `status`, or an empty one: the controller has not looked at the object yet.
fn no_status(v: &Value) -> bool {
    match v.get("status") {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(_) => false,
    }
}

/// `spec.replicas`, defaulting to 1 like the API server.
fn spec_replicas(v: &Value) -> i64 {
    int_at(v, "/spec/replicas").unwrap_or(1)
}

/// The condition of a type in `status.conditions`.
fn condition<'a>(v: &'a Value, kind: &str) -> Option<&'a Value> {
    v.pointer("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

fn condition_is(v: &Value, kind: &str, status: &str) -> bool {
    condition(v, kind)
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
        == Some(status)
}

/// "reason: message" of a condition (either part may be absent).
fn describe(c: &Value) -> String {
    let reason = str_at(c, "/reason").unwrap_or("");
    let message = str_at(c, "/message").unwrap_or("");
    match (reason.is_empty(), message.is_empty()) {
        (false, false) => format!("{reason}: {message}"),
        (false, true) => reason.to_string(),
        (true, false) => message.to_string(),
        (true, true) => "no reason given".to_string(),
    }
}

/// Judges one object.
pub fn assess(v: &Value) -> State {
    if v.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        return State::Progressing("being deleted".into());
    }
    let group = str_at(v, "/apiVersion")
        .map(|a| a.rsplit_once('/').map(|(g, _)| g).unwrap_or(""))
        .unwrap_or("");
    let kind = str_at(v, "/kind").unwrap_or("");
    match (group, kind) {
        ("apps" | "extensions", "Deployment") => deployment(v),
        ("apps", "StatefulSet") => with_generation(v, statefulset),
        ("apps" | "extensions", "DaemonSet") => with_generation(v, daemonset),
        ("apps" | "extensions", "ReplicaSet") => with_generation(v, replicaset),
        ("batch", "Job") => job(v),
        ("", "Pod") => pod(v),
        ("", "PersistentVolumeClaim") => pvc(v),
        ("", "Service") => service(v),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(v),
        _ => generic(v),
    }
}

/// Progressing while the controller has not observed the latest spec.
fn generation_lag(v: &Value) -> Option<State> {
    let generation = int_at(v, "/metadata/generation")?;
    let observed = int_at(v, "/status/observedGeneration")?;
    (observed < generation).then(|| {
        State::Progressing(format!(
            "waiting for the controller to observe generation {generation} (observed {observed})"
        ))
    })
}

fn with_generation(v: &Value, rule: fn(&Value) -> State) -> State {
    generation_lag(v).unwrap_or_else(|| rule(v))
}

fn deployment(v: &Value) -> State {
    if v.pointer("/spec/paused").and_then(Value::as_bool) == Some(true) {
        return State::Ready;
    }
    if let Some(lag) = generation_lag(v) {
        return lag;
    }
    if let Some(c) = condition(v, "Progressing")
        && str_at(c, "/reason") == Some("ProgressDeadlineExceeded")
    {
        return State::Failed(format!("rollout failed: {}", describe(c)));
    }
    if no_status(v) {
        return State::Progressing("no status yet".into());
    }
    let want = spec_replicas(v);
    let updated = count(v, "updatedReplicas");
    let total = count(v, "replicas");
    let available = count(v, "availableReplicas");
    if updated < want {
        return State::Progressing(format!("{updated} of {want} replicas updated"));
    }
    if total > updated {
        return State::Progressing(format!(
            "{} old replicas pending termination",
            total - updated
        ));
    }
    if available < want {
        let mut why = format!("{available} of {want} updated replicas available");
        if let Some(c) = condition(v, "ReplicaFailure")
            && str_at(c, "/status") == Some("True")
        {
            why.push_str(&format!(" ({})", describe(c)));
        }
        return State::Progressing(why);
    }
    State::Ready
}

fn statefulset(v: &Value) -> State {
    let want = spec_replicas(v);
    let ready = count(v, "readyReplicas");
    let strategy = str_at(v, "/spec/updateStrategy/type").unwrap_or("RollingUpdate");
    if strategy == "RollingUpdate" {
        let partition = int_at(v, "/spec/updateStrategy/rollingUpdate/partition").unwrap_or(0);
        let expected_updated = (want - partition).max(0);
        let updated = count(v, "updatedReplicas");
        if updated < expected_updated {
            return State::Progressing(format!("{updated} of {expected_updated} replicas updated"));
        }
        if ready < want {
            return State::Progressing(format!("{ready} of {want} replicas ready"));
        }
        if partition == 0 {
            let current = str_at(v, "/status/currentRevision").unwrap_or("");
            let update = str_at(v, "/status/updateRevision").unwrap_or("");
            if current != update {
                return State::Progressing(format!(
                    "rolling update in progress (revision {current} → {update})"
                ));
            }
        }
        return State::Ready;
    }
    if ready < want {
        return State::Progressing(format!("{ready} of {want} replicas ready"));
    }
    State::Ready
}

fn daemonset(v: &Value) -> State {
    if no_status(v) {
        return State::Progressing("no status yet".into());
    }
    let desired = count(v, "desiredNumberScheduled");
    let strategy = str_at(v, "/spec/updateStrategy/type").unwrap_or("RollingUpdate");
    if strategy == "RollingUpdate" {
        let updated = count(v, "updatedNumberScheduled");
        if updated < desired {
            return State::Progressing(format!("{updated} of {desired} pods updated"));
        }
    }
    let ready = count(v, "numberReady");
    if ready < desired {
        return State::Progressing(format!("{ready} of {desired} pods ready"));
    }
    State::Ready
}

fn replicaset(v: &Value) -> State {
    let want = spec_replicas(v);
    let ready = count(v, "readyReplicas");
    let available = count(v, "availableReplicas");
    if ready.min(available) < want {
        let mut why = format!("{} of {want} replicas available", ready.min(available));
        if let Some(c) = condition(v, "ReplicaFailure")
            && str_at(c, "/status") == Some("True")
        {
            why.push_str(&format!(" ({})", describe(c)));
        }
        return State::Progressing(why);
    }
    State::Ready
}

fn job(v: &Value) -> State {
    if let Some(c) = condition(v, "Failed")
        && str_at(c, "/status") == Some("True")
    {
        return State::Failed(format!("job failed: {}", describe(c)));
    }
    if condition_is(v, "Complete", "True") {
        return State::Ready;
    }
    if v.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true) {
        return State::Ready;
    }
    let completions = int_at(v, "/spec/completions").unwrap_or(1);
    let succeeded = count(v, "succeeded");
    let active = count(v, "active");
    let failed = count(v, "failed");
    let mut why = format!("{succeeded} of {completions} completions, {active} active");
    if failed > 0 {
        why.push_str(&format!(", {failed} failed"));
    }
    State::Progressing(why)
}

fn pod(v: &Value) -> State {
    match str_at(v, "/status/phase") {
        Some("Succeeded") => return State::Ready,
        Some("Failed") => {
            let reason = str_at(v, "/status/reason").unwrap_or("");
            let message = str_at(v, "/status/message").unwrap_or("");
            let why = [reason, message]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(": ");
            return State::Failed(if why.is_empty() {
                "pod failed".into()
            } else {
                format!("pod failed: {why}")
            });
        }
        _ => {}
    }
    for list in ["initContainerStatuses", "containerStatuses"] {
        let Some(statuses) = v
            .pointer(&format!("/status/{list}"))
            .and_then(Value::as_array)
        else {
            continue;
        };
        for cs in statuses {
            let Some(waiting) = cs.pointer("/state/waiting") else {
                continue;
            };
            let reason = str_at(waiting, "/reason").unwrap_or("");
            if POD_FAILURE_REASONS.contains(&reason) {
                let container = str_at(cs, "/name").unwrap_or("?");
                let message = str_at(waiting, "/message").unwrap_or("");
                let mut why = format!("container {container}: {reason}");
                if !message.is_empty() {
                    why.push_str(&format!(": {message}"));
                }
                return State::Failed(why);
            }
        }
    }
    match condition(v, "Ready") {
        Some(c) if str_at(c, "/status") == Some("True") => State::Ready,
        Some(c) => State::Progressing(format!("not ready: {}", describe(c))),
        None => State::Progressing(format!(
            "not ready (phase {})",
            str_at(v, "/status/phase").unwrap_or("unknown")
        )),
    }
}

fn pvc(v: &Value) -> State {
    match str_at(v, "/status/phase") {
        Some("Bound") => State::Ready,
        Some("Lost") => State::Failed("claim lost its volume".into()),
        Some(phase) => State::Progressing(format!("{phase}, not bound yet")),
        None => State::Progressing("not bound yet".into()),
    }
}

fn service(v: &Value) -> State {
    if str_at(v, "/spec/type") != Some("LoadBalancer") {
        return State::Ready;
    }
    let has_ingress = v
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if has_ingress {
        State::Ready
    } else {
        State::Progressing("waiting for a load balancer address".into())
    }
}

fn crd(v: &Value) -> State {
    if let Some(c) = condition(v, "NamesAccepted")
        && str_at(c, "/status") == Some("False")
    {
        return State::Failed(format!("names not accepted: {}", describe(c)));
    }
    match condition(v, "Established") {
        Some(c) if str_at(c, "/status") == Some("True") => State::Ready,
        Some(c) => State::Progressing(format!("not established: {}", describe(c))),
        None => State::Progressing("not established yet".into()),
    }
}

/// A reason of a `Ready=False` condition that will not resolve by waiting.
fn failure_reason(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    [
        "fail",
        "error",
        "invalid",
        "denied",
        "forbidden",
        "unauthorized",
    ]
    .iter()
    .any(|w| r.contains(w))
}

fn generic(v: &Value) -> State {
    if let Some(c) = condition(v, "Stalled")
        && str_at(c, "/status") == Some("True")
    {
        return State::Failed(format!("stalled: {}", describe(c)));
    }
    let Some(ready) = condition(v, "Ready") else {
        return State::Ready;
    };
    if let Some(lag) = generation_lag(v) {
        return lag;
    }
    match str_at(ready, "/status") {
        Some("True") => State::Ready,
        Some("False") if failure_reason(str_at(ready, "/reason").unwrap_or("")) => {
            State::Failed(format!("not ready: {}", describe(ready)))
        }
        _ => State::Progressing(format!("not ready: {}", describe(ready))),
    }
}
