//! Tests of workload and pool specs: parsing, defaults and keyed validation.

use super::*;

#[test]
fn workload_parses_from_toml_with_defaults_and_units() {
    let w: WorkloadSpec = toml::from_str(
        r#"
        name = "api"
        demand = 'http_requests{service="api"}'
        unit = "rps"
        replica_capacity = 50
        max_replicas = 40
        boot_time = "90s"
        quantile = "p95"
        scale_down_window = "10m"
        current_replicas = 'kube_deployment_status_replicas{deployment="api"}'
        resources = { cpu = "500m", memory = "512Mi" }
        "#,
    )
    .unwrap();
    assert_eq!(w.boot_time, 90);
    assert_eq!(w.scale_down_window, 600);
    assert!((w.quantile - 0.95).abs() < 1e-12);
    assert_eq!(w.min_replicas, 1);
    assert_eq!(w.tolerance, 0.1);
    assert_eq!(w.resources, Resources::new(0.5, 512.0 * 1024.0 * 1024.0));
    assert!(matches!(
        w.current_replicas,
        Some(CurrentReplicas::Query(_))
    ));
    w.validate().unwrap();
}

#[test]
fn pool_parses_from_toml() {
    let p: PoolSpec = toml::from_str(
        r#"
        name = "general"
        capacity = { cpu = 4, memory = "16Gi" }
        boot_time = "3m"
        max_nodes = 20
        "#,
    )
    .unwrap();
    assert_eq!(p.boot_time, 180);
    assert_eq!(p.target_utilization, 0.8);
    assert_eq!(p.scale_down_window, 600);
    p.validate().unwrap();
}

#[test]
fn unknown_key_and_bad_values_are_rejected() {
    let base = "name='a'\ndemand='d'\nreplica_capacity=1\nmax_replicas=2\nboot_time='1m'\n";
    assert!(toml::from_str::<WorkloadSpec>(&format!("{base}replicas_max=3")).is_err());
    assert!(toml::from_str::<WorkloadSpec>(&format!("{base}quantile='p100'")).is_err());
    let e = toml::from_str::<WorkloadSpec>(&base.replace("'1m'", "'soon'")).unwrap_err();
    assert!(e.to_string().contains("soon"), "{e}");
    let w: WorkloadSpec = toml::from_str(&base.replace("'1m'", "'0s'")).unwrap();
    assert_eq!(w.boot_time, 0);
}

#[test]
fn validation_names_the_field() {
    let ok = WorkloadSpec::new("api", "d", 10.0, 5);
    ok.validate().unwrap();
    type Edit = Box<dyn Fn(&mut WorkloadSpec)>;
    let cases: Vec<(&str, Edit)> = vec![
        ("replica_capacity", Box::new(|w| w.replica_capacity = 0.0)),
        (
            "replica_capacity",
            Box::new(|w| w.replica_capacity = f64::NAN),
        ),
        ("min_replicas", Box::new(|w| w.min_replicas = 9)),
        ("max_replicas", Box::new(|w| w.max_replicas = 0)),
        ("quantile", Box::new(|w| w.quantile = 1.0)),
        ("tolerance", Box::new(|w| w.tolerance = f64::NAN)),
        ("headroom", Box::new(|w| w.headroom = -0.1)),
        (
            "target_utilization",
            Box::new(|w| w.target_utilization = Some(0.0)),
        ),
        ("max_step_up", Box::new(|w| w.max_step_up = Some(0))),
        ("max_step_down", Box::new(|w| w.max_step_down = Some(0))),
        (
            "resources.cpu",
            Box::new(|w| w.resources.cpu = f64::INFINITY),
        ),
        ("boot_time", Box::new(|w| w.boot_time = -1)),
    ];
    for (field, f) in cases {
        let mut w = ok.clone();
        f(&mut w);
        let err = w.validate().unwrap_err();
        let e = err.to_string();
        assert!(e.contains(field) && e.contains("\"api\""), "{field}: {e}");
        assert!(
            matches!(&err, SpecError::Key { key, .. } if key == field),
            "{field}: {err:?}"
        );
    }
    let mut p = PoolSpec::new("gp", Resources::new(4.0, 1e9), 3);
    p.validate().unwrap();
    p.min_nodes = 4;
    assert!(p.validate().unwrap_err().to_string().contains("min_nodes"));
    p.min_nodes = 0;
    p.capacity = Resources::new(0.0, 0.0);
    assert!(p.validate().unwrap_err().to_string().contains("capacity"));
}

#[test]
fn quantities() {
    assert_eq!(parse_quantity("250m").unwrap(), 0.25);
    assert_eq!(
        parse_quantity("2Gi").unwrap(),
        2.0 * 1024.0 * 1024.0 * 1024.0
    );
    assert_eq!(parse_quantity("1e3").unwrap(), 1000.0);
    assert!(parse_quantity("3 parsecs").is_err());
    assert!(parse_quantity("-1").is_err());
    assert_eq!(parse_quantile("p99").unwrap(), 0.99);
    assert!(parse_quantile("p0").is_err());
}

#[test]
fn a_workload_names_one_kubernetes_object_by_namespace_and_name() {
    let mut w = WorkloadSpec::new("api", "rps", 10.0, 5);
    assert_eq!(w.object(), None);
    w.deployment = Some("shop/api".into());
    w.validate().unwrap();
    let o = w.object().unwrap();
    assert_eq!(
        (o.kind, o.namespace.as_str(), o.name.as_str()),
        (ObjectKind::Deployment, "shop", "api")
    );
    w.statefulset = Some("shop/db".into());
    let e = w.validate().unwrap_err();
    assert!(
        matches!(&e, SpecError::Key { key, .. } if key == "statefulset"),
        "{e:?}"
    );
    w.statefulset = None;
    w.deployment = Some("api".into());
    let e = w.validate().unwrap_err().to_string();
    assert!(e.contains("namespace/name") && e.contains("\"api\""), "{e}");
    let parsed: WorkloadSpec = toml::from_str(
        "name = 'db'\ndemand = 'q'\nreplica_capacity = 1\nmax_replicas = 3\nboot_time = '1m'\n\
         statefulset = 'data/db'\nmode = 'auto'\n",
    )
    .unwrap();
    assert_eq!(parsed.mode, Mode::Auto);
    assert_eq!(parsed.object().unwrap().to_string(), "statefulset/data/db");
    assert!(toml::from_str::<WorkloadSpec>(
        "name = 'db'\ndemand = 'q'\nreplica_capacity = 1\nmax_replicas = 3\nboot_time = '1m'\nmode = 'act'\n"
    )
    .is_err());
}

#[test]
fn max_short_parses_as_a_share_and_is_validated_by_key() {
    let base = "name='a'\ndemand='d'\nreplica_capacity=1\nmax_replicas=2\nboot_time='1m'\n";
    let w: WorkloadSpec = toml::from_str(base).unwrap();
    assert_eq!((w.max_short, w.short_window), (None, 7 * 86_400));
    for (text, want) in [
        ("'1%'", 0.01),
        ("'0.5 %'", 0.005),
        ("0.02", 0.02),
        ("'50%'", 0.5),
    ] {
        let w: WorkloadSpec = toml::from_str(&format!("{base}max_short={text}")).unwrap();
        assert!((w.max_short.unwrap() - want).abs() < 1e-12, "{text}");
        w.validate().unwrap();
    }
    let w: WorkloadSpec =
        toml::from_str(&format!("{base}max_short='1%'\nshort_window='1d'")).unwrap();
    assert_eq!(w.short_window, 86_400);
    // Not a share at all: refused while parsing, naming the text.
    for bad in ["'often'", "'150%'", "'-1%'"] {
        let e = toml::from_str::<WorkloadSpec>(&format!("{base}max_short={bad}")).unwrap_err();
        assert!(e.to_string().contains(bad.trim_matches('\'')), "{e}");
    }
    // A share out of the budget's range, or a window too short to say anything: the key.
    for (extra, key) in [
        ("max_short='0%'", "max_short"),
        ("max_short='60%'", "max_short"),
        ("max_short=0.9", "max_short"),
        ("max_short='1%'\nshort_window='10m'", "short_window"),
    ] {
        let w: WorkloadSpec = toml::from_str(&format!("{base}{extra}")).unwrap();
        match w.validate() {
            Err(SpecError::Key {
                key: k, message, ..
            }) => {
                assert_eq!(k, key, "{extra}: {message}");
                assert!(message.starts_with(key), "{message}");
            }
            other => panic!("{extra}: {other:?}"),
        }
    }
}
