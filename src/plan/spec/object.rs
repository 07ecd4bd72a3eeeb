//! The Kubernetes object a `[[workload]]` is (`deployment = "shop/api"` or
//! `statefulset = "shop/db"`) and whether prescale may change it (`mode`).
//!
//! One place parses the reference so the cluster-state reader (kube-state-metrics series are
//! labelled `namespace` + `deployment`/`statefulset`), the Kubernetes actuator (the object's
//! `scale` subresource) and the KEDA scaler all mean the same object. The namespace is always
//! written out: a reference that silently meant `default` would scale the wrong thing.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kinds whose `scale` subresource prescale reads and changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ObjectKind {
    /// `apps/v1` Deployment.
    Deployment,
    /// `apps/v1` StatefulSet.
    StatefulSet,
}

impl ObjectKind {
    /// The config key and kube-state-metrics label naming this kind: `deployment`,
    /// `statefulset`.
    pub fn key(self) -> &'static str {
        match self {
            ObjectKind::Deployment => "deployment",
            ObjectKind::StatefulSet => "statefulset",
        }
    }

    /// The API resource (plural) in the object's path: `deployments`, `statefulsets`.
    pub fn resource(self) -> &'static str {
        match self {
            ObjectKind::Deployment => "deployments",
            ObjectKind::StatefulSet => "statefulsets",
        }
    }

    /// The `kind` as the API writes it: `Deployment`, `StatefulSet`.
    pub fn as_kind(self) -> &'static str {
        match self {
            ObjectKind::Deployment => "Deployment",
            ObjectKind::StatefulSet => "StatefulSet",
        }
    }
}

/// One Deployment or StatefulSet, by kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Deployment or StatefulSet.
    pub kind: ObjectKind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl ObjectRef {
    /// Parses `namespace/name` for `kind`; the error says what is wrong with the text.
    pub fn parse(kind: ObjectKind, text: &str) -> Result<Self, String> {
        let example = format!("{} = \"shop/api\" (namespace/name)", kind.key());
        let Some((namespace, name)) = text.split_once('/') else {
            return Err(format!(
                "{} must be namespace/name, got '{text}': write {example}",
                kind.key()
            ));
        };
        check_label(namespace, 63, false)
            .map_err(|why| format!("{}: namespace '{namespace}' {why}", kind.key()))?;
        check_label(name, 253, true)
            .map_err(|why| format!("{}: name '{name}' {why}", kind.key()))?;
        Ok(ObjectRef {
            kind,
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }
}

/// `deployment/shop/api`: kind key, namespace and name, as in reasons and logs.
impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind.key(), self.namespace, self.name)
    }
}

/// Kubernetes' name rules (RFC 1123): lowercase letters, digits and `-` (and `.` in object
/// names, which may be DNS subdomains), starting and ending with a letter or digit.
fn check_label(s: &str, max: usize, dots: bool) -> Result<(), String> {
    if s.is_empty() {
        return Err("is empty".into());
    }
    if s.len() > max {
        return Err(format!("is longer than {max} characters"));
    }
    let ok =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dots && c == '.');
    if let Some(c) = s.chars().find(|&c| !ok(c)) {
        return Err(format!(
            "has '{}': Kubernetes names are lowercase letters, digits and '-'{}",
            c.escape_default(),
            if dots { " or '.'" } else { "" }
        ));
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !edge(s.chars().next()) || !edge(s.chars().last()) {
        return Err("must start and end with a letter or digit".into());
    }
    Ok(())
}

/// Whether prescale may change a workload's replicas: `mode` of a `[[workload]]`.
///
/// On top of the global dry-run default (nothing changes without `--apply`), each workload is
/// `preview` until its owner opts it in: a `preview` workload's decisions are recorded as
/// `skipped (preview)` even under `--apply` (Crane's and Kapacity's Preview/Auto).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Recommend only (the default).
    #[default]
    Preview,
    /// Act, when prescale runs with `--apply`.
    Auto,
}

impl Mode {
    /// The name as written in `prescale.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Preview => "preview",
            Mode::Auto => "auto",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_and_name_are_required_and_checked() {
        let d = ObjectRef::parse(ObjectKind::Deployment, "shop/api-v2.blue").unwrap();
        assert_eq!(d.to_string(), "deployment/shop/api-v2.blue");
        for bad in [
            "api",
            "/api",
            "shop/",
            "Shop/api",
            "shop/api_x",
            "shop/-api",
            "a.b/api",
        ] {
            let e = ObjectRef::parse(ObjectKind::StatefulSet, bad).unwrap_err();
            assert!(e.starts_with("statefulset"), "{bad}: {e}");
        }
        let long = format!("shop/{}", "a".repeat(254));
        assert!(ObjectRef::parse(ObjectKind::Deployment, &long)
            .unwrap_err()
            .contains("longer than 253"));
    }
}
