//! `[leader_election]` validation, the identity default and the [`Leadership`] handle.

use super::*;
use crate::config::Config;
use std::path::Path;

const BASE: &str = r#"
[[signal]]
name = "demand"
query = "q"
step = "1m"
lookback = "1h"
"#;

fn load(section: &str) -> Result<Config, String> {
    Config::from_toml(
        Path::new("/etc/prescale/prescale.toml"),
        &format!("{BASE}\n{section}"),
    )
    .map_err(|e| e.to_string())
}

#[test]
fn defaults_are_client_gos() {
    let cfg = load("[leader_election]\nenabled = true\n").unwrap();
    let l = cfg.leader.unwrap();
    assert_eq!(l.name, "prescale");
    assert_eq!(l.namespace, None);
    assert_eq!(l.lease_duration, Duration::from_secs(15));
    assert_eq!(l.renew_deadline, Duration::from_secs(10));
    assert_eq!(l.retry_period, Duration::from_secs(2));
    assert_eq!(l.request_timeout(), Duration::from_secs(5));
    // POD_NAME or the host name, then `_` and 8 hex digits.
    let (base, suffix) = l.identity.rsplit_once('_').unwrap();
    assert!(!base.is_empty());
    assert_eq!(suffix.len(), 8);
    assert!(suffix.chars().all(|c| c.is_ascii_hexdigit()));
    // Absent or disabled: no election.
    assert!(load("").unwrap().leader.is_none());
    assert!(load("[leader_election]\nenabled = false\n")
        .unwrap()
        .leader
        .is_none());
}

#[test]
fn sub_second_periods_and_an_explicit_identity() {
    let cfg = load(
        "[leader_election]\nenabled = true\nnamespace = \"ops\"\nname = \"prescale.web\"\n\
         identity = \"replica-a\"\nlease_duration = \"3s\"\nrenew_deadline = \"2s\"\n\
         retry_period = \"500ms\"\n[kubernetes]\nkubeconfig = \"kube.yaml\"\ncontext = \"prod\"\n",
    )
    .unwrap();
    let l = cfg.leader.unwrap();
    // Suffixed too: replicas reading one file must not share an identity.
    let (base, suffix) = l.identity.rsplit_once('_').unwrap();
    assert_eq!((base, suffix.len()), ("replica-a", 8));
    assert_eq!(l.namespace.as_deref(), Some("ops"));
    assert_eq!(l.retry_period, Duration::from_millis(500));
    assert_eq!(l.request_timeout(), Duration::from_secs(1));
    assert_eq!(
        cfg.kubernetes.kubeconfig.as_deref(),
        Some(Path::new("/etc/prescale/kube.yaml"))
    );
    assert_eq!(cfg.kubernetes.context.as_deref(), Some("prod"));
}

#[test]
fn every_bad_key_is_named() {
    let e = load(
        "[leader_election]\nenabled = true\nlease_duration = \"10s\"\nrenew_deadline = \"10s\"\n\
         retry_period = \"12s\"\n",
    )
    .unwrap_err();
    assert!(
        e.contains("leader_election.renew_deadline: 10s must be shorter than lease_duration (10s)"),
        "{e}"
    );
    assert!(
        e.contains("leader_election.retry_period: 12s must be shorter than renew_deadline (10s)"),
        "{e}"
    );
    let e = load("[leader_election]\nenabled = true\nlease_duration = \"1500ms\"\n").unwrap_err();
    assert!(
        e.contains("leader_election.lease_duration: 1s 500ms is not whole seconds"),
        "{e}"
    );
    let e = load("[leader_election]\nretry_period = \"soon\"\nname = \"Prescale_Lease\"\nnamespace = \"a.b\"\nidentity = \"\"\n").unwrap_err();
    for key in ["retry_period", "name", "namespace", "identity"] {
        assert!(
            e.contains(&format!("leader_election.{key}: ")),
            "{key}: {e}"
        );
    }
    let e = load("[leader_election]\nenabled = true\nlease = \"15s\"\n").unwrap_err();
    assert!(e.contains("unknown field `lease`"), "{e}");
    let e = load("[kubernetes]\nkubeconfig = \"k\"\ntoken = \"x\"\n").unwrap_err();
    assert!(e.contains("unknown field `token`"), "{e}");
}

#[tokio::test]
async fn leadership_reads_the_clock_and_lost_resolves_when_it_lapses() {
    let l = Leadership::new();
    assert!(!l.is_leader());
    l.lost().await; // not leading: at once
    l.set(Some(Instant::now() + Duration::from_millis(150)), 2);
    assert!(l.is_leader());
    assert_eq!(l.transitions(), 2);
    let t0 = Instant::now();
    l.lost().await;
    assert!(!l.is_leader(), "no one told it: the clock did");
    assert!(t0.elapsed() >= Duration::from_millis(100));
    assert!(Leadership::always().is_leader());
}
