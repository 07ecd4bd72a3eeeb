//! Tests of the collector's polling, ingest and export.

use super::*;
use crate::collect::source::Replay;
use crate::series::Series;
use rand::SeedableRng;
use std::sync::Arc;

#[test]
fn backoff_is_capped_full_jitter() {
    let policy = RetryPolicy {
        max_attempts: 10,
        base: Duration::from_millis(250),
        cap: Duration::from_secs(30),
    };
    let mut b = Backoff::new(policy);
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let ceilings: Vec<_> = (0..10)
        .map(|_| {
            let c = b.ceiling();
            assert!(b.next_delay(&mut rng) <= c);
            c
        })
        .collect();
    assert_eq!(ceilings[0], Duration::from_millis(250));
    assert_eq!(ceilings[3], Duration::from_secs(2));
    assert_eq!(ceilings[9], Duration::from_secs(30));
    b.reset();
    assert_eq!(b.ceiling(), Duration::from_millis(250));
}

fn replay(values: Vec<f64>) -> Replay {
    Replay::new().with_signal(
        "cpu",
        vec![Series {
            key: SeriesKey::new("web"),
            start: 6000,
            step: 60,
            values,
        }],
    )
}

#[tokio::test]
async fn replay_through_backfill_and_polls() {
    let values: Vec<f64> = (0..100)
        .map(|i| if i == 50 { f64::NAN } else { i as f64 })
        .collect();
    let sig = SignalConfig::new("cpu", "unused", 60, 3600);
    let mut c = Collector::with_source(replay(values), vec![sig], RetryPolicy::default(), 0)
        .await
        .unwrap();
    // Backfill ending at step 40 (t = 6000 + 40·60 + 30: mid-step).
    let r = c.backfill(6000 + 40 * 60 + 30).await;
    assert!(r.ok());
    assert_eq!(r.signals[0].appended, 41);
    let key = SeriesKey::new("cpu{series=\"web\"}");
    let ring = c.store().series(&key).unwrap();
    assert_eq!(ring.oldest_timestamp(), Some(6000));
    assert_eq!(ring.tail(100), (0..=40).map(f64::from).collect::<Vec<_>>());
    // Each poll one step later hands out the next step's value; the overlap re-fetch
    // replaces, never duplicates.
    for k in 41..=55 {
        let r = c.poll(6000 + k * 60 + 5).await;
        assert!(r.ok());
        assert_eq!(r.signals[0].appended, usize::from(k != 50));
    }
    let t = c.store().series(&key).unwrap().tail(100);
    assert_eq!(t.len(), 56);
    for (i, v) in t.iter().enumerate() {
        if i == 50 {
            assert!(v.is_nan(), "the gap stays a gap");
        } else {
            assert_eq!(*v, i as f64);
        }
    }
    let h = c.health("cpu").unwrap();
    assert_eq!(h.state, HealthState::Healthy);
    assert_eq!(h.series, 1);
}

#[tokio::test]
async fn unknown_replay_signal_fails_start_up() {
    let sig = SignalConfig::new("mem", "unused", 60, 3600);
    let e = Collector::with_source(replay(vec![1.0]), vec![sig], RetryPolicy::default(), 0)
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("mem"), "{e}");
}

/// A replay that refuses any fetch of more than `limit` points, and any reaching `refuse_from`
/// or later while that is set (as a store refuses a query over its sample limit, or times out
/// on a heavy range), recording every range asked for.
struct Heavy {
    inner: Replay,
    limit: i64,
    refuse_from: Arc<std::sync::Mutex<Option<i64>>>,
    asked: Arc<std::sync::Mutex<Vec<(i64, i64)>>>,
}

impl Source for Heavy {
    async fn check(&self, signal: &SignalConfig, now: i64) -> Result<Answer<usize>, SourceError> {
        self.inner.check(signal, now).await
    }

    async fn fetch(
        &self,
        signal: &SignalConfig,
        start: i64,
        end: i64,
    ) -> Result<Answer<Vec<RangeSeries>>, SourceError> {
        self.asked.lock().unwrap().push((start, end));
        let refused = self.refuse_from.lock().unwrap().is_some_and(|t| end >= t);
        if (end - start) / signal.step + 1 > self.limit {
            // What Prometheus answers a query over its sample limit.
            return Err(SourceError::Prometheus(crate::collect::PromError::Api {
                url: "u".into(),
                status: 422,
                error_type: "execution".into(),
                message: "query processing would load too many samples into memory".into(),
            }));
        }
        if refused {
            return Err(SourceError::Replay("refused".into()));
        }
        self.inner.fetch(signal, start, end).await
    }

    fn max_points(&self) -> i64 {
        200
    }

    fn describe(&self) -> String {
        "heavy".into()
    }
}

type Asked = Arc<std::sync::Mutex<Vec<(i64, i64)>>>;

/// A collector over 1,000 steps of `web` (from t = 6000) with a 600-step lookback, fetching
/// at most 200 points a request from a [`Heavy`] source refusing more than `limit`.
async fn heavy(
    limit: i64,
    refuse_from: Option<i64>,
) -> (Collector<Heavy>, Asked, Arc<std::sync::Mutex<Option<i64>>>) {
    let asked: Asked = Arc::default();
    let refuse = Arc::new(std::sync::Mutex::new(refuse_from));
    let source = Heavy {
        inner: replay((0..1000).map(f64::from).collect()),
        limit,
        refuse_from: refuse.clone(),
        asked: asked.clone(),
    };
    let sig = SignalConfig::new("cpu", "unused", 60, 600 * 60);
    let c = Collector::with_source(source, vec![sig], RetryPolicy::default(), 0)
        .await
        .unwrap();
    (c, asked, refuse)
}

const NOW: i64 = 6000 + 900 * 60;

#[tokio::test]
async fn a_backfill_failing_part_way_goes_on_from_its_last_chunk() {
    let (mut c, asked, refuse) = heavy(1000, Some(6000 + 700 * 60)).await;
    let r = c.backfill(NOW).await;
    assert!(!r.ok());
    // Chunks of 200 from step 300: 300..=499 stored, 500..=699 stored, 700.. refused.
    assert_eq!(
        *asked.lock().unwrap(),
        [
            (6000 + 300 * 60, 6000 + 499 * 60),
            (6000 + 500 * 60, 6000 + 699 * 60),
            (6000 + 700 * 60, 6000 + 899 * 60)
        ]
    );
    *refuse.lock().unwrap() = None;
    asked.lock().unwrap().clear();
    let r = c.poll(NOW + 60).await;
    assert!(r.ok(), "{r:?}");
    // From the last chunk stored (less the 2-step overlap), not from the lookback's start,
    // and in chunks of the full 200 points: a refusal that is not about a chunk's weight (a
    // restart, a refused connection) does not make chunks smaller.
    assert_eq!(asked.lock().unwrap()[0], (6000 + 697 * 60, 6000 + 896 * 60));
    let key = SeriesKey::new("cpu{series=\"web\"}");
    let ring = c.store().series(&key).unwrap();
    assert_eq!(ring.newest_timestamp(), Some(6000 + 901 * 60));
    let t = ring.tail(1000);
    assert!(t.len() > 400, "{}", t.len());
    assert!(t.iter().all(|v| v.is_finite()), "no gap at the seam");
}

#[tokio::test]
async fn chunks_too_heavy_for_the_store_are_halved_until_they_pass() {
    let (mut c, asked, _) = heavy(60, None).await;
    let mut polls = 0;
    let mut now = NOW;
    while !c.poll(now).await.ok() {
        polls += 1;
        now += 60;
        assert!(polls < 5, "still failing: {:?}", asked.lock().unwrap());
    }
    // 200 → 100 → 60 points a chunk.
    assert_eq!(polls, 2);
    let key = SeriesKey::new("cpu{series=\"web\"}");
    let ring = c.store().series(&key).unwrap();
    assert_eq!(ring.newest_timestamp(), Some(now.div_euclid(60) * 60));
}

#[tokio::test]
async fn a_clock_stepped_back_fetches_up_to_its_now() {
    let (mut c, asked, _) = heavy(1000, None).await;
    assert!(c.poll(NOW + 600).await.ok());
    asked.lock().unwrap().clear();
    // NTP steps the clock back ten minutes: the store has data up to the new now.
    let r = c.poll(NOW).await;
    assert!(r.ok());
    assert_eq!(r.signals[0].range, Some((NOW - 120, NOW)));
    assert_eq!(*asked.lock().unwrap(), [(NOW - 120, NOW)]);
}
