//! OCI chart references: `oci://REGISTRY[:PORT]/PATH/NAME[:TAG][@sha256:HEX]`.
//!
//! An [`OciReference`] is valid by construction: once parsed, the registry, repository,
//! tag and digest follow the OCI distribution grammar, so nothing downstream re-checks them.
//! Helm stores a SemVer `1.2.3+build` as the OCI tag `1.2.3_build`; both spellings parse,
//! the tag is kept in its OCI form and [`OciReference::version`] gives the Helm form.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::Error;

const SCHEME: &str = "oci://";
const MAX_TAG_LEN: usize = 128;
const MAX_REPOSITORY_LEN: usize = 255;

/// A parsed, valid OCI chart reference.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OciReference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl OciReference {
    /// Parses a reference; the error says what is wrong with it.
    pub fn parse(input: &str) -> Result<Self, Error> {
        parse(input).map_err(|reason| Error::InvalidReference {
            input: input.to_string(),
            reason,
        })
    }

    /// `host` or `host:port`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The registry host without the port.
    pub fn host(&self) -> &str {
        split_port(&self.registry).0
    }

    /// `path/name`, without the registry.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The chart name: the last path component.
    pub fn name(&self) -> &str {
        self.repository
            .rsplit('/')
            .next()
            .unwrap_or(&self.repository)
    }

    /// The tag in its OCI form (`1.2.3_build`).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The tag read as a Helm chart version (`_` → `+`).
    pub fn version(&self) -> Option<String> {
        self.tag
            .as_deref()
            .map(crate::chart_identity::version_from_tag)
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository[:tag][@digest]`, the form oci-client and docker use.
    pub fn without_scheme(&self) -> String {
        let s = self.to_string();
        s[SCHEME.len()..].to_string()
    }
}

impl FromStr for OciReference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OciReference::parse(s)
    }
}

impl fmt::Display for OciReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for OciReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OciReference({self})")
    }
}

/// `HOST` and `PORT` of a registry already checked by [`registry_parts`].
fn split_port(registry: &str) -> (&str, Option<&str>) {
    registry_parts(registry).unwrap_or((registry, None))
}

/// Splits a registry that is exactly `HOST` or `HOST:PORT`: HOST a DNS name, an IPv4
/// address or a bracketed IPv6 address, PORT 1-65535. Anything else (text after `]`, a
/// second `:`, control characters) is refused: the registry becomes a URL's authority, so
/// what is accepted here must name one host to every HTTP client.
fn registry_parts(registry: &str) -> Result<(&str, Option<&str>), String> {
    if registry.is_empty() {
        return Err("missing registry host".into());
    }
    let (host, port) = if registry.starts_with('[') {
        let Some(end) = registry.find(']') else {
            return Err(format!(
                "registry `{}` has no closing `]`",
                registry.escape_debug()
            ));
        };
        let (host, rest) = registry.split_at(end + 1);
        if host[1..end].parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!(
                "registry host `{}` is not a valid IPv6 address",
                host.escape_debug()
            ));
        }
        match rest.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if rest.is_empty() => (host, None),
            None => {
                return Err(format!(
                    "registry `{}` has `{}` after the IPv6 address (expected HOST or HOST:PORT)",
                    registry.escape_debug(),
                    rest.escape_debug()
                ));
            }
        }
    } else {
        let (host, port) = match registry.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (registry, None),
        };
        validate_host_name(host)?;
        (host, port)
    };
    if let Some(port) = port {
        validate_port(port)?;
    }
    Ok((host, port))
}

/// A DNS name (labels of letters, digits and inner `-`) or an IPv4 address. A name whose
/// last label is a number must be an IPv4 address: URL parsers read it as one.
fn validate_host_name(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("missing registry host".into());
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if !host.split('.').all(label_ok) {
        return Err(format!(
            "registry host `{}` is not a valid host name",
            host.escape_debug()
        ));
    }
    // The URL standard's "ends in a number": decimal digits, or `0x` and hex digits (even
    // none: `0x` is 0.0.0.0 to a URL parser; fuzzing found this).
    let number = |l: &str| {
        let hex = l.strip_prefix("0x").or_else(|| l.strip_prefix("0X"));
        match hex {
            Some(h) => h.bytes().all(|b| b.is_ascii_hexdigit()),
            None => l.bytes().all(|b| b.is_ascii_digit()),
        }
    };
    let last_is_number = host.rsplit('.').next().is_some_and(number);
    if last_is_number && host.parse::<std::net::Ipv4Addr>().is_err() {
        return Err(format!(
            "registry host `{host}` ends in a number but is not an IPv4 address"
        ));
    }
    // What the HTTP clients will make of it (IDNA: `xn--` labels must be valid punycode).
    url::Host::parse(host)
        .map_err(|e| format!("registry host `{host}` is not a valid host name: {e}"))?;
    Ok(())
}

/// 1 to 5 digits, 1-65535.
fn validate_port(port: &str) -> Result<(), String> {
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "registry port `{}` is not a number",
            port.escape_debug()
        ));
    }
    match port.parse::<u16>() {
        Ok(p) if p >= 1 && port.len() <= 5 => Ok(()),
        _ => Err(format!("registry port `{port}` is out of range (1-65535)")),
    }
}

fn parse(input: &str) -> Result<OciReference, String> {
    if input.trim() != input {
        return Err("leading or trailing whitespace".into());
    }
    let Some(rest) = input.strip_prefix(SCHEME) else {
        return Err("must start with oci://".into());
    };
    let Some((registry, path)) = rest.split_once('/') else {
        return Err(
            "missing repository path after the registry (oci://REGISTRY/PATH/NAME:TAG)".into(),
        );
    };
    registry_parts(registry)?;

    // Split off the digest, then the tag (a colon after the last slash).
    let (path, digest) = match path.split_once('@') {
        Some((p, d)) => {
            let digest = d
                .parse::<Digest>()
                .map_err(|e| format!("invalid digest `{d}`: {e}"))?;
            (p, Some(digest))
        }
        None => (path, None),
    };
    let last_slash = path.rfind('/').map_or(0, |i| i + 1);
    let (repository, tag) = match path[last_slash..].find(':') {
        Some(i) => {
            let (repo, tag) = path.split_at(last_slash + i);
            (repo, Some(&tag[1..]))
        }
        None => (path, None),
    };
    validate_repository(repository)?;
    let tag = match tag {
        Some(t) => Some(normalize_tag(t)?),
        None => None,
    };
    if tag.is_none() && digest.is_none() {
        return Err("missing version: add a tag (:1.2.3) or a digest (@sha256:…)".into());
    }
    Ok(OciReference {
        registry: registry.to_string(),
        repository: repository.to_string(),
        tag,
        digest,
    })
}

/// OCI distribution: components `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` joined by `/`.
fn validate_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() {
        return Err("missing chart name".into());
    }
    if repository.len() > MAX_REPOSITORY_LEN {
        return Err(format!(
            "repository path is longer than {MAX_REPOSITORY_LEN} characters"
        ));
    }
    for component in repository.split('/') {
        if component.is_empty() {
            return Err("empty path component (`//` or a trailing `/`)".into());
        }
        if component.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(format!("repository path `{repository}` must be lowercase"));
        }
        let bytes = component.as_bytes();
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
            return Err(format!(
                "path component `{component}` must start and end with a letter or digit"
            ));
        }
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if alnum(b) {
                i += 1;
                continue;
            }
            // A separator run: `.`, `_`, `__`, or one or more `-`.
            let start = i;
            while i < bytes.len() && !alnum(bytes[i]) {
                i += 1;
            }
            let sep = &component[start..i];
            let valid = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-');
            if !valid {
                return Err(format!(
                    "path component `{component}` has an invalid character sequence `{sep}`"
                ));
            }
        }
    }
    Ok(())
}

/// OCI tag `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`, with Helm's `+` accepted and stored as `_`.
fn normalize_tag(tag: &str) -> Result<String, String> {
    if tag.is_empty() {
        return Err("missing version after `:`".into());
    }
    let tag = crate::chart_identity::tag_from_version(tag);
    if tag.len() > MAX_TAG_LEN {
        return Err(format!("tag is longer than {MAX_TAG_LEN} characters"));
    }
    let first = tag.as_bytes()[0];
    if !(first.is_ascii_alphanumeric() || first == b'_') {
        return Err(format!(
            "tag `{tag}` must start with a letter, digit or `_`"
        ));
    }
    if let Some(bad) = tag
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!("tag `{tag}` has an invalid character `{bad}`"));
    }
    Ok(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_the_usual_forms() {
        let r = OciReference::parse("oci://ghcr.io/acme/charts/app:1.2.3").unwrap();
        assert_eq!(r.registry(), "ghcr.io");
        assert_eq!(r.repository(), "acme/charts/app");
        assert_eq!(r.name(), "app");
        assert_eq!(r.tag(), Some("1.2.3"));
        assert!(r.digest().is_none());

        let r = OciReference::parse("oci://localhost:5000/app:0.1.0").unwrap();
        assert_eq!(r.registry(), "localhost:5000");
        assert_eq!(r.host(), "localhost");

        let r = OciReference::parse(&format!("oci://127.0.0.1:5000/a/b/app@sha256:{HEX}")).unwrap();
        assert!(r.tag().is_none());
        assert_eq!(r.digest().unwrap().hex(), HEX);

        let r = OciReference::parse(&format!("oci://r.io/app:1.0.0@sha256:{HEX}")).unwrap();
        assert_eq!(r.tag(), Some("1.0.0"));
        assert!(r.digest().is_some());
    }

    #[test]
    fn build_metadata_both_spellings() {
        let plus = OciReference::parse("oci://r.io/app:1.2.3+build.1").unwrap();
        let under = OciReference::parse("oci://r.io/app:1.2.3_build.1").unwrap();
        assert_eq!(plus, under);
        assert_eq!(plus.tag(), Some("1.2.3_build.1"));
        assert_eq!(plus.version().as_deref(), Some("1.2.3+build.1"));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "oci://ghcr.io/acme/charts/app:1.2.3",
            "oci://localhost:5000/app:0.1.0_b",
            &format!("oci://r.io/x/app:1.0.0@sha256:{HEX}"),
            &format!("oci://[::1]:5000/app@sha256:{HEX}"),
        ] {
            let r = OciReference::parse(s).unwrap();
            assert_eq!(r.to_string(), s);
            assert_eq!(OciReference::parse(&r.to_string()).unwrap(), r);
        }
    }

    #[test]
    fn registry_is_exactly_host_or_host_and_port() {
        let accepted = [
            ("oci://[::1]/a:1", "[::1]", "[::1]"),
            ("oci://[::1]:5000/a:1", "[::1]:5000", "[::1]"),
            (
                "oci://[2001:db8::8a2e:370:7334]:443/a:1",
                "[2001:db8::8a2e:370:7334]:443",
                "[2001:db8::8a2e:370:7334]",
            ),
            (
                "oci://[::ffff:10.0.0.1]/a:1",
                "[::ffff:10.0.0.1]",
                "[::ffff:10.0.0.1]",
            ),
            ("oci://10.0.0.1:1/a:1", "10.0.0.1:1", "10.0.0.1"),
            ("oci://localhost:65535/a:1", "localhost:65535", "localhost"),
            (
                "oci://my-registry.example.com/a:1",
                "my-registry.example.com",
                "my-registry.example.com",
            ),
            ("oci://r2d2.io/a:1", "r2d2.io", "r2d2.io"),
        ];
        for (input, registry, host) in accepted {
            let r = OciReference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!((r.registry(), r.host()), (registry, host), "{input}");
            assert_eq!(r.to_string(), input);
        }
        let refused = [
            ("oci://[::1]x/a:1", "after the IPv6 address"),
            ("oci://[::1]0:5000/a:1", "after the IPv6 address"),
            ("oci://[::1]\0/a:1", "after the IPv6 address"),
            ("oci://[::1];/a:1", "after the IPv6 address"),
            ("oci://[::1]]:5000/a:1", "after the IPv6 address"),
            ("oci://[::1]:/a:1", "port `` is not a number"),
            ("oci://[::1]:0/a:1", "out of range"),
            ("oci://[::1]:65536/a:1", "out of range"),
            ("oci://[::1]:005000/a:1", "out of range"),
            ("oci://[::1:5000/a:1", "no closing `]`"),
            ("oci://[]/a:1", "not a valid IPv6 address"),
            ("oci://[1.2.3.4]/a:1", "not a valid IPv6 address"),
            ("oci://[::1%eth0]/a:1", "not a valid IPv6 address"),
            ("oci://::1/a:1", "missing registry host"),
            ("oci://host:5000:1/a:1", "port `5000:1` is not a number"),
            ("oci://host\0:5000/a:1", "not a valid host name"),
            ("oci://ho;st/a:1", "not a valid host name"),
            ("oci://host:5000;x/a:1", "is not a number"),
            ("oci://host:+80/a:1", "is not a number"),
            ("oci://:5000/a:1", "missing registry host"),
            ("oci://host./a:1", "not a valid host name"),
            ("oci://-host/a:1", "not a valid host name"),
            ("oci://1.2.3.999/a:1", "not an IPv4 address"),
            ("oci://1.2.3.4.5/a:1", "not an IPv4 address"),
            ("oci://010.0.0.1/a:1", "not an IPv4 address"),
            ("oci://user@host/a:1", "not a valid host name"),
            ("oci://xn--a.io/a:1", "not a valid host name"),
            ("oci://0x/a:1", "not an IPv4 address"),
            ("oci://r.0X1f/a:1", "not an IPv4 address"),
        ];
        for (input, expected) in refused {
            let err = OciReference::parse(input).unwrap_err();
            assert_eq!(err.category(), crate::ErrorCategory::Config, "{input:?}");
            let text = err.to_string();
            assert!(
                text.contains(expected),
                "{input:?}: expected `{expected}` in `{text}`"
            );
            assert!(text.contains(input), "names the reference: {text}");
        }
    }

    #[test]
    fn rejections_say_what_is_wrong() {
        let cases = [
            ("ghcr.io/acme/app:1.0.0", "oci://"),
            ("oci://ghcr.io/acme/app", "missing version"),
            ("oci://ghcr.io:abc/app:1.0.0", "port `abc` is not a number"),
            ("oci://ghcr.io:99999/app:1.0.0", "out of range"),
            ("oci://ghcr.io/Acme/app:1.0.0", "lowercase"),
            ("oci://ghcr.io/app:", "missing version"),
            ("oci://ghcr.io/app@sha256:abc", "invalid digest"),
            ("oci://ghcr.io/app:1.0.0@md5:abc", "invalid digest"),
            ("oci://ghcr.io", "missing repository"),
            ("oci:///app:1.0", "missing registry"),
            ("oci://ghcr.io//app:1.0", "empty path"),
            ("oci://ghcr.io/app:1.0 ", "whitespace"),
            ("oci://ghcr.io/a..b:1.0", "invalid character sequence"),
            ("oci://ghcr.io/app:-1.0", "must start with"),
            ("oci://gh_cr.io/app:1.0", "not a valid host name"),
        ];
        for (input, expected) in cases {
            let err = OciReference::parse(input).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{input}: expected `{expected}` in `{err}`"
            );
            assert!(
                err.contains(input.trim()),
                "error names the reference: {err}"
            );
        }
    }
}
