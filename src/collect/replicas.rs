//! Reading how many replicas a workload runs now, from a PromQL query per workload.
//!
//! The live loop asks this each cycle for workloads configured with a `current_replicas`
//! query; it keeps the query and its answer's shape here, behind the collector's interface,
//! so the loop never matches on Prometheus' wire types.

use super::prometheus::{PromClient, QueryData};
use futures_util::stream::{self, StreamExt};

/// Queries in flight at once. One after the other, a store slow to answer made a cycle's read
/// take its timeout per workload (20 workloads at 10 s: over three minutes); all at once would
/// burst a store with one query per workload.
const IN_FLIGHT: usize = 8;

/// Reads replica counts through a Prometheus client.
#[derive(Clone)]
pub struct ReplicaReader {
    client: PromClient,
}

impl ReplicaReader {
    /// A reader sharing the collector's client (and so its timeouts and address).
    pub fn new(client: PromClient) -> Self {
        ReplicaReader { client }
    }

    /// Evaluates each `(workload, query)` at `at`, up to 8 at once, and answers in their
    /// order. A count is `None` when the query failed, or its answer was not one finite,
    /// non-negative sample: the caller then keeps its last count and treats the workload's
    /// data as stale, so nothing scales down on a guess. Each such case is logged with the
    /// workload's name.
    pub async fn read<'a>(
        &self,
        queries: impl IntoIterator<Item = (&'a str, &'a str)>,
        at: i64,
    ) -> Vec<(&'a str, Option<u32>)> {
        stream::iter(queries)
            .map(|(workload, q)| async move { (workload, self.count(workload, q, at).await) })
            .buffered(IN_FLIGHT)
            .collect()
            .await
    }

    /// One workload's count (see [`ReplicaReader::read`]).
    async fn count(&self, workload: &str, q: &str, at: i64) -> Option<u32> {
        let value = match self.client.query(q, Some(at)).await {
            Ok(a) => match a.data {
                QueryData::Vector(v) if v.len() == 1 => v[0].value.as_ref().map(|p| p.value),
                QueryData::Scalar(p) => Some(p.value),
                _ => None,
            },
            Err(e) => {
                tracing::warn!("workload '{workload}': current_replicas query failed: {e}");
                None
            }
        };
        match value {
            Some(v) if v.is_finite() && v >= 0.0 => Some(v.round().min(f64::from(u32::MAX)) as u32),
            _ => {
                tracing::warn!(
                    "workload '{workload}': current_replicas query gave no single sample; \
                     keeping the last count"
                );
                None
            }
        }
    }
}
