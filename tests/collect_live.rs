//! Incremental polling against a real Prometheus scraping a test exporter every second: new
//! samples are picked up with nothing lost, shifted or duplicated; series that appear are added,
//! series that vanish go stale and are dropped; and a Prometheus killed and restarted mid-run
//! is survived.

use crate::common;

use common::*;
use prescale::collect::prometheus::PromClient;
use prescale::collect::{Collector, HealthState};
use prescale::config::Config;
use prescale::series::SeriesKey;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

fn config(dir: &Path, url: &str, extra: &str) -> Config {
    let text = format!(
        "[prometheus]\nurl = \"{url}\"\ntimeout = \"3s\"\n\n[[signal]]\nname = \"g\"\n\
         query = \"test_gauge\"\nseries_labels = [\"series\"]\nstep = \"1s\"\nlookback = \"5m\"\n{extra}"
    );
    load_config(dir, &text)
}

/// What Prometheus itself answers for `test_gauge{series=...}` on the 1 s grid.
async fn prometheus_view(url: &str, series: &str, start: i64, end: i64) -> BTreeMap<i64, f64> {
    let cfg = Config::from_toml(
        Path::new("x.toml"),
        &format!("[prometheus]\nurl = \"{url}\"\n"),
    )
    .expect("config")
    .prometheus
    .expect("prometheus");
    let client = PromClient::new(&cfg).expect("client");
    let a = client
        .query_range(&format!("test_gauge{{series=\"{series}\"}}"), start, end, 1)
        .await
        .expect("query_range");
    a.data
        .iter()
        .flat_map(|s| s.values.iter().map(|p| (p.ts as i64, p.value)))
        .collect()
}

/// The ring of `key` as `ts → value`, gaps left out.
fn held(c: &Collector, key: &str) -> BTreeMap<i64, f64> {
    let ring = c.store().series(&SeriesKey::new(key)).expect("series held");
    let s = ring.to_series(SeriesKey::new(key));
    s.values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(i, v)| (s.timestamp(i), *v))
        .collect()
}

/// The ring must equal Prometheus' own answer over `[from, to]`: same grid points, same values.
async fn assert_matches_prometheus(c: &Collector, url: &str, series: &str, from: i64, to: i64) {
    let key = format!("g{{series=\"{series}\"}}");
    let ours: BTreeMap<i64, f64> = held(c, &key)
        .into_iter()
        .filter(|(t, _)| (from..=to).contains(t))
        .collect();
    let theirs = prometheus_view(url, series, from, to).await;
    assert!(
        !theirs.is_empty(),
        "Prometheus has data for {series} in {from}..={to}"
    );
    assert_eq!(
        ours, theirs,
        "buffer of {series} differs from Prometheus over {from}..={to}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_pick_up_new_samples_and_series_come_and_go() {
    let exporter = Exporter::start();
    exporter.set("test_gauge{series=\"a\"} {scrape}\n");
    let prom = Prometheus::start(PromOptions {
        scrape_targets: vec![exporter.target()],
        ..PromOptions::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(
        dir.path(),
        &prom.url(),
        "stale_after = \"3s\"\ndrop_after = \"6s\"\n",
    );
    let url = prom.url();

    wait_for_data(&prom, "test_gauge", Duration::from_secs(30));
    let test = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut c = connect(&cfg).await.expect("collector");
        let r = c.backfill(now()).await;
        assert!(r.ok(), "{r:?}");
        let a = SeriesKey::new("g{series=\"a\"}");
        let b = SeriesKey::new("g{series=\"b\"}");
        let mut newest = c
            .store()
            .series(&a)
            .expect("a after backfill")
            .newest_timestamp();

        // Each poll just after a step boundary brings the new step.
        for round in 0..4 {
            sleep_to_next_second(0.3).await;
            let r = c.poll(now()).await;
            assert!(r.ok(), "{r:?}");
            assert!(r.signals[0].appended >= 1, "round {round}: {r:?}");
            assert!(r.signals[0].replaced >= 1, "overlap re-fetched: {r:?}");
            let n = c.store().series(&a).expect("a").newest_timestamp();
            assert!(n > newest, "round {round}: newest {n:?} after {newest:?}");
            newest = n;
        }
        assert_eq!(c.health("g").expect("health").state, HealthState::Healthy);

        // A series appears.
        exporter.set("test_gauge{series=\"a\"} {scrape}\ntest_gauge{series=\"b\"} {scrape}\n");
        let mut added = 0;
        for _ in 0..4 {
            sleep_to_next_second(0.3).await;
            added += c.poll(now()).await.signals[0].new_series;
        }
        assert_eq!(added, 1, "b added once");
        assert!(c.store().series(&b).is_some());

        // `a` vanishes: Prometheus marks it stale at the next scrape; we mark it stale after
        // 3 s without samples and drop it after 6 s.
        exporter.set("test_gauge{series=\"b\"} {scrape}\n");
        let t0 = now();
        let mut stale_at = None;
        let mut dropped_at = None;
        while now() - t0 < 15 && dropped_at.is_none() {
            sleep_to_next_second(0.3).await;
            let r = c.poll(now()).await;
            assert!(r.ok(), "{r:?}");
            match c.store().entry(&a) {
                Some(e) if e.is_stale() && stale_at.is_none() => stale_at = Some(now()),
                None => dropped_at = Some(now()),
                _ => {}
            }
            assert!(!c.store().entry(&b).expect("b").is_stale());
        }
        let stale_at = stale_at.expect("a marked stale");
        let dropped_at = dropped_at.expect("a dropped");
        assert!(stale_at < dropped_at);
        assert_eq!(c.health("g").expect("health").series, 1);
        assert_eq!(c.stats("g").expect("stats").series_dropped, 1);

        // b, from its first point to the last final one (2 steps of overlap are still open),
        // is exactly what Prometheus has.
        let ring = c.store().series(&b).expect("b");
        let from = ring.oldest_timestamp().expect("oldest");
        let to = ring.newest_timestamp().expect("newest") - 2;
        assert_matches_prometheus(&c, &url, "b", from, to).await;
        // The scrape counter only grows: no point went back in time or was shifted.
        let values: Vec<f64> = held(&c, "g{series=\"b\"}").into_values().collect();
        assert!(values.windows(2).all(|w| w[0] <= w[1]), "{values:?}");
    };
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_prometheus_killed_and_restarted() {
    let exporter = Exporter::start();
    exporter.set("test_gauge{series=\"a\"} {scrape}\n");
    let mut prom = Prometheus::start(PromOptions {
        scrape_targets: vec![exporter.target()],
        ..PromOptions::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), &prom.url(), "");
    let url = prom.url();
    let key = "g{series=\"a\"}";

    wait_for_data(&prom, "test_gauge", Duration::from_secs(30));
    let test = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut c = connect(&cfg).await.expect("collector");
        assert!(c.backfill(now()).await.ok());
        for _ in 0..2 {
            sleep_to_next_second(0.3).await;
            assert!(c.poll(now()).await.ok());
        }
        let before = held(&c, key);

        // Crash: polls fail, health degrades then goes down, nothing held is lost.
        prom.kill();
        let mut states = Vec::new();
        for _ in 0..3 {
            sleep_to_next_second(0.3).await;
            let r = c.poll(now()).await;
            let err = r.signals[0]
                .error
                .clone()
                .expect("poll fails while Prometheus is down");
            assert!(err.contains("cannot connect"), "{err}");
            states.push(c.health("g").expect("health").state);
            assert_eq!(held(&c, key), before, "buffer kept unchanged while down");
        }
        assert_eq!(
            states,
            vec![
                HealthState::Degraded,
                HealthState::Degraded,
                HealthState::Down
            ]
        );
        let h = c.health("g").expect("health");
        assert_eq!(h.consecutive_failures, 3);
        assert!(h
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("cannot connect")));

        // Restart on the same port and storage; scrapes resume.
        prom.restart();
        let last_before = before.values().cloned().fold(f64::MIN, f64::max);
        // Poll until samples scraped after the restart arrive (discovery takes ~5 s).
        let t0 = now();
        loop {
            sleep_to_next_second(0.3).await;
            let r = c.poll(now()).await;
            assert!(r.ok(), "{r:?}");
            let newest = held(&c, key).values().cloned().fold(f64::MIN, f64::max);
            if newest > last_before + 1.0 {
                break;
            }
            assert!(now() - t0 < 30, "no new samples after the restart");
        }
        for _ in 0..2 {
            sleep_to_next_second(0.3).await;
            assert!(c.poll(now()).await.ok());
        }
        let h = c.health("g").expect("health");
        assert_eq!(h.state, HealthState::Healthy);
        assert_eq!(h.consecutive_failures, 0);

        // Everything held, across the outage, is what the restarted Prometheus has: the
        // outage was caught up, with no point lost, shifted or duplicated.
        let ring = c.store().series(&SeriesKey::new(key)).expect("a");
        let from = ring.oldest_timestamp().expect("oldest");
        let to = ring.newest_timestamp().expect("newest") - 2;
        assert_matches_prometheus(&c, &url, "a", from, to).await;
        let values: Vec<f64> = held(&c, key).into_values().collect();
        assert!(values.windows(2).all(|w| w[0] <= w[1]), "{values:?}");
    };
    tokio::time::timeout(Duration::from_secs(60), test)
        .await
        .expect("in time");
}
