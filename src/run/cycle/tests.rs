//! Whole cycles of the loop on the bundled replay, with what the exporter is handed checked
//! against what the planner decided.

use super::super::state::Loop;
use crate::act::Act;
use crate::collect::{Collector, RetryPolicy};
use crate::config::Config;
use crate::export::{ExportState, Metrics};
use crate::forecast::{Forecast, Model};
use crate::series::SeriesKey;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The demo configuration with `extra` inserted into the `api` workload and `tail` appended.
fn demo(extra: &str, tail: &str) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace("name = \"api\"", &format!("name = \"api\"\n{extra}")) + tail;
    Config::from_toml(&path, &text).unwrap()
}

/// A budget workload (`api`, p95, `max_short` 1 %) plans on the uncorrected forecast at the
/// budget's level times its margin; with a large online-calibration gain the corrected
/// forecast soon differs from it. What the KEDA scaler serves must be what was planned: the
/// peak the decision rests on, at the budget's level, not the corrected p95.
#[tokio::test(flavor = "current_thread")]
async fn the_scaler_serves_the_peak_the_planner_sized_for() {
    let cfg = demo("max_short = \"1%\"", "\n[online_calibration]\ngain = 0.5\n");
    let model_path = cfg.live.model.clone().unwrap();
    let model = Model::load(&model_path).unwrap();
    let export = Arc::new(ExportState::new(Metrics::new(), Duration::from_secs(300)));
    let act = Act::dry_run(Box::new(std::io::sink()), None);
    let mut lp = Loop::new(&cfg, model, "web.model".into(), act, export.clone());
    let replay = cfg.live.replay.as_ref().unwrap();
    let (source, start, _) = super::super::replay_source(replay, &cfg).unwrap();
    let mut collector =
        Collector::with_source(source, cfg.signals.clone(), RetryPolicy::default(), start)
            .await
            .unwrap();
    collector.backfill(start).await;
    let api = cfg
        .live
        .workloads
        .iter()
        .find(|w| w.name == "api")
        .unwrap()
        .clone();
    let web = cfg
        .live
        .workloads
        .iter()
        .find(|w| w.name == "web")
        .unwrap()
        .clone();
    let mut corrected_differs = false;
    for n in 1..=12u64 {
        let now = start + (n as i64 - 1) * cfg.live.interval;
        if n > 1 {
            collector.poll(now).await;
        }
        lp.read_replicas(now).await;
        let decisions = lp.cycle(&collector, now, Instant::now(), n).await.unwrap();
        let view = export.scaler_view().borrow().clone().unwrap();

        // api: the budget's level, and the peak of the forecast its decision rests on.
        let d = decisions.iter().find(|d| d.target == "api").unwrap();
        let planned = Forecast {
            key: api.demand.clone(),
            at: now,
            window: 0,
            quantiles: d.forecast.clone().unwrap(),
        };
        let risk = lp.risk.level(&api).unwrap();
        let peak = risk.provision(&planned).unwrap();
        let sample = view.get("api").unwrap();
        assert_eq!(sample.forecast_peak, Some(peak), "cycle {n}");
        assert_eq!(sample.quantile, risk.base, "cycle {n}");
        assert_eq!(
            sample.forecast_demand(),
            Some(peak * (1.0 + api.headroom)),
            "cycle {n}"
        );
        // The correction moves api's forecast at that level: planning (or serving) the
        // corrected one would differ.
        let corrected = lp
            .series
            .online
            .get(&api.demand)
            .map(|c| c.factor(risk.base));
        corrected_differs |= corrected.is_some_and(|k| (k - 1.0).abs() > 0.01);

        // web (no budget): its quantile of the corrected forecast its decision rests on.
        let d = decisions.iter().find(|d| d.target == "web").unwrap();
        let planned = Forecast {
            key: SeriesKey::new("web"),
            at: now,
            window: 0,
            quantiles: d.forecast.clone().unwrap(),
        };
        let sample = view.get("web").unwrap();
        assert_eq!(sample.quantile, web.quantile);
        assert_eq!(
            sample.forecast_peak,
            planned.quantile(web.quantile),
            "cycle {n}"
        );
    }
    // The correction did move api's forecast: planning on the corrected one would differ.
    assert!(
        corrected_differs,
        "the online correction never moved api's forecast"
    );
}

/// A shard that stops planning the node pools (it lost the Lease) keeps none of the other
/// shards' loads it read while it led: taking the Lease back before its next read, it would
/// otherwise plan the pools from loads hours old, counted as known and fresh.
#[tokio::test(flavor = "current_thread")]
async fn loads_read_while_leading_are_dropped_when_not_leading() {
    use super::super::state::NodeRole;
    use crate::leader::Leadership;
    use crate::shard::readback::RemoteLoad;
    let cfg = demo("", "");
    let model = Model::load(cfg.live.model.as_ref().unwrap()).unwrap();
    let export = Arc::new(ExportState::new(Metrics::new(), Duration::from_secs(300)));
    let act = Act::dry_run(Box::new(std::io::sink()), None);
    let others = cfg.live.workloads.clone();
    let mut lp = Loop::new(&cfg, model, "web.model".into(), act, export).with_others(others);
    let load = RemoteLoad {
        desired: 7,
        utilization: 0.5,
        planned_at: 1_000,
    };
    lp.remote.insert("web".into(), Ok(load));
    lp.plans_nodes = NodeRole::WhileLeading(Leadership::lapsing_in(Duration::ZERO));
    tokio::time::sleep(Duration::from_millis(5)).await;
    lp.read_other_shards(2_000).await;
    assert!(lp.remote.is_empty(), "{:?}", lp.remote);
}
