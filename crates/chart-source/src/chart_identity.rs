//! What a reference names (chart name, version) against what the located chart is.
//!
//! Helm uses a chart as it is: a chart mirrored under another repository name
//! (`oci://…/bitnami-redis:23.1` holding `redis` 23.1.1), a short tag, or an HTTP index
//! entry whose archive says otherwise are all rendered. So are they here; the difference is
//! reported ([`ReferenceMismatch`]) so that the controller can record and announce it.

use std::fmt;

/// An OCI tag cannot hold `+`: Helm stores version `1.2.3+build` as tag `1.2.3_build`.
pub fn version_from_tag(tag: &str) -> String {
    tag.replace('_', "+")
}

/// The OCI tag spelling of a Helm version (`+` → `_`).
pub fn tag_from_version(version: &str) -> String {
    version.replace('+', "_")
}

/// The chart name and version a reference asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requested {
    pub name: String,
    /// As a Helm version (`+`, not `_`); `None` for a digest-only reference.
    pub version: Option<String>,
}

impl Requested {
    /// What an OCI reference asks for: its last path component and its tag.
    pub fn oci(reference: &crate::OciReference) -> Self {
        Requested {
            name: reference.name().to_string(),
            version: reference.tag().map(version_from_tag),
        }
    }

    /// What the chart's `Chart.yaml` says, where it differs from this request.
    pub fn compare(&self, chart_name: &str, chart_version: &str) -> Option<ReferenceMismatch> {
        let name_differs = self.name != chart_name;
        let version_differs = self
            .version
            .as_deref()
            .is_some_and(|v| version_from_tag(v) != chart_version);
        (name_differs || version_differs).then(|| ReferenceMismatch {
            requested_name: self.name.clone(),
            requested_version: self.version.clone(),
            chart_name: chart_name.to_string(),
            chart_version: chart_version.to_string(),
        })
    }
}

/// The located chart is not named or versioned as its reference says (it is used anyway,
/// as helm uses it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferenceMismatch {
    pub requested_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_version: Option<String>,
    /// From the chart's `Chart.yaml`.
    pub chart_name: String,
    pub chart_version: String,
}

impl fmt::Display for ReferenceMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the chart is `{}` version {}; the reference names `{}`",
            self.chart_name, self.chart_version, self.requested_name
        )?;
        match &self.requested_version {
            Some(v) => write!(f, " version {v}"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(name: &str, version: Option<&str>) -> Requested {
        Requested {
            name: name.into(),
            version: version.map(str::to_string),
        }
    }

    #[test]
    fn differences_from_the_reference() {
        let table: &[(Requested, (&str, &str), bool)] = &[
            (req("redis", Some("23.1.1")), ("redis", "23.1.1"), false),
            (
                req("redis", Some("1.2.3+b.1")),
                ("redis", "1.2.3+b.1"),
                false,
            ),
            (
                req("redis", Some("1.2.3_b.1")),
                ("redis", "1.2.3+b.1"),
                false,
            ),
            (req("redis", None), ("redis", "23.1.1"), false),
            (
                req("bitnami-redis", Some("23.1.1")),
                ("redis", "23.1.1"),
                true,
            ),
            (req("redis", Some("23.1")), ("redis", "23.1.1"), true),
            (req("bitnami-redis", None), ("redis", "23.1.1"), true),
        ];
        for (requested, (name, version), differs) in table {
            let got = requested.compare(name, version);
            assert_eq!(got.is_some(), *differs, "{requested:?} vs {name} {version}");
            if let Some(m) = got {
                assert_eq!(m.chart_name, *name);
                assert_eq!(m.chart_version, *version);
            }
        }
        let m = req("bitnami-redis", Some("23.1"))
            .compare("redis", "23.1.1")
            .unwrap();
        assert_eq!(
            m.to_string(),
            "the chart is `redis` version 23.1.1; the reference names `bitnami-redis` version 23.1"
        );
    }

    #[test]
    fn tag_spelling_round_trips() {
        assert_eq!(version_from_tag("1.2.3_build.1"), "1.2.3+build.1");
        assert_eq!(tag_from_version("1.2.3+build.1"), "1.2.3_build.1");
    }
}
