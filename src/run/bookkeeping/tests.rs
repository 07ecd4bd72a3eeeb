//! The loop's own bookkeeping: bounded per-series state, what is believed carried out.

use super::*;
use crate::act::Skip;
use crate::collect::SignalConfig;
use crate::forecast::{Forecast, OnlineConfig};
use crate::plan::AccuracyConfig;

/// Per-pod series churn: every cycle a few ids vanish and new ones appear. What the loop
/// keeps per series must stay bounded by what the store holds, not grow with every id ever
/// seen.
#[test]
fn series_churn_keeps_loop_state_bounded_by_live_series() {
    let mut cfg = SignalConfig::new("rps", "q", 60, 3600);
    cfg.drop_after = 300;
    cfg.stale_after = 120;
    let mut store = Store::new(std::slice::from_ref(&cfg));
    let mut kept = PerSeries::new(AccuracyConfig::default(), OnlineConfig::default());
    let live_ids = 20u64;
    let mut max_live = 0;
    for cycle in 0..200i64 {
        let now = cycle * 60;
        // Ids cycle..cycle+live_ids are live: one new id a minute, one gone.
        for id in cycle as u64..cycle as u64 + live_ids {
            let key = SeriesKey::new(format!("rps{{pod=\"p{id}\"}}"));
            store.signal_at_mut(0).ingest(key.clone(), [(now, 10.0)]);
            let f = Forecast {
                key: key.clone(),
                at: now,
                window: 120,
                quantiles: vec![(0.5, 10.0), (0.9, 12.0)],
            };
            kept.accuracy.record(&f);
            kept.accuracy.observe(&key, now, 10.0);
            kept.online.observe(&key, now, 10.0);
            kept.observed.insert(key, now);
        }
        store.signal_at_mut(0).drop_vanished(now);
        kept.forget_dropped(&store);
        let held = store.signals()[0].len();
        let calibrated = (0..=cycle as u64 + live_ids)
            .filter(|id| {
                kept.online
                    .get(&SeriesKey::new(format!("rps{{pod=\"p{id}\"}}")))
                    .is_some()
            })
            .count();
        assert!(calibrated <= held, "cycle {cycle}: {calibrated} > {held}");
        max_live = max_live.max(held);
        assert!(
            kept.observed.len() <= held,
            "cycle {cycle}: {} > {held}",
            kept.observed.len()
        );
        assert!(
            kept.accuracy.len() <= held,
            "cycle {cycle}: {} > {held}",
            kept.accuracy.len()
        );
    }
    // drop_after = 5 minutes: about 25 series held, against 219 ids seen.
    assert!(max_live < 30, "{max_live}");
}

/// Per-series state restored for series the store does not hold (a restart after they
/// went) is forgotten at the first cycle, though nothing was removed from the store since it
/// was made; and what arrives later under an unchanged mark is a series the store holds.
#[test]
fn state_of_series_never_held_is_forgotten_at_the_first_cycle() {
    let cfg = SignalConfig::new("rps", "q", 60, 3600);
    let mut store = Store::new(std::slice::from_ref(&cfg));
    let (held, gone) = (
        SeriesKey::new("rps{pod=\"a\"}"),
        SeriesKey::new("rps{pod=\"b\"}"),
    );
    store.signal_at_mut(0).ingest(held.clone(), [(0, 1.0)]);
    let mut kept = PerSeries::new(AccuracyConfig::default(), OnlineConfig::default());
    for k in [&held, &gone] {
        kept.online.observe(k, 0, 1.0);
        kept.observed.insert(k.clone(), 0);
        kept.accuracy.record(&Forecast {
            key: k.clone(),
            at: 0,
            window: 120,
            quantiles: vec![(0.5, 1.0), (0.9, 1.2)],
        });
    }
    assert_eq!(kept.accuracy.len(), 2);
    kept.ids.insert(gone.clone(), SeriesId::from("rps"));
    for call in ["first", "second"] {
        kept.forget_dropped(&store);
        assert!(kept.online.get(&gone).is_none(), "{call} call");
        assert!(kept.online.get(&held).is_some(), "{call} call");
        let observed: Vec<_> = kept.observed.keys().collect();
        assert_eq!(observed, [&held], "{call} call");
        assert!(kept.accuracy.keys().all(|k| k == &held), "{call} call");
        assert!(kept.ids.is_empty(), "{call} call");
    }
}

/// A failed scale-up is not believed, nor the placement of its new replicas; everything
/// else is (node decisions are recommendations, believed as planned).
#[test]
fn failed_changes_are_not_believed_done() {
    let d = |kind, target: &str, from, to| {
        let mut d = crate::act::tests::decision(kind, target, from, to);
        if kind == DecisionKind::Place {
            d.node = Some("node-a".into());
        }
        d
    };
    let ds = vec![
        d(DecisionKind::ScaleUp, "web", 2, 5),
        d(DecisionKind::ScaleUp, "api", 2, 6),
        d(DecisionKind::Hold, "db", 3, 3),
        d(DecisionKind::Place, "web", 0, 3),
        d(DecisionKind::Place, "api", 0, 4),
        d(DecisionKind::AddNode, "general", 2, 3),
    ];
    let outcomes = vec![
        Outcome::Applied,
        Outcome::Failed("kubectl exited with status 1".into()),
        Outcome::Skipped(Skip::Nothing),
        Outcome::Skipped(Skip::Nothing),
        Outcome::Skipped(Skip::Nothing),
        Outcome::Skipped(Skip::Nothing),
    ];
    let kept: Vec<(DecisionKind, String)> = carried_out(&ds, &outcomes)
        .into_iter()
        .map(|d| (d.kind, d.target))
        .collect();
    let want = [
        (DecisionKind::ScaleUp, "web"),
        (DecisionKind::Hold, "db"),
        (DecisionKind::Place, "web"),
        (DecisionKind::AddNode, "general"),
    ]
    .map(|(k, t)| (k, t.to_string()));
    assert_eq!(kept, want);
    let mut believed = BelievedState::new(&[], &[]);
    believed.set_replicas("api", 2);
    believed.apply(&carried_out(&ds, &outcomes));
    assert_eq!(believed.replicas("api"), Some(2));
    assert_eq!(believed.replicas("web"), Some(5));
}

/// A change held while the shards disagree is not believed, nor its placements: nothing ran.
#[test]
fn held_changes_are_not_believed_done() {
    let mut place = crate::act::tests::decision(DecisionKind::Place, "web", 0, 3);
    place.node = Some("node-a".into());
    let ds = vec![
        crate::act::tests::decision(DecisionKind::ScaleUp, "web", 2, 5),
        place,
        crate::act::tests::decision(DecisionKind::ScaleDown, "api", 6, 4),
    ];
    let outcomes = vec![
        Outcome::Skipped(Skip::ShardsDisagree),
        Outcome::Skipped(Skip::Nothing),
        Outcome::Applied,
    ];
    let kept: Vec<String> = carried_out(&ds, &outcomes)
        .into_iter()
        .map(|d| d.target)
        .collect();
    assert_eq!(kept, ["api"]);
}

/// Someone else set a workload's replicas: the decision is not believed, the live count is.
#[test]
fn a_change_made_elsewhere_is_believed_instead_of_the_decision() {
    let ds = vec![
        crate::act::tests::decision(DecisionKind::ScaleUp, "web", 2, 5),
        crate::act::tests::decision(DecisionKind::ScaleUp, "api", 2, 6),
        crate::act::tests::decision(DecisionKind::ScaleUp, "db", 2, 7),
    ];
    let outcomes = vec![
        Outcome::Skipped(Skip::ChangedElsewhere { live: 9 }),
        Outcome::Applied,
        // An earlier change of prescale's that landed unanswered: its count, not the decision's.
        Outcome::Skipped(Skip::Landed { live: 4 }),
    ];
    let mut believed = BelievedState::new(&[], &[]);
    believed.set_replicas("web", 2);
    believed.set_replicas("db", 2);
    believe(&mut believed, &ds, &outcomes);
    assert_eq!(believed.replicas("web"), Some(9));
    assert_eq!(believed.replicas("api"), Some(6));
    assert_eq!(believed.replicas("db"), Some(4));
}
