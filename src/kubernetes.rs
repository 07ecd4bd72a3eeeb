//! How prescale reaches the Kubernetes API: the `[kubernetes]` section and the client config it
//! selects. Leader election (`[leader_election]`, [`crate::leader`]) uses it today; the
//! Kubernetes actuator reads the same section.
//!
//! Rules, as `kubectl` users expect them:
//! - `kubeconfig = "path"`: that file (relative to the configuration file), its current context
//!   or `context`.
//! - no `kubeconfig`: `KUBECONFIG` or `~/.kube/config` if there is one (with `context` if set),
//!   otherwise the in-cluster service account (what a pod gets), as `kube::Config::infer` does.
//!   With `context` set, a kubeconfig is required: a context name means the user meant one.
//!
//! `timeout` (default 10 s) bounds every request the Kubernetes actuator makes; the client's
//! own retries are turned off by its users so that the timeout means what it says.
//!
//! Nothing here prints a token or a client key: errors name the file and the context only.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// This replica's name in the cluster: `POD_NAME` (the downward API in
/// `deploy/statefulset.yaml`), then `HOSTNAME` (a pod's own name in Kubernetes), then the
/// kernel's host name, read through `env` (the process environment outside tests); `None`
/// when none is set. Leader election's identity and the Events' `reportingInstance` both
/// start from it, so the two name a replica alike.
pub fn replica_name(env: impl Fn(&str) -> Option<String>) -> Option<String> {
    ["POD_NAME", "HOSTNAME"]
        .into_iter()
        .find_map(|var| {
            env(var)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        })
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
}

/// How long one API request may take when `kubernetes.timeout` is not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// `[kubernetes]` as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKubernetes {
    /// A kubeconfig file; default: `KUBECONFIG`, `~/.kube/config`, then in-cluster.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use; default: its current context.
    pub context: Option<String>,
    /// How long one request of the Kubernetes actuator may take (`10s`).
    pub timeout: Option<String>,
}

/// Validated `[kubernetes]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubernetesConfig {
    /// `kubernetes.kubeconfig`, resolved against the configuration file's directory.
    pub kubeconfig: Option<PathBuf>,
    /// `kubernetes.context`.
    pub context: Option<String>,
    /// `kubernetes.timeout`; `None`: [`DEFAULT_TIMEOUT`] (see [`timeout`](Self::timeout)).
    pub timeout: Option<Duration>,
}

impl KubernetesConfig {
    /// Checks `[kubernetes]`, pushing `(key, message)` problems. Relative paths are resolved
    /// against `base`, the configuration file's directory.
    pub(crate) fn validate(
        raw: Option<&RawKubernetes>,
        base: &Path,
        problems: &mut Vec<(String, String)>,
    ) -> KubernetesConfig {
        let Some(raw) = raw else {
            return KubernetesConfig::default();
        };
        if raw.context.as_deref().is_some_and(|c| c.trim().is_empty()) {
            problems.push((
                "kubernetes.context".into(),
                "is empty: name a context of the kubeconfig, or leave the key out".into(),
            ));
        }
        let timeout =
            raw.timeout
                .as_deref()
                .and_then(|t| match humantime::parse_duration(t.trim()) {
                    Ok(d) if d.as_secs() > crate::series::MAX_DURATION as u64 => {
                        problems.push((
                            "kubernetes.timeout".into(),
                            format!("'{t}' is longer than the limit of 366d"),
                        ));
                        None
                    }
                    Ok(d) if !d.is_zero() => Some(d),
                    Ok(_) => {
                        problems.push((
                            "kubernetes.timeout".into(),
                            format!("'{t}' must be longer than 0"),
                        ));
                        None
                    }
                    Err(e) => {
                        problems.push((
                            "kubernetes.timeout".into(),
                            format!("'{t}' is not a duration (e.g. 10s, 500ms): {e}"),
                        ));
                        None
                    }
                });
        KubernetesConfig {
            timeout,
            kubeconfig: raw
                .kubeconfig
                .as_ref()
                .map(|p| crate::collect::config::resolve(base, p)),
            context: raw.context.clone(),
        }
    }

    /// How long one API request may take: `kubernetes.timeout`, 10 s by default.
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }

    /// The client configuration these settings select (see the module docs for the order).
    pub async fn client_config(&self) -> Result<kube::Config, KubeConfigError> {
        let options = kube::config::KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        let context = || self.context.clone().unwrap_or_else(|| "current".into());
        match (&self.kubeconfig, &self.context) {
            (Some(path), _) => {
                let file = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                    KubeConfigError::Kubeconfig {
                        path: path.clone(),
                        message: e.to_string(),
                    }
                })?;
                kube::Config::from_custom_kubeconfig(file, &options)
                    .await
                    .map_err(|e| KubeConfigError::Context {
                        source_name: path.display().to_string(),
                        context: context(),
                        message: e.to_string(),
                    })
            }
            (None, Some(_)) => kube::Config::from_kubeconfig(&options).await.map_err(|e| {
                KubeConfigError::Context {
                    source_name: "KUBECONFIG or ~/.kube/config".into(),
                    context: context(),
                    message: e.to_string(),
                }
            }),
            (None, None) => kube::Config::infer()
                .await
                .map_err(|e| KubeConfigError::Infer(e.to_string())),
        }
    }
}

/// Why no Kubernetes client configuration could be made.
#[derive(Debug, thiserror::Error)]
pub enum KubeConfigError {
    /// `kubernetes.kubeconfig` could not be read or parsed.
    #[error("kubernetes.kubeconfig {}: {message}", path.display())]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// What the loader said.
        message: String,
    },
    /// The kubeconfig has no usable context, cluster or user of that name.
    #[error("kubernetes.context '{context}' in {source_name}: {message}")]
    Context {
        /// Where the kubeconfig came from.
        source_name: String,
        /// The context asked for (`current` for the current one).
        context: String,
        /// What the loader said.
        message: String,
    },
    /// Neither a kubeconfig nor an in-cluster service account was found.
    #[error(
        "no Kubernetes client configuration: {0}; set kubernetes.kubeconfig, KUBECONFIG, \
         or run in a pod with a service account"
    )]
    Infer(String),
}

/// What an error of the Kubernetes client says, safe to log and to write in the decision log:
/// cut to 200 characters (an API server's message may quote a whole object), and of a failed
/// authentication only that it failed. kube-client's text for a failed exec plugin quotes the
/// command with the environment the kubeconfig gives it (`AWS_SECRET_ACCESS_KEY="…"`) and the
/// plugin's output, which is where credentials live.
pub(crate) fn error_text(e: &kube::Error) -> String {
    if is_auth_error(e) {
        return "authentication failed (the kubeconfig's credentials or its exec plugin; its \
                message is not quoted, as it can hold them: run the plugin by hand)"
            .into();
    }
    cut(&e.to_string())
}

/// Whether `e` is, or was caused by, the client's authentication (it comes wrapped as a
/// service error when the auth layer fails a request): no request went out.
pub(crate) fn is_auth_error(e: &kube::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<kube::client::AuthError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// `s` cut to 200 characters, marked where cut.
pub(crate) fn cut(s: &str) -> String {
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_kubeconfig_is_resolved_and_empty_context_refused() {
        let mut problems = Vec::new();
        let raw = RawKubernetes {
            kubeconfig: Some("kube/config".into()),
            context: Some(" ".into()),
            timeout: Some("soon".into()),
        };
        let k = KubernetesConfig::validate(Some(&raw), Path::new("/etc/prescale"), &mut problems);
        assert_eq!(
            k.kubeconfig.as_deref(),
            Some(Path::new("/etc/prescale/kube/config"))
        );
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].0, "kubernetes.context");
        assert_eq!(problems[1].0, "kubernetes.timeout");
        assert_eq!(k.timeout(), DEFAULT_TIMEOUT);
        let raw = RawKubernetes {
            timeout: Some("750ms".into()),
            ..RawKubernetes::default()
        };
        let k = KubernetesConfig::validate(Some(&raw), Path::new("/"), &mut problems);
        assert_eq!(k.timeout(), Duration::from_millis(750));
    }

    #[tokio::test]
    async fn a_missing_kubeconfig_names_the_key_and_file() {
        let k = KubernetesConfig {
            kubeconfig: Some("/nonexistent/kubeconfig".into()),
            context: None,
            timeout: None,
        };
        let e = k.client_config().await.unwrap_err().to_string();
        assert!(
            e.starts_with("kubernetes.kubeconfig /nonexistent/kubeconfig:"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_context_the_file_lacks_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:1\n\
             users:\n- name: u\n  user:\n    token: s3cret-token\ncontexts:\n- name: a\n  context:\n    cluster: c\n    user: u\ncurrent-context: a\n",
        )
        .unwrap();
        let ok = KubernetesConfig {
            kubeconfig: Some(path.clone()),
            context: None,
            timeout: None,
        };
        let cfg = ok.client_config().await.unwrap();
        assert_eq!(cfg.cluster_url.to_string(), "http://127.0.0.1:1/");
        let bad = KubernetesConfig {
            kubeconfig: Some(path),
            context: Some("b".into()),
            timeout: None,
        };
        let e = bad.client_config().await.unwrap_err().to_string();
        assert!(e.starts_with("kubernetes.context 'b' in "), "{e}");
        assert!(!e.contains("s3cret-token"), "{e}");
    }

    /// The replica's name is `POD_NAME`, then `HOSTNAME` (blank ones skipped), then the host's
    /// own name: never empty.
    #[test]
    fn the_replica_name_is_the_pod_name_then_the_host_name() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |var: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == var)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            replica_name(env(&[("POD_NAME", "prescale-2"), ("HOSTNAME", "x-1")])).unwrap(),
            "prescale-2"
        );
        assert_eq!(
            replica_name(env(&[("POD_NAME", "  "), ("HOSTNAME", "prescale-1")])).unwrap(),
            "prescale-1"
        );
        assert!(replica_name(env(&[])).is_some_and(|n| !n.trim().is_empty()));
    }

    /// kube-client's exec-plugin failure quotes the command with its environment and the
    /// plugin's output; none of it may reach a log, bare or wrapped as the auth layer does.
    #[test]
    fn an_auth_error_is_named_not_quoted() {
        use kube::client::AuthError;
        use std::os::unix::process::ExitStatusExt;
        let run = || AuthError::AuthExecRun {
            cmd: r#"AWS_SECRET_ACCESS_KEY="s3cr3t-env" "aws" "eks" "get-token""#.into(),
            out: Box::new(std::process::Output {
                status: std::process::ExitStatus::from_raw(256),
                stdout: b"token s3cr3t-out".to_vec(),
                stderr: Vec::new(),
            }),
        };
        for e in [
            kube::Error::Auth(run()),
            kube::Error::Service(Box::new(run())),
        ] {
            assert!(e.to_string().contains("s3cr3t"), "the premise: {e}");
            let text = error_text(&e);
            assert!(!text.contains("s3cr3t"), "{text}");
            assert!(text.starts_with("authentication failed"), "{text}");
            assert!(is_auth_error(&e));
        }
        let other = kube::Error::Service("connection reset".into());
        assert!(!is_auth_error(&other));
        assert!(error_text(&other).contains("connection reset"));
    }
}
