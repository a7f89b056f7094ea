//! Kubernetes label selectors written as text (`--watch-label-selector`), parsed into
//! kube's own [`Selector`] with the apiserver's grammar and rules: requirements separated
//! by `,`; `key`, `!key`, `key=value`, `key==value`, `key!=value`, `key in (v1,v2)`,
//! `key notin (v1,v2)`. A key is `[prefix/]name` (prefix: a DNS subdomain of at most 253
//! characters; name: at most 63 characters, alphanumeric at both ends, `-`, `_`, `.`
//! inside); a value is empty or a name. kube-rs builds selectors but does not parse them.

use kube::core::{Expression, Selector};

/// Parses a label selector; the error says what is wrong and where.
pub fn parse(text: &str) -> Result<Selector, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty selector (e.g. `shard=a`, `tier in (a,b)`, `!legacy`)".into());
    }
    let mut expressions = Vec::new();
    let mut rest = text;
    loop {
        let (requirement, after) = split_requirement(rest)?;
        expressions.push(requirement_of(requirement.trim())?);
        match after {
            Some(after) => rest = after,
            None => break,
        }
    }
    Ok(expressions.into_iter().collect())
}

/// The next requirement and what follows its `,` (commas inside `( … )` belong to it).
fn split_requirement(text: &str) -> Result<(&str, Option<&str>), String> {
    let mut depth = 0i32;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => return Ok((&text[..i], Some(&text[i + 1..]))),
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err(format!("unbalanced parentheses in {text:?}"));
        }
    }
    if depth != 0 {
        return Err(format!("unbalanced parentheses in {text:?}"));
    }
    Ok((text, None))
}

fn requirement_of(r: &str) -> Result<Expression, String> {
    if r.is_empty() {
        return Err("empty requirement (a stray `,`?)".into());
    }
    if let Some(key) = r.strip_prefix('!') {
        return Ok(Expression::DoesNotExist(key_of(key.trim())?));
    }
    if let Some((key, value)) = r.split_once("!=") {
        return Ok(Expression::NotEqual(
            key_of(key.trim())?,
            value_of(value.trim())?,
        ));
    }
    if let Some((key, value)) = r.split_once("==").or_else(|| r.split_once('=')) {
        return Ok(Expression::Equal(
            key_of(key.trim())?,
            value_of(value.trim())?,
        ));
    }
    let words: Vec<&str> = r.splitn(2, char::is_whitespace).collect();
    if let [key, set] = words[..] {
        let set = set.trim_start();
        let (negated, list) = if let Some(list) = set.strip_prefix("notin") {
            (true, list)
        } else if let Some(list) = set.strip_prefix("in") {
            (false, list)
        } else {
            return Err(format!(
                "{r:?}: expected `=`, `==`, `!=`, `in (…)` or `notin (…)` after the key"
            ));
        };
        let list = list.trim();
        let inner = list
            .strip_prefix('(')
            .and_then(|l| l.strip_suffix(')'))
            .ok_or_else(|| format!("{r:?}: the values of `in`/`notin` go in parentheses"))?;
        let values = inner
            .split(',')
            .map(|v| value_of(v.trim()))
            .collect::<Result<std::collections::BTreeSet<_>, _>>()?;
        let key = key_of(key)?;
        return Ok(if negated {
            Expression::NotIn(key, values)
        } else {
            Expression::In(key, values)
        });
    }
    Ok(Expression::Exists(key_of(r)?))
}

fn key_of(key: &str) -> Result<String, String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let ok = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            });
        if !ok {
            return Err(format!(
                "label key {key:?}: the prefix must be a lowercase DNS subdomain"
            ));
        }
    }
    if name.is_empty() {
        return Err(format!("label key {key:?}: the name part is empty"));
    }
    check_name(name).map_err(|why| format!("label key {key:?}: {why}"))?;
    Ok(key.to_string())
}

fn value_of(value: &str) -> Result<String, String> {
    if !value.is_empty() {
        check_name(value).map_err(|why| format!("label value {value:?}: {why}"))?;
    }
    Ok(value.to_string())
}

fn check_name(name: &str) -> Result<(), &'static str> {
    if name.len() > 63 {
        return Err("longer than 63 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err("only letters, digits, `-`, `_` and `.` are allowed");
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !edge(name.chars().next()) || !edge(name.chars().last()) {
        return Err("must start and end with a letter or digit");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apiserver_grammar_round_trips_through_kube_types() {
        for (text, shown) in [
            ("shard=a", "shard=a"),
            ("shard==a", "shard=a"),
            (
                "sharding.example.io/key=shard-1",
                "sharding.example.io/key=shard-1",
            ),
            ("tier!=web", "tier!=web"),
            ("tier in (a, b)", "tier in (a,b)"),
            ("tier notin (a,b),!legacy", "tier notin (a,b),!legacy"),
            ("canary", "canary"),
            ("a=1 , b in (x) ,c", "a=1,b in (x),c"),
            ("empty=", "empty="),
        ] {
            let parsed = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(parsed.to_string(), shown, "{text}");
        }
    }

    #[test]
    fn what_the_apiserver_refuses_is_refused_with_a_reason() {
        for (text, why) in [
            ("", "empty selector"),
            ("a=1,", "empty requirement"),
            ("a in (x", "unbalanced"),
            ("a in x", "parentheses"),
            ("a ~ b", "expected"),
            ("-a=1", "start and end"),
            ("Example.COM/a=1", "prefix"),
            ("a=b c", "only letters"),
            ("/a=1", "prefix"),
            ("x/=1", "name part is empty"),
        ] {
            let err = parse(text).expect_err(text);
            assert!(err.contains(why), "{text}: {err}");
        }
        assert!(parse(&format!("a={}", "v".repeat(64))).is_err());
    }
}
