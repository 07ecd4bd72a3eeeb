//! Tests of the collector's polling, ingest and export.

use super::*;
use crate::collect::source::Replay;
use crate::series::Series;
use rand::SeedableRng;

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
