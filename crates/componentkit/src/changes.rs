//! Which watch events of a related object are real changes.
//!
//! A watch relists on every start, leader change and `410 Gone`, replaying every object it
//! already knew. A related-object change pokes its Components past their backoff, so only a
//! real change may poke: a new resourceVersion, a creation after the first list, or a
//! deletion (also one that happened while the watch was down).

use std::collections::{HashMap, HashSet};

use kube::ResourceExt;
use kube::runtime::watcher::Event;

type Key = (String, String);

/// Remembers the resourceVersion of every object a watch has seen.
#[derive(Debug, Default)]
pub struct ChangeFilter {
    versions: HashMap<Key, String>,
    /// Set once the first list completed: objects listed after that are news.
    listed_once: bool,
    /// Keys seen during the current relist (to find objects deleted while down).
    relisted: Option<HashSet<Key>>,
}

/// A real change to an object: its namespace and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub namespace: String,
    pub name: String,
}

impl ChangeFilter {
    pub fn new() -> Self {
        Self::default()
    }

    /// The real changes `event` carries.
    pub fn changes<K: kube::Resource>(&mut self, event: &Event<K>) -> Vec<Changed> {
        match event {
            Event::Init => {
                self.relisted = Some(HashSet::new());
                Vec::new()
            }
            Event::InitApply(obj) => {
                let key = key(obj);
                if let Some(seen) = self.relisted.as_mut() {
                    seen.insert(key.clone());
                }
                let rv = obj.resource_version().unwrap_or_default();
                let changed = match self.versions.insert(key.clone(), rv.clone()) {
                    Some(previous) => previous != rv,
                    None => self.listed_once,
                };
                changed.then(|| changed_of(key)).into_iter().collect()
            }
            Event::InitDone => {
                let seen = self.relisted.take().unwrap_or_default();
                let gone: Vec<Key> = self
                    .versions
                    .keys()
                    .filter(|k| !seen.contains(*k))
                    .cloned()
                    .collect();
                for k in &gone {
                    self.versions.remove(k);
                }
                self.listed_once = true;
                gone.into_iter().map(changed_of).collect()
            }
            Event::Apply(obj) => {
                let key = key(obj);
                let rv = obj.resource_version().unwrap_or_default();
                match self.versions.insert(key.clone(), rv.clone()) {
                    Some(previous) if previous == rv => Vec::new(),
                    _ => vec![changed_of(key)],
                }
            }
            Event::Delete(obj) => {
                let key = key(obj);
                self.versions.remove(&key);
                vec![changed_of(key)]
            }
        }
    }
}

fn key<K: kube::Resource>(obj: &K) -> Key {
    (obj.namespace().unwrap_or_default(), obj.name_any())
}

fn changed_of((namespace, name): Key) -> Changed {
    Changed { namespace, name }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::ObjectMeta;

    fn s(name: &str, rv: &str) -> Secret {
        Secret {
            metadata: ObjectMeta {
                namespace: Some("ns".into()),
                name: Some(name.into()),
                resource_version: Some(rv.into()),
                ..ObjectMeta::default()
            },
            ..Secret::default()
        }
    }

    /// (event, the names it reports as changed), in order, through one filter.
    #[test]
    fn only_real_changes_pass() {
        let table: Vec<(Event<Secret>, Vec<&str>)> = vec![
            // First list: what exists is not news.
            (Event::Init, vec![]),
            (Event::InitApply(s("a", "1")), vec![]),
            (Event::InitApply(s("b", "1")), vec![]),
            (Event::InitApply(s("c", "1")), vec![]),
            (Event::InitDone, vec![]),
            // Live events.
            (Event::Apply(s("a", "2")), vec!["a"]),
            (Event::Apply(s("a", "2")), vec![]),
            (Event::Apply(s("d", "5")), vec!["d"]),
            (Event::Delete(s("d", "6")), vec!["d"]),
            // Relist (410, reconnect): unchanged objects are not news; changed, created and
            // deleted-while-down ones are.
            (Event::Init, vec![]),
            (Event::InitApply(s("a", "2")), vec![]),
            (Event::InitApply(s("b", "7")), vec!["b"]),
            (Event::InitApply(s("e", "8")), vec!["e"]),
            (Event::InitDone, vec!["c"]),
            (Event::Apply(s("c", "9")), vec!["c"]),
        ];
        let mut f = ChangeFilter::new();
        for (i, (event, want)) in table.iter().enumerate() {
            let got: Vec<String> = f.changes(event).into_iter().map(|c| c.name).collect();
            assert_eq!(got, *want, "row {i}: {event:?}");
        }
    }
}
