//! `prescale_keda_requests_total`: the KEDA external scaler's calls, by method and status.

use super::labels::Lv;
use super::Metrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// The methods of KEDA's external-scaler interface, as the `method` label. Each has an `OK`
/// counter at 0 from the start, so that `rate()` has a baseline before KEDA's first call.
pub const KEDA_METHODS: [&str; 5] = [
    "IsActive",
    "StreamIsActive",
    "GetMetricSpec",
    "GetMetrics",
    "StreamMetricSpec",
];

/// A call's method and gRPC status code (`OK`, `NOT_FOUND`, ...): both small fixed
/// vocabularies, never a workload name from a request (a caller could otherwise grow
/// `/metrics` at will).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct KedaLabels {
    pub(super) method: Lv,
    pub(super) code: Lv,
}

pub(super) type KedaFamily = Family<KedaLabels, Counter>;

/// The family with its `OK` counters at 0.
pub(super) fn family() -> KedaFamily {
    let f = KedaFamily::default();
    for method in KEDA_METHODS {
        let _ = f.get_or_create(&KedaLabels {
            method: method.into(),
            code: "OK".into(),
        });
    }
    f
}

impl Metrics {
    /// Counts one call of the KEDA scaler's `method` (one of [`KEDA_METHODS`]) answered with
    /// `code`, a gRPC status code's canonical name.
    pub fn keda_request(&self, method: &str, code: &str) {
        self.keda_requests
            .get_or_create(&KedaLabels {
                method: method.into(),
                code: code.into(),
            })
            .inc();
    }
}
