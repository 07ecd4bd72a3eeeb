//! Whether every shard splits the workloads over the same number of replicas, read from the
//! `prescale_shard_info{ordinal,replicas}` every replica exports.
//!
//! The configuration is read once, at start, so while the shard count changes (N edited in
//! the ConfigMap and the StatefulSet scaled, the pods restarted one by one) old pods split by
//! the old N and new pods by the new one. A workload that moves is then owned by two running
//! replicas, one under each N, and both would act on it, for as long as the roll takes or
//! forever if the old pods are never restarted. So a sharded replica acts only while nothing
//! it can see disagrees: while Prometheus shows a replica exporting another `replicas`, it
//! holds its workload changes (decided, logged `skipped (shards disagree)`, not carried out).
//! Both sides hold, so a resize costs changes for its duration, never a workload acted on
//! twice. An unsharded prescale exports `replicas="1"`: sharding an existing deployment holds
//! the new shards until the old process is gone, and that one goes on acting alone.
//!
//! Only evidence holds: a failed query, or no series (prescale's `/metrics` not scraped),
//! leaves acting as it was, with a warning, since holding then would stop every deployment
//! whose Prometheus does not scrape prescale. `shard.selector` narrows the query, as it does
//! the read-back: another prescale deployment in the same Prometheus must not hold this one.

use crate::collect::prometheus::{InstantSample, QueryData};
use crate::collect::PromClient;

/// The family every replica exports once at start.
pub const SHARD_INFO_METRIC: &str = "prescale_shard_info";

/// Reads the other replicas' shard counts each cycle through the collector's client.
#[derive(Clone)]
pub struct ShardCheck {
    client: PromClient,
    selector: Option<String>,
    replicas: u32,
}

impl ShardCheck {
    /// A check for a replica configured with `replicas` shards, asking only for the series
    /// `selector` matches (`shard.selector`, already checked).
    pub fn new(client: PromClient, selector: Option<String>, replicas: u32) -> Self {
        ShardCheck {
            client,
            selector,
            replicas,
        }
    }

    /// `Ok(Some(why))` when a replica in view runs with another shard count, `Ok(None)` when
    /// none does, `Err` when Prometheus could not tell.
    pub async fn check(&self) -> Result<Option<String>, String> {
        let query = super::selector::narrowed(SHARD_INFO_METRIC, self.selector.as_deref());
        let answer = self
            .client
            .query(&query, None)
            .await
            .map_err(|e| format!("reading {query}: {e}"))?;
        match answer.data {
            QueryData::Vector(v) => Ok(disagreeing(&v, self.replicas)),
            other => Err(format!(
                "{query} answered a {}, not a vector",
                other.type_name()
            )),
        }
    }
}

/// The replicas among `samples` whose `replicas` label is not `mine`, described for a
/// reason (their target labels and count), or `None` when all agree.
pub fn disagreeing(samples: &[InstantSample], mine: u32) -> Option<String> {
    let mut others: Vec<String> = samples
        .iter()
        .filter(|s| s.metric.get("replicas").map(String::as_str) != Some(&mine.to_string()))
        .map(|s| {
            let labels: Vec<String> = s
                .metric
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "__name__" | "replicas"))
                .map(|(k, v)| format!("{k}=\"{v}\""))
                .collect();
            let theirs = s.metric.get("replicas").map_or("none", String::as_str);
            format!(
                "{{{}}} runs with shard.replicas = {theirs}",
                labels.join(", ")
            )
        })
        .collect();
    if others.is_empty() {
        return None;
    }
    others.sort();
    let shown = others.len().min(3);
    let more = match others.len() - shown {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    Some(format!(
        "{}{more}, this one with {mine}: a resize is under way (or a pod was not restarted \
         after one); workload changes held until every shard runs with one count",
        others[..shown].join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::prometheus::Point;
    use std::collections::BTreeMap;

    fn info(instance: &str, ordinal: &str, replicas: &str) -> InstantSample {
        let metric: BTreeMap<String, String> = [
            ("__name__", SHARD_INFO_METRIC),
            ("instance", instance),
            ("job", "prescale"),
            ("ordinal", ordinal),
            ("replicas", replicas),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        InstantSample {
            metric,
            value: Some(Point {
                ts: 0.0,
                value: 1.0,
            }),
        }
    }

    #[test]
    fn one_count_everywhere_agrees() {
        let v = [
            info("a:1", "0", "3"),
            info("b:1", "1", "3"),
            info("c:1", "2", "3"),
        ];
        assert_eq!(disagreeing(&v, 3), None);
        assert_eq!(disagreeing(&[], 3), None);
    }

    #[test]
    fn another_count_is_named_with_its_target() {
        let v = [info("a:1", "0", "3"), info("d:1", "3", "4")];
        let why = disagreeing(&v, 3).unwrap();
        assert!(
            why.starts_with(
                "{instance=\"d:1\", job=\"prescale\", ordinal=\"3\"} runs with \
                 shard.replicas = 4, this one with 3"
            ),
            "{why}"
        );
        // Seen from the new count, the old replica disagrees too: both sides hold.
        assert!(disagreeing(&v, 4).is_some());
    }

    #[test]
    fn an_unsharded_prescale_disagrees_and_many_are_summarised() {
        let v: Vec<InstantSample> = (0..5).map(|i| info(&format!("u{i}:1"), "0", "1")).collect();
        let why = disagreeing(&v, 2).unwrap();
        assert!(why.contains("and 2 more"), "{why}");
        let unlabelled = InstantSample {
            metric: BTreeMap::new(),
            value: None,
        };
        assert!(disagreeing(&[unlabelled], 2)
            .unwrap()
            .contains("shard.replicas = none"));
    }
}
