//! helm's version (`helm version --template {{.Version}}`), and the features it decides.

use std::fmt;

/// The oldest helm the engine drives (`upgrade --install -o json`, OCI-era flags).
pub const MINIMUM: HelmVersion = HelmVersion {
    major: 3,
    minor: 8,
    patch: 0,
};

/// A helm release version, e.g. `v4.1.4`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HelmVersion {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl HelmVersion {
    /// Parses `v3.17.2`, `3.17.2`, `v3.17.2+gabc`, `v4.0.0-rc.1` (pre-release/build ignored).
    pub fn parse(s: &str) -> Option<HelmVersion> {
        let s = s.trim();
        let s = s.strip_prefix('v').unwrap_or(s);
        let core = s.split(['-', '+']).next()?;
        let mut parts = core.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts.next().unwrap_or("0").parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(HelmVersion {
            major,
            minor,
            patch,
        })
    }

    /// `--dry-run=client` (a value for `--dry-run`) exists since helm 3.13.
    pub fn has_dry_run_modes(&self) -> bool {
        *self
            >= HelmVersion {
                major: 3,
                minor: 13,
                patch: 0,
            }
    }
}

impl fmt::Display for HelmVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let v = |s| HelmVersion::parse(s).unwrap();
        assert_eq!(v("v4.1.4").to_string(), "v4.1.4");
        assert_eq!(v("3.17.2+gcc0bbbd").to_string(), "v3.17.2");
        assert_eq!(v("v4.0.0-rc.1\n").to_string(), "v4.0.0");
        assert_eq!(v("v3.8").to_string(), "v3.8.0");
        assert!(HelmVersion::parse("Version.BuildInfo{...}").is_none());
        assert!(HelmVersion::parse("").is_none());
        assert!(HelmVersion::parse("v1.2.3.4").is_none());
        assert!(v("v3.7.2") < MINIMUM);
        assert!(v("v3.8.0") >= MINIMUM);
        assert!(v("v4.1.4") >= MINIMUM);
        assert!(!v("v3.12.9").has_dry_run_modes());
        assert!(v("v3.13.0").has_dry_run_modes());
    }
}
