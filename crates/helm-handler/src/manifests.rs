//! Reading multi-document Kubernetes YAML files (Components, Secrets and ConfigMaps) for the
//! offline commands (`check`, `pull`, `template`).
//!
//! Components (`deployment-orchestrator.io/v1alpha1`, kind `Component`), Secrets and
//! ConfigMaps (sources of `valuesFrom`) are kept;
//! every other kind is ignored, and `kind: List` is unpacked. A document without
//! `metadata.namespace` is in `default`, as `kubectl apply` would put it. Malformed YAML is
//! an error naming the file and the line.

use std::path::{Path, PathBuf};

use componentkit::crd::Component;
use componentkit::names;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use serde_json::Value;

use crate::config_maps::FileConfigMapStore;
use crate::credentials::FileSecretStore;
use crate::error::Error;

/// The namespace of an object that names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Where a Component was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub path: PathBuf,
    /// 1-based line of the document's first line.
    pub line: usize,
}

/// The Components, Secrets and ConfigMaps of a set of YAML files.
#[derive(Debug, Default)]
pub struct Manifests {
    /// In file order. `metadata.namespace` is always set.
    pub components: Vec<Component>,
    /// Parallel to `components`.
    pub origins: Vec<Origin>,
    pub secrets: FileSecretStore,
    pub config_maps: FileConfigMapStore,
}

impl Manifests {
    /// Reads every file, in order. A directory stands for its `*.yaml`, `*.yml` and
    /// `*.json` files (not recursive, sorted by name); `-` is standard input.
    pub fn load(paths: &[PathBuf]) -> Result<Manifests, Error> {
        let mut out = Manifests::default();
        for path in paths {
            if path.as_os_str() == "-" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                    .map_err(|e| Error::io(path, e))?;
                out.add_str(Path::new("<stdin>"), &text)?;
            } else if path.is_dir() {
                for file in manifest_files(path)? {
                    let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
                    out.add_str(&file, &text)?;
                }
            } else {
                let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
                out.add_str(path, &text)?;
            }
        }
        Ok(out)
    }

    /// Adds the objects of one file's text; `path` is used in messages.
    pub fn add_str(&mut self, path: &Path, text: &str) -> Result<(), Error> {
        for (start_line, doc) in split_documents(text) {
            // kubectl's reading (sigs.k8s.io/yaml), bounded: see chart_source::yaml.
            let value = chart_source::yaml::from_str_value(&doc).map_err(|e| Error::Manifest {
                path: path.to_path_buf(),
                line: Some(e.line.map_or(start_line, |l| start_line + l - 1)),
                message: format!("invalid YAML: {}", e.message),
            })?;
            self.add_value(path, start_line, value)?;
        }
        Ok(())
    }

    fn add_value(&mut self, path: &Path, line: usize, value: Value) -> Result<(), Error> {
        let err = |message: String| Error::Manifest {
            path: path.to_path_buf(),
            line: Some(line),
            message,
        };
        let obj = match &value {
            Value::Null => return Ok(()),
            Value::Object(o) => o,
            _ => {
                return Err(err(
                    "a document must be a Kubernetes object (a mapping with apiVersion and kind)"
                        .into(),
                ));
            }
        };
        let api_version = obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        match (api_version, kind) {
            ("v1", "List") => {
                if let Some(Value::Array(items)) = obj.get("items") {
                    for item in items.clone() {
                        self.add_value(path, line, item)?;
                    }
                }
                Ok(())
            }
            (names::API_VERSION, names::KIND) => {
                let mut component: Component = serde_json::from_value(value)
                    .map_err(|e| err(format!("invalid Component: {e}")))?;
                if component.metadata.name.as_deref().is_none_or(str::is_empty) {
                    return Err(err("Component without metadata.name".into()));
                }
                component
                    .metadata
                    .namespace
                    .get_or_insert_with(|| DEFAULT_NAMESPACE.to_string());
                self.components.push(component);
                self.origins.push(Origin {
                    path: path.to_path_buf(),
                    line,
                });
                Ok(())
            }
            ("v1", "Secret") => {
                let name = obj
                    .get("metadata")
                    .and_then(|m| m.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if name.is_empty() {
                    return Err(err("Secret without metadata.name".into()));
                }
                // The deserialiser's message could quote a value: say where, not what.
                let secret: Secret = serde_json::from_value(value).map_err(|_| {
                    err(format!(
                        "Secret `{name}` is not a valid Secret (`data` values must be base64 strings, `stringData` values strings)"
                    ))
                })?;
                self.secrets.insert_secret(&secret, DEFAULT_NAMESPACE);
                Ok(())
            }
            ("v1", "ConfigMap") => {
                let config_map: ConfigMap = serde_json::from_value(value).map_err(|e| {
                    err(format!(
                        "invalid ConfigMap (`data` values must be strings): {e}"
                    ))
                })?;
                // Without a name it cannot be referenced (and kubectl would refuse it).
                if config_map
                    .metadata
                    .name
                    .as_deref()
                    .is_none_or(str::is_empty)
                {
                    return Ok(());
                }
                self.config_maps
                    .insert_config_map(&config_map, DEFAULT_NAMESPACE);
                Ok(())
            }
            _ if api_version.is_empty() || kind.is_empty() => Err(err(
                "a document must be a Kubernetes object with `apiVersion` and `kind`".into(),
            )),
            _ => Ok(()),
        }
    }

    /// The Components whose `spec.handler` is `helm`.
    pub fn helm_components(&self) -> impl Iterator<Item = (&Component, &Origin)> {
        self.components
            .iter()
            .zip(&self.origins)
            .filter(|(c, _)| c.spec.handler == names::HELM_HANDLER)
    }
}

/// The manifest files of a directory, sorted.
fn manifest_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let is_manifest = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
        if is_manifest && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Splits a YAML stream at `---` / `...` document markers, keeping each document's 1-based
/// first line so parse errors point into the file.
fn split_documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut start = 1;
    for (i, line) in text.lines().enumerate() {
        let is_marker = line == "---"
            || line.starts_with("--- ")
            || line.starts_with("---\t")
            || line == "..."
            || line.starts_with("... ");
        if is_marker {
            if !current.trim().is_empty() {
                docs.push((start, std::mem::take(&mut current)));
            }
            current.clear();
            // `--- value` carries content on the marker line.
            let rest = line.get(3..).unwrap_or_default();
            if line.starts_with("---") && !rest.trim().is_empty() {
                current.push_str(rest);
                current.push('\n');
                start = i + 1;
            } else {
                start = i + 2;
            }
            continue;
        }
        if current.is_empty() && line.trim().is_empty() {
            start = i + 2;
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    if !current.trim().is_empty() {
        docs.push((start, current));
    }
    docs
}

/// serde_norway appends ` at line L column C`; the caller reports the file line instead.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_keep_their_lines() {
        let text = "a: 1\n---\n\nb: 2\nc: 3\n--- \n...\n---\nd: 4\n";
        let docs = split_documents(text);
        assert_eq!(
            docs,
            vec![
                (1, "a: 1\n".to_string()),
                (4, "b: 2\nc: 3\n".to_string()),
                (9, "d: 4\n".to_string())
            ]
        );
    }

    #[test]
    fn malformed_yaml_names_file_and_line() {
        let mut m = Manifests::default();
        let text = "apiVersion: v1\nkind: ConfigMap\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: [x\n";
        let err = m.add_str(Path::new("f.yaml"), text).unwrap_err();
        let s = err.to_string();
        assert!(s.starts_with("config: f.yaml:"), "{s}");
        match err {
            Error::Manifest { line: Some(l), .. } => assert!((4..=7).contains(&l), "{s}"),
            other => panic!("{other:?}"),
        }
    }
}
