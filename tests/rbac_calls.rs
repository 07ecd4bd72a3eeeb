//! Issue #11 section 1: the RBAC in `deploy/` covers every API call prescale makes and no
//! more. `prescale run --apply` with leader election on and the Kubernetes actuator runs
//! against one fake API server (the Lease endpoints of `common/fake_lease.rs` and the scale
//! and Event endpoints of `common/fake_kube.rs` on one port); every request it sent, as
//! recorded there, becomes an RBAC grant (API group, resource[/subresource], verb), and that
//! set must equal what `deploy/clusterrole.yaml` and `deploy/role.yaml` grant, parsed into
//! `k8s-openapi`'s types.

use crate::cli;
use crate::fake_kube;
use crate::fake_lease;

use fake_kube::FakeKube;
use fake_lease::FakeLease;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// One permission: (API group, resource or `resource/subresource`, verb).
type Grant = (String, String, String);

/// What RBAC must allow for a request: its verb from the method, group and resource from the
/// path (`/api/v1/namespaces/{ns}/{resource}[/{name}[/{sub}]]` for the core group ``,
/// `/apis/{group}/{version}/namespaces/{ns}/…` otherwise). Panics on a path of another shape:
/// prescale has no business there.
fn grant_of(method: &str, path: &str) -> Grant {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => panic!("{method} {path}: not an API path"),
    };
    let resource = match rest {
        ["namespaces", _, resource] | ["namespaces", _, resource, _] => resource.to_string(),
        ["namespaces", _, resource, _, sub] => format!("{resource}/{sub}"),
        _ => panic!("{method} {path}: not a namespaced resource"),
    };
    let verb = match (method, rest.len()) {
        ("GET", 3) => "list",
        ("GET", _) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", _) => "delete",
        _ => panic!("{method} {path}: unexpected method"),
    };
    (group.to_string(), resource, verb.to_string())
}

fn grants(rules: &[PolicyRule]) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for rule in rules {
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    out.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    out
}

/// `deploy/<file>` as a `T`, through JSON as `kubectl` would send it.
fn manifest<T: serde::de::DeserializeOwned>(file: &str) -> T {
    let path = cli::repo(&format!("deploy/{file}"));
    let text = std::fs::read_to_string(&path).unwrap();
    let value: serde_json::Value = serde_yaml::from_str(&text).unwrap();
    serde_json::from_value(value).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// The demo configuration with every workload in `auto` mode on a Deployment or StatefulSet
/// of the fake, the Kubernetes actuator, and leader election through the same API server.
fn config(dir: &Path, port: u16) -> std::path::PathBuf {
    let cfg = cli::demo_config(dir, |line| match cli::key(line) {
        "decision_log" => Some(format!(
            "decision_log = {:?}\nactuator = \"kubernetes\"",
            dir.join("d.jsonl").display().to_string()
        )),
        "cycles" => Some(String::new()),
        "listen" => Some(cli::listen_line(Some(port))),
        "quantile" => Some(format!("{line}\nmode = \"auto\"")),
        _ => fake_kube::demo_object(line),
    });
    fake_kube::with_kubernetes(
        &cfg,
        "\n[leader_election]\nenabled = true\nnamespace = \"prescale\"\nname = \"prescale\"\n\
         lease_duration = \"3s\"\nrenew_deadline = \"2s\"\nretry_period = \"500ms\"\n",
    );
    cfg
}

#[test]
fn rbac_covers_exactly_the_api_calls_prescale_makes() {
    let kube = FakeKube::start();
    kube.add("deployments", "shop", "web", 2);
    kube.add("deployments", "shop", "api", 2);
    kube.add("statefulsets", "shop", "db-readers", 1);
    let api = FakeLease::start_with(kube.router());
    let dir = tempfile::tempdir().unwrap();
    api.kubeconfig(&dir.path().join("kubeconfig"), "token-prescale-0");
    let cfg = config(dir.path(), cli::free_port());
    let out = std::fs::File::create(dir.path().join("out.txt")).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_prescale"))
        .args(["run", "--apply", "--config", cfg.to_str().unwrap()])
        .env("POD_NAME", "prescale-0")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let mut running = cli::Running(child, None);

    // Every kind of call, each at least once: lease created and renewed, both kinds of scale
    // read and patched, an Event posted.
    let sent = || -> BTreeSet<Grant> {
        let lease = api.requests().into_iter().map(|r| {
            let path = r.uri.split('?').next().unwrap_or("").to_string();
            (r.method, path)
        });
        let scale = kube.requests().into_iter().map(|r| (r.method, r.path));
        lease.chain(scale).map(|(m, p)| grant_of(&m, &p)).collect()
    };
    let want = |g: &str, r: &str, v: &str| (g.to_string(), r.to_string(), v.to_string());
    let every = [
        want("coordination.k8s.io", "leases", "get"),
        want("coordination.k8s.io", "leases", "create"),
        want("coordination.k8s.io", "leases", "update"),
        want("apps", "deployments/scale", "get"),
        want("apps", "deployments/scale", "patch"),
        want("apps", "statefulsets/scale", "get"),
        want("apps", "statefulsets/scale", "patch"),
        want("", "events", "create"),
    ];
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(90) && !every.iter().all(|g| sent().contains(g)) {
        assert!(
            running.0.try_wait().unwrap().is_none(),
            "prescale ended early:\n{}",
            std::fs::read_to_string(dir.path().join("out.txt")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A stop releases the Lease (one more update) before the process ends.
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &running.0.id().to_string()])
        .status();
    let t1 = Instant::now();
    while running.0.try_wait().unwrap().is_none() && t1.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = std::fs::read_to_string(dir.path().join("out.txt")).unwrap_or_default();
    let sent = sent();
    for g in &every {
        assert!(sent.contains(g), "{g:?} never sent: {sent:?}\n{output}");
    }

    let cluster: ClusterRole = manifest("clusterrole.yaml");
    let role: Role = manifest("role.yaml");
    let mut granted = grants(cluster.rules.as_deref().unwrap_or_default());
    granted.extend(grants(role.rules.as_deref().unwrap_or_default()));
    assert_eq!(
        sent, granted,
        "left: the calls prescale made; right: what deploy/ grants"
    );
}

/// The classification itself: verbs from methods, subresources kept, the core group empty.
#[test]
fn requests_map_to_rbac_grants() {
    let g = |m, p| grant_of(m, p);
    let t = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        g(
            "PATCH",
            "/apis/apps/v1/namespaces/shop/deployments/web/scale"
        ),
        t("apps", "deployments/scale", "patch")
    );
    assert_eq!(
        g("POST", "/api/v1/namespaces/shop/events"),
        t("", "events", "create")
    );
    assert_eq!(
        g(
            "PUT",
            "/apis/coordination.k8s.io/v1/namespaces/prescale/leases/prescale"
        ),
        t("coordination.k8s.io", "leases", "update")
    );
    assert_eq!(
        g("GET", "/apis/apps/v1/namespaces/shop/deployments"),
        t("apps", "deployments", "list")
    );
    assert_eq!(
        g("GET", "/apis/apps/v1/namespaces/shop/deployments/web"),
        t("apps", "deployments", "get")
    );
}
