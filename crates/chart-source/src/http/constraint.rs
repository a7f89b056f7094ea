//! Helm's version constraints: the semantics of Masterminds semver v3 (3.4), which Helm 3
//! and 4 use for `--version` and for `dependencies[].version`. Not Cargo's: `1.2.3` is
//! exact here (Cargo reads it as `^1.2.3`), `^0.0` is `>=0.0.0 <0.1.0`, and a bare partial
//! version such as `1.2` means `~1.2` (`>=1.2.0 <1.3.0`).
//!
//! Grammar (as Masterminds accepts it):
//! - OR groups separated by `||`; inside a group, comparators separated by spaces or a comma
//!   are ANDed.
//! - A comparator is an optional operator (`=`, `!=`, `>`, `<`, `>=`, `=>`, `<=`, `=<`, `~`,
//!   `~>`, `^`) followed by a version: `v?MAJOR[.MINOR[.PATCH]][-PRERELEASE][+BUILD]`, where
//!   MAJOR, MINOR and PATCH may be `x`, `X` or `*` (wildcards; a missing part is a wildcard).
//! - `A - B` (spaces around the hyphen) is `>= A, <= B`.
//!
//! Prereleases: a version with a prerelease (`1.3.0-rc.1`) matches an AND group only when a
//! comparator of that group carries a prerelease itself (`>=1.2.0-0 <2`, `^1.2.3-beta`);
//! then prereleases of any major.minor.patch are considered in semver order (this is where
//! Masterminds differs from npm, which limits them to the same major.minor.patch).
//!
//! Build metadata is ignored in comparisons.

use std::cmp::Ordering;
use std::fmt;

use semver::{BuildMetadata, Prerelease, Version};

/// A parsed Helm version constraint.
#[derive(Clone, PartialEq, Eq)]
pub struct Constraint {
    source: String,
    groups: Vec<Group>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    comparators: Vec<Comparator>,
    /// True when one comparator of the group has a prerelease: prerelease versions are then
    /// considered by every comparator of the group (Masterminds 3.4 behaviour).
    include_prerelease: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// No operator or `=`: exact, or `~` when the version has wildcards.
    TildeOrEqual,
    NotEqual,
    Greater,
    Less,
    GreaterEqual,
    LessEqual,
    Tilde,
    Caret,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Comparator {
    op: Op,
    version: Version,
    /// Some part was a wildcard or missing.
    dirty: bool,
    /// The minor (and so the patch) was a wildcard or missing.
    minor_dirty: bool,
    /// Only the patch was a wildcard or missing.
    patch_dirty: bool,
}

impl Constraint {
    /// Parses a constraint. The error says which part is wrong.
    pub fn parse(input: &str) -> Result<Constraint, String> {
        if input.len() > 1024 {
            return Err("a version constraint is at most 1024 characters".to_string());
        }
        let mut groups = Vec::new();
        for part in input.split("||") {
            let comparators = parse_group(part).map_err(|reason| {
                let shown = part.trim();
                if shown.is_empty() {
                    format!("invalid version constraint {input:?}: empty alternative")
                } else if shown == input.trim() {
                    format!("invalid version constraint {input:?}: {reason}")
                } else {
                    format!("invalid version constraint {input:?}: `{shown}`: {reason}")
                }
            })?;
            let include_prerelease = comparators.iter().any(|c| !c.version.pre.is_empty());
            groups.push(Group {
                comparators,
                include_prerelease,
            });
        }
        Ok(Constraint {
            source: input.to_string(),
            groups,
        })
    }

    /// The constraint as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Does `version` satisfy the constraint?
    pub fn matches(&self, version: &Version) -> bool {
        self.groups.iter().any(|group| {
            if !version.pre.is_empty() && !group.include_prerelease {
                return false;
            }
            group.comparators.iter().all(|c| c.matches(version))
        })
    }

    /// The highest version that satisfies the constraint (Helm picks the highest match).
    pub fn best_match<'a, I>(&self, versions: I) -> Option<&'a Version>
    where
        I: IntoIterator<Item = &'a Version>,
    {
        versions.into_iter().filter(|v| self.matches(v)).fold(
            None,
            |best: Option<&'a Version>, v| match best {
                Some(b) if b.cmp_precedence(v) != Ordering::Less => Some(b),
                _ => Some(v),
            },
        )
    }

    /// True when the constraint pins one exact version (no operator but `=`, no wildcard,
    /// one alternative): such a version needs no index scan beyond an equality lookup.
    pub fn exact_version(&self) -> Option<&Version> {
        match self.groups.as_slice() {
            [group] => match group.comparators.as_slice() {
                [c] if c.op == Op::TildeOrEqual && !c.dirty => Some(&c.version),
                _ => None,
            },
            _ => None,
        }
    }
}

impl fmt::Debug for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Constraint({:?})", self.source)
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl std::str::FromStr for Constraint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Constraint::parse(s)
    }
}

/// Characters that start an operator; they never occur inside a version.
fn is_op_char(c: char) -> bool {
    matches!(c, '=' | '!' | '<' | '>' | '~' | '^')
}

fn parse_op(s: &str) -> Result<(Op, &str), String> {
    const OPS: [(&str, Op); 11] = [
        ("!=", Op::NotEqual),
        (">=", Op::GreaterEqual),
        ("=>", Op::GreaterEqual),
        ("<=", Op::LessEqual),
        ("=<", Op::LessEqual),
        ("~>", Op::Tilde),
        (">", Op::Greater),
        ("<", Op::Less),
        ("=", Op::TildeOrEqual),
        ("~", Op::Tilde),
        ("^", Op::Caret),
    ];
    for (text, op) in OPS {
        if let Some(rest) = s.strip_prefix(text) {
            if rest.starts_with(is_op_char) {
                return Err(format!("unknown operator near `{s}`"));
            }
            return Ok((op, rest));
        }
    }
    Ok((Op::TildeOrEqual, s))
}

/// One AND group: comparators separated by whitespace or one comma; `A - B` ranges.
fn parse_group(text: &str) -> Result<Vec<Comparator>, String> {
    // Tokens: (had_operator, operator, version text, whitespace before the token).
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    if rest.is_empty() {
        return Err("empty".to_string());
    }
    let mut first = true;
    while !rest.is_empty() {
        if !first {
            // A separator is required between comparators: whitespace, or one comma.
            let trimmed = rest.trim_start();
            let had_space = trimmed.len() != rest.len();
            rest = trimmed;
            if rest.is_empty() {
                break;
            }
            if let Some(after_comma) = rest.strip_prefix(',') {
                rest = after_comma.trim_start();
            } else if !had_space {
                return Err(format!("expected a space or a comma before `{rest}`"));
            }
            if rest.is_empty() {
                return Err("a comparator is missing after the separator".to_string());
            }
        }
        first = false;
        let op_start = rest;
        let (op, after_op) = parse_op(rest)?;
        let had_op = after_op.len() != op_start.len();
        let after_op = after_op.trim_start();
        let end = after_op
            .find(|c: char| c.is_whitespace() || c == ',' || is_op_char(c))
            .unwrap_or(after_op.len());
        let (version_text, after_version) = after_op.split_at(end);
        if version_text.is_empty() {
            return Err(format!(
                "a version is missing after the operator in `{}`",
                op_start.trim()
            ));
        }
        // Hyphen range: a bare version, whitespace, `-`, whitespace, a bare version.
        if !had_op && let Some(upper) = hyphen_upper(after_version) {
            let (upper_text, after_upper) = upper;
            out.push(comparator(Op::GreaterEqual, version_text)?);
            out.push(comparator(Op::LessEqual, upper_text)?);
            rest = after_upper;
            continue;
        }
        out.push(comparator(op, version_text)?);
        rest = after_version;
    }
    Ok(out)
}

/// After a bare version: `\s+-\s+VERSION` → (VERSION, rest).
fn hyphen_upper(s: &str) -> Option<(&str, &str)> {
    let trimmed = s.trim_start();
    if trimmed.len() == s.len() {
        return None;
    }
    let after_dash = trimmed.strip_prefix('-')?;
    let upper = after_dash.trim_start();
    if upper.len() == after_dash.len() || upper.is_empty() {
        return None;
    }
    let end = upper
        .find(|c: char| c.is_whitespace() || c == ',' || is_op_char(c))
        .unwrap_or(upper.len());
    if end == 0 {
        return None;
    }
    Some(upper.split_at(end))
}

fn is_wildcard(part: &str) -> bool {
    matches!(part, "x" | "X" | "*")
}

/// Parses a comparator's version, with wildcards, into a comparator.
fn comparator(op: Op, text: &str) -> Result<Comparator, String> {
    let body = text.strip_prefix('v').unwrap_or(text);
    let (core_and_pre, _build) = match body.split_once('+') {
        Some((a, b)) => {
            check_identifiers(b, "build metadata")?;
            (a, Some(b))
        }
        None => (body, None),
    };
    // The prerelease starts at the first `-` after the numeric core.
    let (core, pre) = match core_and_pre.split_once('-') {
        Some((c, p)) => (c, p),
        None => (core_and_pre, ""),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return Err(format!("`{text}` is not a version (MAJOR[.MINOR[.PATCH]])"));
    }
    for p in &parts {
        if !is_wildcard(p) && !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "`{text}`: `{p}` is neither a number nor a wildcard (x, X, *)"
            ));
        }
    }
    let prerelease = if pre.is_empty() {
        if core_and_pre.ends_with('-') {
            return Err(format!("`{text}`: empty prerelease"));
        }
        Prerelease::EMPTY
    } else {
        check_identifiers(pre, "prerelease")?;
        Prerelease::new(pre).map_err(|e| format!("`{text}`: prerelease: {e}"))?
    };
    let number = |p: &str| -> Result<u64, String> {
        p.parse::<u64>()
            .map_err(|_| format!("`{text}`: `{p}` is too large"))
    };
    let (mut dirty, mut minor_dirty, mut patch_dirty) = (false, false, false);
    let (major, minor, patch);
    if is_wildcard(parts[0]) {
        // `*`, `x.2.3`: Masterminds treats the whole version as 0.0.0 with a wildcard major.
        dirty = true;
        (major, minor, patch) = (0, 0, 0);
    } else if parts.len() < 2 || is_wildcard(parts[1]) {
        dirty = true;
        minor_dirty = true;
        (major, minor, patch) = (number(parts[0])?, 0, 0);
    } else if parts.len() < 3 || is_wildcard(parts[2]) {
        dirty = true;
        patch_dirty = true;
        (major, minor, patch) = (number(parts[0])?, number(parts[1])?, 0);
    } else {
        (major, minor, patch) = (number(parts[0])?, number(parts[1])?, number(parts[2])?);
    }
    Ok(Comparator {
        op,
        version: Version {
            major,
            minor,
            patch,
            pre: prerelease,
            build: BuildMetadata::EMPTY,
        },
        dirty,
        minor_dirty,
        patch_dirty,
    })
}

fn check_identifiers(s: &str, what: &str) -> Result<(), String> {
    if s.split('.')
        .any(|id| id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    {
        return Err(format!("invalid {what} `{s}`"));
    }
    Ok(())
}

impl Comparator {
    fn matches(&self, v: &Version) -> bool {
        let c = &self.version;
        let cmp = v.cmp_precedence(c);
        match self.op {
            Op::NotEqual => {
                if self.dirty {
                    if c.major != v.major {
                        return true;
                    }
                    if c.minor != v.minor && !self.minor_dirty {
                        return true;
                    }
                    if self.minor_dirty {
                        return false;
                    }
                    if c.patch != v.patch && !self.patch_dirty {
                        return true;
                    }
                    if self.patch_dirty {
                        return (!v.pre.is_empty() || !c.pre.is_empty()) && v.pre != c.pre;
                    }
                }
                cmp != Ordering::Equal
            }
            Op::Greater => {
                if !self.dirty {
                    return cmp == Ordering::Greater;
                }
                if v.major != c.major {
                    return v.major > c.major;
                }
                if self.minor_dirty {
                    return false;
                }
                if self.patch_dirty {
                    return v.minor > c.minor;
                }
                cmp == Ordering::Greater
            }
            Op::Less => cmp == Ordering::Less,
            Op::GreaterEqual => cmp != Ordering::Less,
            Op::LessEqual => {
                if !self.dirty {
                    return cmp != Ordering::Greater;
                }
                if v.major > c.major {
                    return false;
                }
                !(v.major == c.major && v.minor > c.minor && !self.minor_dirty)
            }
            Op::Tilde => self.tilde(v, cmp),
            Op::TildeOrEqual => {
                if self.dirty {
                    self.tilde(v, cmp)
                } else {
                    cmp == Ordering::Equal
                }
            }
            Op::Caret => {
                if cmp == Ordering::Less {
                    return false;
                }
                if c.major > 0 || self.minor_dirty {
                    return v.major == c.major;
                }
                if v.major > 0 {
                    return false;
                }
                if c.minor > 0 || self.patch_dirty {
                    return v.minor == c.minor;
                }
                if v.minor > 0 {
                    return false;
                }
                v.patch == c.patch
            }
        }
    }

    fn tilde(&self, v: &Version, cmp: Ordering) -> bool {
        let c = &self.version;
        if cmp == Ordering::Less {
            return false;
        }
        if c.major == 0 && c.minor == 0 && c.patch == 0 && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        if v.major != c.major {
            return false;
        }
        v.minor == c.minor || self.minor_dirty
    }
}

/// Parses a version loosely, as Helm does for index entries and chart metadata: an optional
/// `v`, missing minor/patch as 0, leading zeros tolerated (`v1.2` → `1.2.0`).
pub fn parse_version(input: &str) -> Result<Version, String> {
    let body = input.strip_prefix('v').unwrap_or(input);
    let (rest, build) = match body.split_once('+') {
        Some((a, b)) => (a, b),
        None => (body, ""),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() > 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("`{input}` is not a semantic version"));
    }
    let number = |i: usize| -> Result<u64, String> {
        match parts.get(i) {
            None => Ok(0),
            Some(p) => p
                .parse::<u64>()
                .map_err(|_| format!("`{input}`: `{p}` is too large")),
        }
    };
    let pre = match pre {
        None => Prerelease::EMPTY,
        Some(p) => {
            check_identifiers(p, "prerelease").map_err(|e| format!("`{input}`: {e}"))?;
            Prerelease::new(p).map_err(|e| format!("`{input}`: prerelease: {e}"))?
        }
    };
    let build = if build.is_empty() {
        if body.ends_with('+') {
            return Err(format!("`{input}`: empty build metadata"));
        }
        BuildMetadata::EMPTY
    } else {
        check_identifiers(build, "build metadata").map_err(|e| format!("`{input}`: {e}"))?;
        BuildMetadata::new(build).map_err(|e| format!("`{input}`: build metadata: {e}"))?
    };
    Ok(Version {
        major: number(0)?,
        minor: number(1)?,
        patch: number(2)?,
        pre,
        build,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(constraint: &str, version: &str) -> bool {
        let c = Constraint::parse(constraint)
            .unwrap_or_else(|e| panic!("{constraint:?} does not parse: {e}"));
        let v = parse_version(version).unwrap_or_else(|e| panic!("{version:?}: {e}"));
        c.matches(&v)
    }

    /// Masterminds' own table for single comparators (TestConstraintCheck), as of v3.4.
    #[test]
    fn single_comparators_follow_masterminds() {
        let table: &[(&str, &str, bool)] = &[
            ("=2.0.0", "1.2.3", false),
            ("=2.0.0", "2.0.0", true),
            ("=2.0", "1.2.3", false),
            ("=2.0", "2.0.0", true),
            ("=2.0", "2.0.1", true),
            ("4.1", "4.1.0", true),
            ("!=4.1.0", "4.1.0", false),
            ("!=4.1.0", "4.1.1", true),
            ("!=4.1", "4.1.0", false),
            ("!=4.1", "4.1.1", false),
            ("!=4.1", "5.1.0-alpha.1", false),
            ("!=4.1-alpha", "4.1.0", true),
            ("!=4.1", "5.1.0", true),
            ("<11", "0.1.0", true),
            ("<11", "11.1.0", false),
            ("<1.1", "0.1.0", true),
            ("<1.1", "1.1.0", false),
            ("<1.1", "1.1.1", false),
            ("<=11", "1.2.3", true),
            ("<=11", "12.2.3", false),
            ("<=11", "11.2.3", true),
            ("<=1.1", "1.2.3", false),
            ("<=1.1", "0.1.0", true),
            ("<=1.1", "1.1.0", true),
            ("<=1.1", "1.1.1", true),
            (">1.1", "4.1.0", true),
            (">1.1", "1.1.0", false),
            (">0", "0", false),
            (">0", "1", true),
            (">0", "0.0.1-alpha", false),
            (">0.0", "0.0.1-alpha", false),
            (">0-0", "0.0.1-alpha", false),
            (">0.0-0", "0.0.1-alpha", false),
            (">0", "0.0.0-alpha", false),
            (">0-0", "0.0.0-alpha", false),
            (">0.0.0-0", "0.0.0-alpha", true),
            (">1.2.3-alpha.1", "1.2.3-alpha.2", true),
            (">1.2.3-alpha.1", "1.3.3-alpha.2", true),
            (">11", "11.1.0", false),
            (">11.1", "11.1.0", false),
            (">11.1", "11.1.1", false),
            (">11.1", "11.2.1", true),
            (">=11", "11.1.2", true),
            (">=11.1", "11.1.2", true),
            (">=11.1", "11.0.2", false),
            (">=1.1", "4.1.0", true),
            (">=1.1", "1.1.0", true),
            (">=1.1", "0.0.9", false),
            (">=0", "0.0.1-alpha", false),
            (">=0.0", "0.0.1-alpha", false),
            (">=0-0", "0.0.1-alpha", true),
            (">=0.0-0", "0.0.1-alpha", true),
            (">=0", "0.0.0-alpha", false),
            (">=0-0", "0.0.0-alpha", true),
            (">=0.0.0-0", "0.0.0-alpha", true),
            (">=0.0.0-0", "1.2.3", true),
            (">=0.0.0-0", "3.4.5-beta.1", true),
            ("<0", "0.0.0-alpha", false),
            ("<0-z", "0.0.0-alpha", true),
            (">=0", "0", true),
            ("=0", "1", false),
            ("*", "1", true),
            ("*", "4.5.6", true),
            ("*", "1.2.3-alpha.1", false),
            ("*-0", "1.2.3-alpha.1", true),
            ("2.*", "1", false),
            ("2.*", "3.4.5", false),
            ("2.*", "2.1.1", true),
            ("2.1.*", "2.1.1", true),
            ("2.1.*", "2.2.1", false),
            ("2", "1", false),
            ("2", "3.4.5", false),
            ("2", "2.1.1", true),
            ("2.1", "2.1.1", true),
            ("2.1", "2.2.1", false),
            ("~1.2.3", "1.2.4", true),
            ("~1.2.3", "1.3.4", false),
            ("~1.2", "1.2.4", true),
            ("~1.2", "1.3.4", false),
            ("~1", "1.2.4", true),
            ("~1", "2.3.4", false),
            ("~0.2.3", "0.2.5", true),
            ("~0.2.3", "0.3.5", false),
            ("~1.2.3-beta.2", "1.2.3-beta.4", true),
            // Unlike npm, prereleases are not limited to the same major.minor.patch.
            ("~1.2.3-beta.2", "1.2.4-beta.2", true),
            ("~1.2.3-beta.2", "1.3.4-beta.2", false),
            ("^1.2.3", "1.8.9", true),
            ("^1.2.3", "2.8.9", false),
            ("^1.2.3", "1.2.1", false),
            ("^1.1.0", "2.1.0", false),
            ("^1.2.0", "2.2.1", false),
            ("^1.2.0", "1.2.1-alpha.1", false),
            ("^1.2.0-alpha.0", "1.2.1-alpha.1", true),
            ("^1.2.0-alpha.0", "1.2.1-alpha.0", true),
            ("^1.2.0-alpha.2", "1.2.0-alpha.1", false),
            ("^1.2", "1.8.9", true),
            ("^1.2", "2.8.9", false),
            ("^1", "1.8.9", true),
            ("^1", "2.8.9", false),
            ("^0.2.3", "0.2.5", true),
            ("^0.2.3", "0.5.6", false),
            ("^0.2", "0.2.5", true),
            ("^0.2", "0.5.6", false),
            ("^0.0.3", "0.0.3", true),
            ("^0.0.3", "0.0.4", false),
            ("^0.0", "0.0.3", true),
            ("^0.0", "0.1.4", false),
            ("^0.0", "1.0.4", false),
            ("^0", "0.2.3", true),
            ("^0", "1.1.4", false),
            ("^0.2.3-beta.2", "0.2.3-beta.4", true),
            ("^0.2.3-beta.2", "0.2.4-beta.2", true),
            ("^0.2.3-beta.2", "0.3.4-beta.2", false),
            ("^0.2.3-beta.2", "0.2.3-beta.2", true),
        ];
        let failures: Vec<_> = table
            .iter()
            .filter(|(c, v, want)| check(c, v) != *want)
            .collect();
        assert!(failures.is_empty(), "mismatches: {failures:?}");
    }

    /// Masterminds' table for whole constraints (TestConstraintsCheck and
    /// TestConstraintsValidate), as of v3.4.
    #[test]
    fn constraints_follow_masterminds() {
        let table: &[(&str, &str, bool)] = &[
            ("*", "1.2.3", true),
            ("~0.0.0", "1.2.3", true),
            ("0.x.x", "1.2.3", false),
            ("0.0.x", "1.2.3", false),
            ("0.0.0", "1.2.3", false),
            ("^0.0.0", "1.2.3", false),
            ("= 2.0", "1.2.3", false),
            ("= 2.0", "2.0.0", true),
            ("4.1", "4.1.0", true),
            ("4.1.x", "4.1.3", true),
            ("1.x", "1.4", true),
            ("!=4.1", "4.1.0", false),
            ("!=4.1-alpha", "4.1.0-alpha", false),
            ("!=4.1-alpha", "4.1.1-alpha", false),
            ("!=4.1-alpha", "4.1.0", true),
            ("!=4.1", "5.1.0", true),
            ("!=4.x", "5.1.0", true),
            ("!=4.x", "4.1.0", false),
            ("!=4.1.x", "4.2.0", true),
            ("!=4.2.x", "4.2.3", false),
            (">1.1", "4.1.0", true),
            (">1.1", "1.1.0", false),
            ("<1.1", "0.1.0", true),
            ("<1.1", "1.1.0", false),
            ("<1.1", "1.1.1", false),
            ("<1.x", "1.1.1", false),
            ("<1.x", "0.1.1", true),
            ("<1.x", "2.0.0", false),
            ("<2.x", "1.1.1", true),
            ("<1.1.x", "1.2.1", false),
            ("<1.1.x", "1.1.500", false),
            ("<1.1.x", "1.0.500", true),
            ("<1.2.x", "1.1.1", true),
            (">=1.1", "4.1.0", true),
            (">=1.1", "4.1.0-beta", false),
            (">=1.1", "1.1.0", true),
            (">=1.1", "0.0.9", false),
            ("<=1.1", "0.1.0", true),
            ("<=1.1", "0.1.0-alpha", false),
            ("<=1.1-a", "0.1.0-alpha", true),
            ("<=1.1", "1.1.0", true),
            ("<=1.x", "1.1.0", true),
            ("<=2.x", "3.0.0", false),
            ("<=2.x", "3.1.0", false),
            ("<=1.1", "1.1.1", true),
            ("<=1.1.x", "1.2.500", false),
            ("<=4.5", "3.4.0", true),
            ("<=4.5", "3.7.0", true),
            ("<=4.5", "4.6.3", false),
            (">1.1, <2", "1.1.1", false),
            (">1.1, <2", "1.2.1", true),
            (">1.1, <3", "4.3.2", false),
            (">=1.1, <2, !=1.2.3", "1.2.3", false),
            (">1.1 <2", "1.1.1", false),
            (">1.1 <2", "1.2.1", true),
            (">1.1    <3", "4.3.2", false),
            (">=1.1    <2    !=1.2.3", "1.2.3", false),
            (">=1.1, <2, !=1.2.3 || > 3", "4.1.2", true),
            (">=1.1, <2, !=1.2.3 || > 3", "3.1.2", false),
            (">=1.1, <2, !=1.2.3 || >= 3", "3.0.0", true),
            (">=1.1, <2, !=1.2.3 || > 3", "3.0.0", false),
            (">=1.1, <2, !=1.2.3 || > 3", "1.2.3", false),
            (">=1.1 <2 !=1.2.3", "1.2.3", false),
            (">=1.1 <2 !=1.2.3 || > 3", "4.1.2", true),
            (">=1.1 <2 !=1.2.3 || > 3", "3.1.2", false),
            (">=1.1 <2 !=1.2.3 || >= 3", "3.0.0", true),
            (">=1.1 <2 !=1.2.3 || > 3", "3.0.0", false),
            (">=1.1 <2 !=1.2.3 || > 3", "1.2.3", false),
            ("> 1.1, <     2", "1.1.1", false),
            (">   1.1, <2", "1.2.1", true),
            (">1.1, <  3", "4.3.2", false),
            (">= 1.1, <     2, !=1.2.3", "1.2.3", false),
            ("> 1.1 < 2", "1.1.1", false),
            (">1.1 < 2", "1.2.1", true),
            ("> 1.1    <3", "4.3.2", false),
            (">=1.1    < 2    != 1.2.3", "1.2.3", false),
            (">= 1.1, <2, !=1.2.3 || > 3", "4.1.2", true),
            (">= 1.1, <2, != 1.2.3 || > 3", "3.1.2", false),
            (">= 1.1, <2, != 1.2.3 || >= 3", "3.0.0", true),
            (">= 1.1 <2 != 1.2.3 || > 3", "4.1.2", true),
            (">= 1.1 < 2 !=1.2.3 || > 3", "3.0.0", false),
            ("1.1 - 2", "1.1.1", true),
            ("1.5.0 - 4.5", "3.7.0", true),
            ("1.1-3", "4.3.2", false),
            ("^1.1", "1.1.1", true),
            ("^1.1", "1.1.1-alpha", false),
            ("^1.1.1-alpha", "1.1.1-beta", true),
            ("^1.1.1-beta", "1.1.1-alpha", false),
            ("^1.1", "4.3.2", false),
            ("^1.x", "1.1.1", true),
            ("^2.x", "1.1.1", false),
            ("^1.x", "2.1.1", false),
            ("^1.x", "1.1.1-beta1", false),
            ("^1.1.2-alpha", "1.2.1-beta1", true),
            ("^1.2.x-alpha", "1.1.1-beta1", false),
            ("^0.0.1", "0.0.1", true),
            ("^0.0.1", "0.3.1", false),
            ("^0.0.1", "0.1.3", false),
            ("~*", "2.1.1", true),
            ("~1", "2.1.1", false),
            ("~1", "1.3.5", true),
            ("~1", "1.4", true),
            ("~1", "1.3.5-beta", false),
            ("~1.x", "2.1.1", false),
            ("~1.x", "1.3.5", true),
            ("~1.x", "1.4", true),
            ("~1.x", "1.3.5-beta", false),
            ("~1.1", "1.1.1", true),
            ("~1.1", "1.1.1-alpha", false),
            ("~1.1-alpha", "1.1.1-beta", true),
            ("~1.1.1-beta", "1.1.1-alpha", false),
            ("~1.1.1-beta", "1.1.1", true),
            ("~1.3.6-alpha", "1.3.5-beta", false),
            ("~1.3.5-alpha", "1.3.5-beta", true),
            ("~1.3.5-beta", "1.3.5-alpha", false),
            ("~1.2.3", "1.2.5", true),
            ("~1.2.3", "1.2.2", false),
            ("~1.2.3", "1.3.2", false),
            ("~1.1", "1.2.3", false),
            ("~1.3", "2.4.5", false),
            ("~>1.2", "1.2.9", true),
            ("~>1.2", "1.3.0", false),
            // Ranges combine with other comparators.
            ("1.0.0 - 2.0.0 <=2.0.0", "1.5.0", true),
            ("1.0.0 - 2.0.0, <=2.0.0", "1.5.0", true),
            ("1.2 - 1.4.5", "1.4.5", true),
            ("1.2 - 1.4.5", "1.4.6", false),
            ("1.2 - 1.4.5", "1.1.9", false),
            ("1.2 - 1.4", "1.4.9", true),
            ("1.2 - 1.4", "1.5.0", false),
            // v prefix and build metadata.
            ("v1.2.3", "1.2.3", true),
            ("=v1.2.3", "1.2.3+build.7", true),
            ("1.2.3+meta", "1.2.3", true),
            // Masterminds 3.4: a prerelease in one comparator opens the whole AND group
            // to prereleases, of any major.minor.patch.
            (">=1.2.0-0 <2.0.0", "1.5.0-beta.1", true),
            // 2.0.0-rc.1 sorts below 2.0.0, so it is inside the range.
            (">=1.2.0-0 <2.0.0", "2.0.0-rc.1", true),
            (">=1.2.0-0 <2.0.0", "2.0.1-rc.1", false),
            (">=1.2.0-0, <2.0.0", "1.2.0-alpha", true),
            (">=1.2.0 <2.0.0 || >=3.0.0-0", "1.5.0-beta.1", false),
            (">=1.2.0 <2.0.0 || >=3.0.0-0", "3.1.0-beta.1", true),
        ];
        let failures: Vec<_> = table
            .iter()
            .filter(|(c, v, want)| check(c, v) != *want)
            .collect();
        assert!(failures.is_empty(), "mismatches: {failures:?}");
    }

    #[test]
    fn invalid_constraints_are_refused() {
        for bad in [
            "",
            "   ",
            "foo",
            ">= bar",
            "BAR >= 1.2.3",
            "12.3.4.1234",
            "12.23.4.1234",
            "12.3.34~ 1.2.3",
            "1.2 ||",
            "|| 1.2",
            ">",
            ">>1",
            "1.2.3-01",
            "1.2.3-",
            "1..2",
            "1.2,,1.3",
            "1.2.3 -",
        ] {
            assert!(Constraint::parse(bad).is_err(), "{bad:?} should be refused");
        }
        for good in [
            ">= 1.1",
            ">40.50.60, < 50.70",
            "2.0",
            "v2.3.5-20161202202307-sha.e8fc5e5",
            ">= 1.2.3 < 2.0",
            ">= 1.2.3 < 2.0 || => 3.0 < 4",
            ">= 1.2.3, < 2.0 || => 3.0, < 4",
            "3 - 4 || => 3.0, < 4",
            "12.3.34 ~1.2.3",
            "1.0.0 - 2.0.0, <=2.0.0",
            "=< 1.2",
            "~> 1.2",
        ] {
            assert!(Constraint::parse(good).is_ok(), "{good:?} should parse");
        }
    }

    #[test]
    fn best_match_is_the_highest() {
        let versions: Vec<Version> = ["1.0.0", "1.2.0", "1.10.0", "2.0.0-rc.1", "1.9.9", "0.9.0"]
            .iter()
            .map(|v| parse_version(v).unwrap())
            .collect();
        let best = |c: &str| {
            Constraint::parse(c)
                .unwrap()
                .best_match(&versions)
                .map(|v| v.to_string())
        };
        assert_eq!(best("^1").as_deref(), Some("1.10.0"));
        assert_eq!(best("~1.2").as_deref(), Some("1.2.0"));
        assert_eq!(best("<1.5").as_deref(), Some("1.2.0"));
        assert_eq!(best(">=1.0.0-0").as_deref(), Some("2.0.0-rc.1"));
        assert_eq!(best("*").as_deref(), Some("1.10.0"));
        assert_eq!(best("^3"), None);
        assert!(
            Constraint::parse("1.2.3")
                .unwrap()
                .exact_version()
                .is_some()
        );
        assert!(Constraint::parse("1.2").unwrap().exact_version().is_none());
        assert!(
            Constraint::parse("^1.2.3")
                .unwrap()
                .exact_version()
                .is_none()
        );
    }

    #[test]
    fn loose_versions_are_coerced() {
        for (input, want) in [
            ("1.2.3", "1.2.3"),
            ("v1.2.3", "1.2.3"),
            ("1.2", "1.2.0"),
            ("v1", "1.0.0"),
            ("01.02.03", "1.2.3"),
            ("1.2.3-rc.1+build.5", "1.2.3-rc.1+build.5"),
            ("1.2-beta", "1.2.0-beta"),
        ] {
            assert_eq!(
                parse_version(input).map(|v| v.to_string()),
                Ok(want.to_string())
            );
        }
        for bad in [
            "", "v", "1.2.3.4", "a.b.c", "1.2.3-", "1.2.3-01", "1.2.3+", "1..2", "latest",
        ] {
            assert!(parse_version(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
