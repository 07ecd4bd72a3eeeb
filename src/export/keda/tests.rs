//! The value/target rule against the HPA's formula (milli-units, tolerance included), and the
//! lookup errors.

use super::proto::ScaledObjectRef;
use super::*;
use proptest::prelude::*;

/// Whether any value could make the HPA go from `c` to `d`: not when the change is within
/// its tolerance band for every value whose ceiling is `d` (checked on the interval's ends,
/// in milli-units, independently of the rule's own choice).
fn reachable(d: u64, c: u64, target_milli: i64) -> bool {
    if c == 0 || d == c || d == 0 {
        return true;
    }
    let ratio = |v: i64| v as f64 / (target_milli as f64 * c as f64);
    let (lo, hi) = ((d as i64 - 1) * target_milli + 1, d as i64 * target_milli);
    (1.0 - ratio(lo)).abs() > HPA_TOLERANCE || (1.0 - ratio(hi)).abs() > HPA_TOLERANCE
}

proptest! {
    /// Whatever the planner's count, the current count, the capacity and the forecast: the
    /// HPA arrives at exactly the planner's count, unless no value could make it (a change
    /// inside the tolerance band), and then it keeps the current count.
    #[test]
    fn the_hpa_arrives_at_the_planners_count(
        d in 0u64..400,
        c in 0u64..400,
        per_replica in prop_oneof![0.0001f64..0.01, 0.01f64..10.0, 10.0f64..5000.0],
        forecast in proptest::option::of(0.0f64..1e6),
    ) {
        let m = metric_for(d, c, per_replica, forecast);
        let got = hpa_replicas(m.value, m.target, c).expect("target is at least 1 milli");
        let t = to_milli(m.target);
        prop_assert!(t >= 1);
        if reachable(d, c, t) {
            prop_assert_eq!(got, d, "value {} target {} current {}", m.value, m.target, c);
        } else {
            prop_assert_eq!(got, c);
        }
        // Scaled to zero (KEDA activates it, then the HPA's first step) lands on d too.
        prop_assert_eq!(hpa_replicas(m.value, m.target, 0), Some(d));
    }
}

/// The target is the per-replica capacity, and the forecast demand is served as it is when
/// the HPA turns it into the planner's count: 412 rps at 50 per replica is 9 replicas.
#[test]
fn the_forecast_demand_is_the_value_when_it_gives_the_count() {
    let m = metric_for(9, 5, 50.0, Some(412.0));
    assert_eq!(m.value, 412.0);
    assert_eq!(to_milli(m.target), 50_000);
    assert_eq!(hpa_replicas(m.value, m.target, 5), Some(9));
}

/// A guard moved the count (max_replicas 6 under a forecast of 9 replicas' demand; a
/// stabilised 9 under a forecast of 4): the value is the count's demand at target.
#[test]
fn a_guarded_count_gets_its_own_value() {
    let capped = metric_for(6, 5, 50.0, Some(412.0));
    assert_eq!(to_milli(capped.value), 300_000);
    assert_eq!(hpa_replicas(capped.value, capped.target, 2), Some(6));
    let held = metric_for(9, 9, 50.0, Some(180.0));
    assert_eq!(to_milli(held.value), 450_000);
    assert_eq!(hpa_replicas(held.value, held.target, 9), Some(9));
}

/// Holding 10 with a forecast of 10.5 replicas' demand: the HPA's band would hold 10 too, but
/// from any other count the forecast's ceiling is 11, so the count's own value is sent.
#[test]
fn a_forecast_outside_the_counts_interval_is_not_sent() {
    let m = metric_for(10, 10, 50.0, Some(525.0));
    assert_eq!(to_milli(m.value), 500_000);
    assert_eq!(hpa_replicas(m.value, m.target, 3), Some(10));
}

/// Scaling down from 10 to 9: the top of 9's interval (450 at 50) is a ratio of 0.9, inside
/// the tolerance, so the HPA would hold 10; the bottom (400.001) leaves the band.
#[test]
fn a_scale_down_takes_the_bottom_of_the_interval() {
    let m = metric_for(9, 10, 50.0, None);
    assert_eq!(to_milli(m.value), 400_001);
    assert_eq!(hpa_replicas(m.value, m.target, 10), Some(9));
    assert_eq!(hpa_replicas(450.0, 50.0, 10), Some(10), "the HPA's band");
}

/// 20 → 21 is 5 %: the HPA holds whatever the value, the one case the rule cannot help.
#[test]
fn a_change_inside_the_tolerance_band_is_held_by_the_hpa() {
    let m = metric_for(21, 20, 50.0, Some(1040.0));
    assert_eq!(hpa_replicas(m.value, m.target, 20), Some(20));
    assert!(!reachable(21, 20, 50_000));
}

/// Zero wanted: value 0, and IsActive says inactive.
#[test]
fn zero_replicas_is_value_zero_and_inactive() {
    let s = ScalerSample {
        workload: "batch".into(),
        per_replica: 10.0,
        forecast_peak: Some(0.0),
        current_replicas: 2,
        ..ScalerSample::default()
    };
    assert_eq!(s.hpa_metric().value, 0.0);
    assert!(!s.active());
}

/// Capacities below a milli-unit or absurdly large still give a target the HPA can divide by.
#[test]
fn extreme_capacities_give_a_usable_target() {
    assert_eq!(to_milli(metric_for(3, 1, 1e-9, None).target), 1);
    assert_eq!(
        to_milli(metric_for(3, 1, f64::NAN, None).target),
        MAX_TARGET_MILLI
    );
    let big = metric_for(u64::from(u32::MAX), 1, 1e12, None);
    assert_eq!(to_milli(big.target), MAX_TARGET_MILLI);
    assert!(to_milli(big.value) > 0, "no overflow");
}

#[test]
fn metric_names_are_valid_kubernetes_name_segments() {
    assert_eq!(metric_name("api"), "prescale-api");
    assert_eq!(metric_name("Web_Front end"), "prescale-web-front-end");
}

fn so(meta: &[(&str, &str)]) -> ScaledObjectRef {
    ScaledObjectRef {
        name: "api-so".into(),
        namespace: "shop".into(),
        scaler_metadata: meta
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// Each error names the ScaledObject and the workload or key, with its code.
#[test]
fn lookup_errors_name_what_is_wrong() {
    use tonic::Code;
    let sample = |w: &str, peak| ScalerSample {
        workload: w.into(),
        demand: format!("rps{{service=\"{w}\"}}"),
        forecast_peak: peak,
        per_replica: 50.0,
        ..ScalerSample::default()
    };
    let view = Some(std::sync::Arc::new(ScalerView::new(&[
        sample("api", Some(100.0)),
        sample("web", None),
    ])));
    let err = |v: &Option<std::sync::Arc<ScalerView>>, meta| {
        let e = service::lookup(v, &so(meta)).unwrap_err();
        (e.code(), e.message().to_string())
    };
    let (code, msg) = err(&view, &[]);
    assert_eq!(code, Code::InvalidArgument);
    assert!(
        msg.contains("shop/api-so") && msg.contains("'workload'"),
        "{msg}"
    );
    let (code, msg) = err(&view, &[("workload", "cart")]);
    assert_eq!(code, Code::NotFound);
    assert!(msg.contains("'cart'") && msg.contains("api, web"), "{msg}");
    let (code, msg) = err(&view, &[("workload", "web")]);
    assert_eq!(code, Code::Unavailable);
    assert!(
        msg.contains("'web'") && msg.contains("no forecast"),
        "{msg}"
    );
    let (code, msg) = err(&None, &[("workload", "api")]);
    assert_eq!(code, Code::Unavailable);
    assert!(
        msg.contains("'api'") && msg.contains("first cycle"),
        "{msg}"
    );
    let ok = service::lookup(&view, &so(&[("workload", "api")])).unwrap();
    assert_eq!(ok.workload, "api");
}
