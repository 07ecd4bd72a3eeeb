//! `deploy/`: every Kubernetes manifest parses into the API's own types with no field the API
//! does not know, the RBAC is exactly what prescale will call, the ConfigMap's `prescale.toml`
//! passes prescale's own validation, and the container's probes, port, paths and user agree
//! with that configuration and with `deploy/Containerfile`.
//!
//! No API server can run here, so the manifests are held to the `k8s-openapi` types (the
//! newest Kubernetes version the crate knows). Those types skip unknown fields silently, so
//! each manifest is serialised back and compared with what was read: a field that did not
//! survive the round trip is one the API would not know either (a misspelling).

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Namespace, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use prescale::config::Config;
use prescale::forecast::Model;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// One parsed manifest, by kind.
#[derive(Debug)]
enum Manifest {
    Namespace(Box<Namespace>),
    ServiceAccount(Box<ServiceAccount>),
    ClusterRole(Box<ClusterRole>),
    ClusterRoleBinding(Box<ClusterRoleBinding>),
    Role(Box<Role>),
    RoleBinding(Box<RoleBinding>),
    ConfigMap(Box<ConfigMap>),
    Service(Box<Service>),
    StatefulSet(Box<StatefulSet>),
}

/// Deserialises `value` as `T` and refuses any field that does not survive the round trip
/// back to JSON, naming each by its path.
fn strict<T: DeserializeOwned + Serialize>(file: &str, value: &Value) -> Result<T, String> {
    let typed: T = serde_json::from_value(value.clone()).map_err(|e| format!("{file}: {e}"))?;
    let back = serde_json::to_value(&typed).map_err(|e| format!("{file}: {e}"))?;
    let mut unknown = Vec::new();
    lost_fields(value, &back, "", &mut unknown);
    if unknown.is_empty() {
        Ok(typed)
    } else {
        Err(format!(
            "{file}: not in the Kubernetes API (misspelt?): {}",
            unknown.join(", ")
        ))
    }
}

/// Paths in `read` that are missing or changed in `back`.
fn lost_fields(read: &Value, back: &Value, path: &str, out: &mut Vec<String>) {
    match (read, back) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, va) in a {
                let p = format!("{path}.{key}");
                match b.get(key) {
                    None => out.push(p),
                    Some(vb) => lost_fields(va, vb, &p, out),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (va, vb)) in a.iter().zip(b).enumerate() {
                lost_fields(va, vb, &format!("{path}[{i}]"), out);
            }
        }
        (a, b) if a != b => out.push(format!("{path} (read {a}, kept {b})")),
        _ => {}
    }
}

/// Parses one manifest's YAML into the type its `kind` names; `apiVersion` is checked by
/// `k8s-openapi`'s own deserialiser.
fn parse_manifest(file: &str, text: &str) -> Result<Manifest, String> {
    let value: Value = serde_yaml::from_str(text).map_err(|e| format!("{file}: {e}"))?;
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    Ok(match kind {
        "Namespace" => Manifest::Namespace(strict(file, &value)?),
        "ServiceAccount" => Manifest::ServiceAccount(strict(file, &value)?),
        "ClusterRole" => Manifest::ClusterRole(strict(file, &value)?),
        "ClusterRoleBinding" => Manifest::ClusterRoleBinding(strict(file, &value)?),
        "Role" => Manifest::Role(strict(file, &value)?),
        "RoleBinding" => Manifest::RoleBinding(strict(file, &value)?),
        "ConfigMap" => Manifest::ConfigMap(strict(file, &value)?),
        "Service" => Manifest::Service(strict(file, &value)?),
        "StatefulSet" => Manifest::StatefulSet(strict(file, &value)?),
        other => return Err(format!("{file}: kind '{other}' is not one deploy/ ships")),
    })
}

/// The files `deploy/kustomization.yaml` lists, after checking its own keys.
fn kustomization_resources() -> Vec<String> {
    let text = std::fs::read_to_string(deploy_dir().join("kustomization.yaml")).unwrap();
    let value: Value = serde_yaml::from_str(&text).unwrap();
    let keys: BTreeSet<&str> = value
        .as_object()
        .expect("kustomization.yaml is a mapping")
        .keys()
        .map(String::as_str)
        .collect();
    let known = BTreeSet::from(["apiVersion", "kind", "namespace", "labels", "resources"]);
    assert!(
        keys.is_subset(&known),
        "kustomization.yaml: unknown keys {:?}",
        keys.difference(&known).collect::<Vec<_>>()
    );
    assert_eq!(value["apiVersion"], "kustomize.config.k8s.io/v1beta1");
    assert_eq!(value["kind"], "Kustomization");
    value["resources"]
        .as_array()
        .expect("kustomization.yaml: resources is a list")
        .iter()
        .map(|r| r.as_str().expect("a resource is a file name").to_string())
        .collect()
}

/// Every manifest the kustomization lists, parsed.
fn manifests() -> Vec<(String, Manifest)> {
    kustomization_resources()
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(deploy_dir().join(&file))
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            let m = parse_manifest(&file, &text).unwrap_or_else(|e| panic!("{e}"));
            (file, m)
        })
        .collect()
}

fn statefulset() -> StatefulSet {
    manifests()
        .into_iter()
        .find_map(|(_, m)| match m {
            Manifest::StatefulSet(s) => Some(*s),
            _ => None,
        })
        .expect("deploy/ has a StatefulSet")
}

fn prescale_container(sts: &StatefulSet) -> Container {
    let pod = sts.spec.template.spec.as_ref().unwrap();
    assert_eq!(pod.containers.len(), 1, "one container: prescale");
    pod.containers[0].clone()
}

/// The ConfigMap's `prescale.toml`, written to a file and loaded as `prescale run` loads it.
fn configmap_config(dir: &Path) -> Config {
    let cm = manifests()
        .into_iter()
        .find_map(|(_, m)| match m {
            Manifest::ConfigMap(c) => Some(*c),
            _ => None,
        })
        .expect("deploy/ has a ConfigMap");
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get("prescale.toml"))
        .expect("the ConfigMap holds prescale.toml");
    let path = dir.join("prescale.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(&path).unwrap_or_else(|e| panic!("configmap.yaml prescale.toml: {e}"))
}

#[test]
fn every_manifest_parses_into_kubernetes_types_with_no_unknown_field() {
    let listed = kustomization_resources();
    let found = manifests();
    assert_eq!(found.len(), listed.len());
    // A manifest left out of the kustomization would never be applied.
    let mut on_disk: Vec<String> = std::fs::read_dir(deploy_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    on_disk.sort();
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(
        on_disk, sorted,
        "every deploy/*.yaml is in kustomization.yaml"
    );

    // Everything namespaced lives in the Namespace deploy/ creates, and the ServiceAccount
    // the bindings name is there.
    let ns = found
        .iter()
        .find_map(|(_, m)| match m {
            Manifest::Namespace(n) => n.metadata.name.clone(),
            _ => None,
        })
        .expect("a Namespace");
    for (file, m) in &found {
        let meta = match m {
            Manifest::Namespace(_) | Manifest::ClusterRole(_) | Manifest::ClusterRoleBinding(_) => {
                continue
            }
            Manifest::ServiceAccount(a) => {
                assert_eq!(a.metadata.name.as_deref(), Some("prescale"), "{file}");
                &a.metadata
            }
            Manifest::Role(r) => &r.metadata,
            Manifest::RoleBinding(b) => &b.metadata,
            Manifest::ConfigMap(c) => &c.metadata,
            Manifest::Service(s) => &s.metadata,
            Manifest::StatefulSet(s) => &s.metadata,
        };
        assert_eq!(meta.namespace.as_ref(), Some(&ns), "{file}");
    }
}

#[test]
fn a_misspelt_field_or_kind_is_refused() {
    let good = std::fs::read_to_string(deploy_dir().join("statefulset.yaml")).unwrap();
    assert!(parse_manifest("statefulset.yaml", &good).is_ok());

    let field = good.replace("readOnlyRootFilesystem:", "readOnlyRootFileSystem:");
    let err = parse_manifest("statefulset.yaml", &field).unwrap_err();
    assert!(err.contains("readOnlyRootFileSystem"), "{err}");

    let kind = good.replace("kind: StatefulSet", "kind: Statefulset");
    let err = parse_manifest("statefulset.yaml", &kind).unwrap_err();
    assert!(err.contains("Statefulset"), "{err}");

    let api = good.replace("apiVersion: apps/v1", "apiVersion: apps/v1beta2");
    assert!(parse_manifest("statefulset.yaml", &api).is_err());

    // A value of the wrong type is refused too, not coerced.
    let typed = good.replace("replicas: 2", "replicas: two");
    assert_ne!(typed, good);
    assert!(parse_manifest("statefulset.yaml", &typed).is_err());
}

/// One granted permission: (API group, resource, verb).
type Grant = (String, String, String);

fn grants(rules: &[PolicyRule]) -> BTreeSet<Grant> {
    let mut out = BTreeSet::new();
    for rule in rules {
        assert!(
            rule.resource_names.is_none() && rule.non_resource_urls.is_none(),
            "only group/resource/verb rules: {rule:?}"
        );
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

fn set(items: &[(&str, &str, &str)]) -> BTreeSet<Grant> {
    items
        .iter()
        .map(|(g, r, v)| (g.to_string(), r.to_string(), v.to_string()))
        .collect()
}

#[test]
fn rbac_grants_exactly_the_calls_prescale_will_make() {
    let mut cluster = None;
    let mut namespaced = None;
    let mut bindings = Vec::new();
    for (file, m) in manifests() {
        match m {
            Manifest::ClusterRole(r) => {
                assert!(cluster.is_none(), "{file}: one ClusterRole");
                assert!(r.aggregation_rule.is_none(), "{file}: no aggregation");
                cluster = Some(grants(r.rules.as_deref().unwrap_or_default()));
            }
            Manifest::Role(r) => {
                assert!(namespaced.is_none(), "{file}: one Role");
                namespaced = Some(grants(r.rules.as_deref().unwrap_or_default()));
            }
            Manifest::ClusterRoleBinding(b) => bindings.push((b.role_ref, b.subjects)),
            Manifest::RoleBinding(b) => bindings.push((b.role_ref, b.subjects)),
            _ => {}
        }
    }
    // The Kubernetes actuator (issue #9): the scale subresource, never the workload itself,
    // and an Event on the target per applied change, in whatever namespace it lives.
    assert_eq!(
        cluster.expect("a ClusterRole"),
        set(&[
            ("apps", "deployments/scale", "get"),
            ("apps", "deployments/scale", "patch"),
            ("apps", "statefulsets/scale", "get"),
            ("apps", "statefulsets/scale", "patch"),
            ("", "events", "create"),
        ])
    );
    // Leader election (issue #11 section 2), in prescale's own namespace only.
    assert_eq!(
        namespaced.expect("a Role"),
        set(&[
            ("coordination.k8s.io", "leases", "get"),
            ("coordination.k8s.io", "leases", "create"),
            ("coordination.k8s.io", "leases", "update"),
        ])
    );
    // Each role is bound to prescale's ServiceAccount and nobody else.
    assert_eq!(bindings.len(), 2);
    for (role_ref, subjects) in bindings {
        let subjects = subjects.unwrap_or_default();
        assert_eq!(subjects.len(), 1, "{}: one subject", role_ref.name);
        assert_eq!(subjects[0].kind, "ServiceAccount");
        assert_eq!(subjects[0].name, "prescale");
    }
    assert_eq!(
        statefulset()
            .spec
            .template
            .spec
            .unwrap()
            .service_account_name
            .as_deref(),
        Some("prescale")
    );
}

#[test]
fn configmap_prescale_toml_passes_prescale_validation() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = configmap_config(dir.path());
    assert!(cfg.prometheus.is_some(), "a real cluster reads Prometheus");
    assert!(cfg.live.replay.is_none());
    assert!(!cfg.live.workloads.is_empty());

    // The model path is the image's: the Containerfile copies models/web.model there. The
    // repository's copy is loaded in its place and held to what `run` checks at start-up.
    let model_path = cfg.live.model.clone().expect("run.model");
    let containerfile = std::fs::read_to_string(deploy_dir().join("Containerfile")).unwrap();
    let copy = format!("COPY models/web.model {}", model_path.display());
    assert!(
        containerfile.lines().any(|l| l.trim() == copy),
        "Containerfile has `{copy}`"
    );
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/web.model");
    let model = Model::load(&shipped).unwrap();
    for w in &cfg.live.workloads {
        let signal = cfg
            .signals
            .iter()
            .find(|s| w.demand.as_str().starts_with(&format!("{}{{", s.name)))
            .unwrap_or_else(|| panic!("workload '{}': demand names a signal", w.name));
        assert_eq!(signal.step, model.spec.step, "signal '{}'", signal.name);
        assert!(w.boot_time <= model.spec.window, "workload '{}'", w.name);
    }

    // Several replicas act one at a time: leader election is on, and each pod's identity is
    // its own name (the downward API), so the Lease names the pod that acts.
    if statefulset().spec.replicas.unwrap_or(1) > 1 {
        let leader = cfg
            .leader
            .as_ref()
            .expect("[leader_election] enabled with replicas > 1");
        assert_eq!(
            leader.namespace, None,
            "the pod's own namespace, where role.yaml grants"
        );
        let env = prescale_container(&statefulset())
            .env
            .clone()
            .unwrap_or_default();
        let pod_name = env
            .iter()
            .find(|e| e.name == "POD_NAME")
            .expect("POD_NAME env");
        let field = pod_name
            .value_from
            .as_ref()
            .and_then(|v| v.field_ref.as_ref());
        assert_eq!(field.map(|f| f.field_path.as_str()), Some("metadata.name"));
    }

    // The decision log lives on the StatefulSet's volume, the one writable path.
    let log_dir = cfg.live.decision_log.parent().unwrap().to_path_buf();
    let mounts = prescale_container(&statefulset()).volume_mounts.unwrap();
    let on_volume = mounts
        .iter()
        .find(|m| Path::new(&m.mount_path) == log_dir)
        .unwrap_or_else(|| panic!("{} is a volume mount", log_dir.display()));
    assert_ne!(on_volume.read_only, Some(true));
}

#[test]
fn probes_point_at_the_port_and_endpoints_export_listen_serves() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = configmap_config(dir.path());
    let listen = cfg.live.listen.expect("export enabled");
    // The kubelet probes the pod's IP, not its loopback.
    assert!(listen.ip().is_unspecified(), "export.listen = {listen}");

    let sts = statefulset();
    let c = prescale_container(&sts);
    let ports = c.ports.clone().unwrap();
    let resolve = |port: &IntOrString| match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => {
            ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("no container port named '{name}'"))
                .container_port
        }
    };
    for (probe, path) in [
        (&c.liveness_probe, "/healthz"),
        (&c.readiness_probe, "/readyz"),
    ] {
        let get = probe.as_ref().unwrap().http_get.as_ref().unwrap();
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(resolve(&get.port), i32::from(listen.port()), "{path}");
    }

    // The Service scrapes the same port, and selects the StatefulSet's pods.
    let svc = manifests()
        .into_iter()
        .find_map(|(_, m)| match m {
            Manifest::Service(s) => Some(*s),
            _ => None,
        })
        .unwrap();
    let spec = svc.spec.unwrap();
    let svc_ports = spec.ports.clone().unwrap();
    let named = |name: &str| {
        svc_ports
            .iter()
            .find(|p| p.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("the Service has no port '{name}'"))
            .clone()
    };
    assert_eq!(svc_ports.len(), 2, "/metrics' port and the KEDA scaler's");
    assert_eq!(
        resolve(named("metrics").target_port.as_ref().unwrap()),
        i32::from(listen.port())
    );
    // KEDA reaches the scaler (export.keda_listen) at the Service's `keda` port.
    let keda = cfg.live.keda_listen.expect("export.keda_listen set");
    assert!(keda.ip().is_unspecified(), "export.keda_listen = {keda}");
    let keda_port = named("keda");
    assert_eq!(keda_port.port, i32::from(keda.port()));
    assert_eq!(
        resolve(keda_port.target_port.as_ref().unwrap()),
        i32::from(keda.port())
    );
    let labels = sts.spec.template.metadata.as_ref().unwrap();
    for (k, v) in spec.selector.unwrap() {
        assert_eq!(labels.labels.as_ref().unwrap().get(&k), Some(&v), "{k}");
    }
    assert_eq!(sts.spec.service_name.as_deref(), Some("prescale"));

    // The config file is where the container is told to read it.
    let args = c.args.unwrap();
    assert_eq!(args, ["run", "--config", "/etc/prescale/prescale.toml"]);
    let mounts = c.volume_mounts.unwrap();
    assert!(mounts
        .iter()
        .any(|m| m.mount_path == "/etc/prescale" && m.read_only == Some(true)));
}

#[test]
fn workload_runs_non_root_on_a_read_only_root_as_the_image_does() {
    let sts = statefulset();
    let spec = &sts.spec;
    assert_eq!(spec.replicas, Some(2), "two replicas, one actor");
    let pod = spec.template.spec.as_ref().unwrap();
    let psc = pod.security_context.as_ref().unwrap();
    assert_eq!(psc.run_as_non_root, Some(true));
    assert_eq!(
        psc.seccomp_profile.as_ref().map(|s| s.type_.as_str()),
        Some("RuntimeDefault")
    );
    let c = prescale_container(&sts);
    let sc = c.security_context.as_ref().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    let caps = sc.capabilities.as_ref().unwrap();
    assert_eq!(caps.drop.as_deref(), Some(&["ALL".to_string()][..]));
    assert!(caps.add.is_none());
    let res = c.resources.as_ref().unwrap();
    assert!(res.requests.as_ref().is_some_and(|r| r.contains_key("cpu")));
    assert!(res
        .limits
        .as_ref()
        .is_some_and(|r| r.contains_key("memory")));

    // The Containerfile: numeric non-root user (runAsNonRoot can only check a number), the
    // same one the pod runs as, the entry point (prescale under tini, which reaps what an
    // apply_command leaves behind) and the default command the StatefulSet gives.
    let text = std::fs::read_to_string(deploy_dir().join("Containerfile")).unwrap();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    let user = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("USER");
    let uid: i64 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("numeric USER");
    assert_ne!(uid, 0);
    assert_eq!(psc.run_as_user, Some(uid));
    for line in [
        "FROM rust:1-bookworm AS build",
        "FROM debian:bookworm-slim",
        r#"ENTRYPOINT ["/usr/bin/tini", "--", "prescale"]"#,
        r#"CMD ["run", "--config", "/etc/prescale/prescale.toml"]"#,
    ] {
        assert!(lines.contains(&line), "Containerfile has `{line}`");
    }
    assert!(text.contains("cargo build --release --locked"));
}
