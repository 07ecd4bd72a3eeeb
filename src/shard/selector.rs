//! `shard.selector`: extra PromQL label matchers for the read-back of the other shards' plans
//! and for the check that every shard runs with one count ([`super::agree`]).
//!
//! The read-back asks Prometheus for every series of its three families; two prescale
//! deployments scraped by one Prometheus (staging and production, two clusters) export the
//! same families, and with equal workload names their plans would be mixed (the freshest wins).
//! A selector such as `job="prescale", namespace="prod"` is added to each family's query
//! (`prescale_recommended_replicas{job="prescale", namespace="prod"}`), so only this
//! deployment's targets answer.
//!
//! It is checked at load, not left to Prometheus' first answer: a typo would otherwise turn
//! every other shard's workload unknown (holding node scale-in) and show only in the decisions'
//! reasons. The check is the matcher grammar: `name op "value"` separated by commas, `op` one of
//! `=`, `!=`, `=~`, `!~`, the value a double- or single-quoted string; surrounding braces are
//! accepted and dropped. `__name__` is refused (the family is the metric name), and so is
//! `workload` (the read-back matches on it; narrowing it would hide workloads, not deployments).
//! A regular expression's own syntax is Prometheus' to judge (RE2, which the `regex` crate does
//! not match exactly), and its error names the query.

/// Checks a selector and returns it normalised (no braces, matchers joined by `", "`), or the
/// problem, quoting the part that is wrong.
pub fn parse(text: &str) -> Result<String, String> {
    let mut s = text.trim();
    if let Some(inner) = s.strip_prefix('{') {
        s = inner
            .strip_suffix('}')
            .ok_or_else(|| format!("'{text}' opens a '{{' it does not close"))?
            .trim();
    }
    if s.is_empty() {
        return Err(
            "is empty: leave it out, or give label matchers such as job=\"prescale\"".into(),
        );
    }
    let mut rest = s;
    let mut out = Vec::new();
    loop {
        let (matcher, after) = one(rest)?;
        out.push(matcher);
        rest = after.trim_start();
        match rest.strip_prefix(',') {
            Some(r) if r.trim().is_empty() => break,
            Some(r) => rest = r.trim_start(),
            None if rest.is_empty() => break,
            None => return Err(format!("expected ',' between matchers at '{rest}'")),
        }
    }
    Ok(out.join(", "))
}

/// One matcher at the start of `s`: it normalised, and what follows it.
fn one(s: &str) -> Result<(String, &str), String> {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    let name = &s[..end];
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok {
        return Err(format!(
            "expected a label name (letters, digits, '_', not starting with a digit) at '{s}'"
        ));
    }
    if name == "__name__" || name == "workload" {
        return Err(format!(
            "'{name}' cannot be narrowed here: the read-back queries each family by name and \
             matches its answers on workload; select the deployment (job, namespace, a label \
             of its scrape config) instead"
        ));
    }
    let rest = s[end..].trim_start();
    let op = ["=~", "!~", "!=", "="]
        .into_iter()
        .find(|op| rest.starts_with(op))
        .ok_or_else(|| format!("expected =, !=, =~ or !~ after '{name}' at '{rest}'"))?;
    let rest = rest[op.len()..].trim_start();
    let (value, after) = quoted(rest).ok_or_else(|| {
        format!("expected a quoted value (\"...\" or '...') after '{name}{op}' at '{rest}'")
    })?;
    Ok((format!("{name}{op}{value}"), after))
}

/// The quoted string at the start of `s` (quotes and escapes kept as written), and the rest.
fn quoted(s: &str) -> Option<(&str, &str)> {
    let quote = s.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '\n' => return None,
            c if c == quote => return Some((&s[..=i], &s[i + 1..])),
            _ => {}
        }
    }
    None
}

/// The query for `family`'s series, narrowed by `selector` (already [`parse`]d) if set.
pub fn narrowed(family: &str, selector: Option<&str>) -> String {
    match selector {
        Some(s) => format!("{family}{{{s}}}"),
        None => family.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn matchers_are_normalised() {
        assert_eq!(parse(r#"job="prescale""#).unwrap(), r#"job="prescale""#);
        assert_eq!(
            parse(r#" { job = "prescale" ,namespace=~'prod|stage', } "#).unwrap(),
            r#"job="prescale", namespace=~'prod|stage'"#
        );
        assert_eq!(
            parse(r#"a!="x\"y", b!~"z""#).unwrap(),
            r#"a!="x\"y", b!~"z""#
        );
    }

    #[test]
    fn bad_selectors_say_what_is_wrong() {
        let e = |s: &str| parse(s).unwrap_err();
        assert!(e("").contains("is empty"));
        assert!(e("{}").contains("is empty"));
        assert!(e(r#"{job="a""#).contains("does not close"));
        assert!(
            e(r#"job=prescale"#).contains("quoted value"),
            "{}",
            e("job=prescale")
        );
        assert!(e(r#"job="prescale"#).contains("quoted value"));
        assert!(e(r#"job=="a""#).contains("quoted value"));
        assert!(e(r#"job~"a""#).contains("expected =, !=, =~ or !~ after 'job'"));
        assert!(e(r#"1job="a""#).contains("label name"));
        assert!(e(r#"job="a" env="b""#).contains("expected ','"));
        assert!(e(r#"__name__="x""#).contains("'__name__' cannot"));
        assert!(e(r#"workload="w1""#).contains("'workload' cannot"));
        assert!(e(r#"job="a",,"#).contains("label name"));
    }
}
