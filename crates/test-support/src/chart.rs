//! Charts made by the real helm: `helm create`, edited, `helm package`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::helm::{helm_command, run};

/// A chart to package; see [`Chart::package`].
#[derive(Debug, Clone)]
pub struct Chart {
    name: String,
    version: String,
    app_version: Option<String>,
    dependencies: Vec<Chart>,
    values_yaml: Option<String>,
    files: Vec<(PathBuf, String)>,
}

impl Chart {
    /// The chart `helm create NAME` makes, with `version`.
    pub fn new(name: &str, version: &str) -> Self {
        Self {
            name: name.to_owned(),
            version: version.to_owned(),
            app_version: None,
            dependencies: Vec::new(),
            values_yaml: None,
            files: Vec::new(),
        }
    }

    /// Same as [`Chart::new`].
    pub fn create(name: &str, version: &str) -> Self {
        Self::new(name, version)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// Sets `appVersion` (default: what `helm create` writes, `1.16.0`).
    pub fn app_version(mut self, app_version: &str) -> Self {
        self.app_version = Some(app_version.to_owned());
        self
    }

    /// Adds a subchart: packaged into `charts/` and declared in `dependencies` with its version.
    pub fn dependency(mut self, subchart: Chart) -> Self {
        self.dependencies.push(subchart);
        self
    }

    /// Replaces `values.yaml`.
    pub fn values_yaml(mut self, values: &str) -> Self {
        self.values_yaml = Some(values.to_owned());
        self
    }

    /// Writes (adds or replaces) a file in the chart, e.g. `templates/extra.yaml`.
    pub fn file(mut self, relative_path: &str, contents: &str) -> Self {
        self.files
            .push((PathBuf::from(relative_path), contents.to_owned()));
        self
    }

    /// Packages the chart into `out_dir` (created if missing); returns the `.tgz` path
    /// (`NAME-VERSION.tgz`, a `+` in the version kept as is).
    pub fn package(&self, out_dir: &Path) -> anyhow::Result<PathBuf> {
        std::fs::create_dir_all(out_dir)
            .with_context(|| format!("create {}", out_dir.display()))?;
        let work = tempfile::Builder::new().prefix("test-chart-").tempdir()?;
        let home = work.path().join("helm-home");
        let chart_dir = work.path().join(&self.name);
        run(
            helm_command(&home)
                .current_dir(work.path())
                .arg("create")
                .arg(&self.name),
            &format!("helm create {}", self.name),
        )?;
        if !self.dependencies.is_empty() {
            let charts = chart_dir.join("charts");
            for dep in &self.dependencies {
                dep.package(&charts)?;
            }
        }
        std::fs::write(chart_dir.join("Chart.yaml"), self.chart_yaml())?;
        if let Some(values) = &self.values_yaml {
            std::fs::write(chart_dir.join("values.yaml"), values)?;
        }
        for (rel, contents) in &self.files {
            if rel.is_absolute() || rel.components().any(|c| c.as_os_str() == "..") {
                bail!(
                    "chart file path must be relative inside the chart: {}",
                    rel.display()
                );
            }
            let path = chart_dir.join(rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, contents)?;
        }
        run(
            helm_command(&home)
                .arg("package")
                .arg(&chart_dir)
                .arg("-d")
                .arg(out_dir),
            &format!("helm package {}", self.name),
        )?;
        let tgz = out_dir.join(format!("{}-{}.tgz", self.name, self.version));
        if !tgz.is_file() {
            bail!("helm package did not write {}", tgz.display());
        }
        Ok(tgz)
    }

    fn chart_yaml(&self) -> String {
        let mut yaml = format!(
            "apiVersion: v2\nname: {}\ndescription: A test chart made by test-support\n\
             type: application\nversion: {}\nappVersion: {}\n",
            quote(&self.name),
            quote(&self.version),
            quote(self.app_version.as_deref().unwrap_or("1.16.0")),
        );
        if !self.dependencies.is_empty() {
            yaml.push_str("dependencies:\n");
            for dep in &self.dependencies {
                yaml.push_str(&format!(
                    "  - name: {}\n    version: {}\n",
                    quote(&dep.name),
                    quote(&dep.version)
                ));
            }
        }
        yaml
    }
}

/// A YAML double-quoted scalar (JSON strings are valid YAML).
fn quote(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}
