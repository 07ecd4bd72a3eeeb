//! Retraining in the live loop: when to train a candidate, and when it replaces the model.
//!
//! The policy is model selection, so it lives with the models: a candidate is trained on all
//! but the newest fifth of what the collector holds and must beat the current model on that
//! fifth (pinball loss at p90, the level capacity is usually planned to) before it is refitted
//! on everything and used. Training takes seconds to minutes, so it runs on tokio's blocking
//! pool while the loop keeps cycling with the current model; the loop polls once per cycle.

use super::backtest::{self, holdout_start};
use super::model::{Model, ModelError, TrainOptions};
use super::online::OnlineConfig;
use crate::series::Series;
use std::sync::Arc;

/// Schedules background retraining and hands over a winning candidate.
#[derive(Debug)]
pub struct Retrainer {
    every: Option<i64>,
    last: Option<i64>,
    job: Option<Job>,
}

/// A model being trained in the background.
#[derive(Debug)]
struct Job {
    started: i64,
    task: tokio::task::JoinHandle<Result<Option<Model>, ModelError>>,
}

impl Retrainer {
    /// Retrains every `every` seconds of the loop's clock; never when `None`.
    pub fn new(every: Option<i64>) -> Self {
        Retrainer {
            every,
            last: None,
            job: None,
        }
    }

    /// Whether a job is training now (started and not yet collected by [`poll`](Self::poll)).
    pub fn running(&self) -> bool {
        self.job.is_some()
    }

    /// Starts the schedule at `now` (the first cycle's time), so the first retraining comes a
    /// full period after start-up rather than on the first cycle.
    pub fn start(&mut self, now: i64) {
        self.last = Some(now);
    }

    /// Called once per cycle from inside a tokio runtime. Returns the finished candidate when
    /// it beat `current`, and starts a new job (with `series(step)`, the buffers on the model's
    /// step) when one is due; the new job compares against the model returned, if any.
    pub async fn poll(
        &mut self,
        now: i64,
        current: &Arc<Model>,
        series: impl FnOnce(i64) -> Vec<Series>,
    ) -> Option<Arc<Model>> {
        if self.job.as_ref().is_some_and(|j| !j.task.is_finished()) {
            // One job at a time: the next is scheduled from when this one is collected.
            return None;
        }
        let replaced = self.finished().await.map(Arc::new);
        let every = self.every?;
        if self.last.is_some_and(|t| now - t < every) {
            return replaced;
        }
        self.last = Some(now);
        let base = replaced.clone().unwrap_or_else(|| current.clone());
        let series = series(base.spec.step);
        let task = tokio::task::spawn_blocking(move || challenge(&base, &series));
        self.job = Some(Job { started: now, task });
        replaced
    }

    /// Takes the (finished) job's model, if it won; logs the outcome either way.
    async fn finished(&mut self) -> Option<Model> {
        let job = self.job.take()?;
        match job.task.await {
            Ok(Ok(Some(m))) => {
                tracing::info!(
                    "retrained model (started {}) beats the current one on recent data: using it",
                    job.started
                );
                Some(m)
            }
            // `challenge` said why (no contest, or the candidate lost).
            Ok(Ok(None)) => None,
            Ok(Err(e)) => {
                tracing::warn!("retraining failed, keeping the current model: {e}");
                None
            }
            Err(e) => {
                tracing::warn!("retraining task failed, keeping the current model: {e}");
                None
            }
        }
    }
}

/// Trains a candidate on the buffers up to a scored part and compares it with the current
/// model there (pinball loss at p90, the level capacity is usually planned to). The scored
/// part is the newest fifth of each series, shortened to what the current model was not
/// trained on: scored on its own training data, the current model would nearly always win
/// (a day after a retraining, or an own model's retry a day on, the fifth of a week's buffer
/// still overlaps it). With less unseen data than half a fifth in all, there is no contest.
/// Returns the candidate refitted on everything when it wins. Own models
/// ([`OwnModels`](super::OwnModels)) are chosen by the same contest, on one series.
pub(super) fn challenge(current: &Model, series: &[Series]) -> Result<Option<Model>, ModelError> {
    let holdout = 0.2;
    let starts = contest_starts(current, series, holdout);
    let scored: usize = series
        .iter()
        .zip(&starts)
        .map(|(s, &i)| s.len().saturating_sub(i))
        .sum();
    let total: usize = series.iter().map(Series::len).sum();
    if (scored as f64) < total as f64 * holdout / 2.0 {
        tracing::info!(
            "retraining: {scored} of {total} steps are newer than the current model's training \
             data, too few to compare on: keeping it"
        );
        return Ok(None);
    }
    let mut opts = TrainOptions::new(current.spec.step, current.spec.window);
    opts.quantiles = current.quantiles.clone();
    let heads: Vec<_> = series
        .iter()
        .zip(&starts)
        .map(|(s, &i)| s.slice(0..i))
        .collect();
    let candidate = Model::train(&heads, &opts)?;
    let score = |m: &Model| {
        // Raw quantiles: the contest is between models; the live correction sits on top of
        // whichever wins.
        let r = backtest::run_from(m, series, &starts, holdout, "", &OnlineConfig::off());
        r.overall
            .model
            .pinball
            .iter()
            .find(|p| (p.0 - 0.9).abs() < 1e-9)
            .map_or(f64::INFINITY, |p| p.1)
    };
    let (new, old) = (score(&candidate), score(current));
    tracing::info!(
        "retraining: p90 pinball on recent data {new:.4} (candidate) vs {old:.4} (current)"
    );
    if new.is_finite() && new < old {
        Model::train(series, &opts).map(Some)
    } else {
        tracing::info!("retrained model is not better on recent data: keeping the current one");
        Ok(None)
    }
}

/// Where each series' scored part starts: the newest `holdout` share, or later where the
/// current model was trained on data beyond its start (the model's record of each series'
/// training range, by key; a series it never saw is unseen throughout).
fn contest_starts(current: &Model, series: &[Series], holdout: f64) -> Vec<usize> {
    series
        .iter()
        .map(|s| {
            let seen_until = current
                .meta
                .series
                .iter()
                .find(|t| t.key == s.key)
                .map_or(0, |t| {
                    let steps = (t.range.1 - s.start + s.step - 1).div_euclid(s.step);
                    steps.clamp(0, s.len() as i64) as usize
                });
            holdout_start(s.len(), holdout).max(seen_until)
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::series::SeriesKey;

    /// A daily cycle with noise (`noise_only`: noise alone), 5-minute steps; the own-model
    /// tests use it too.
    pub(in crate::forecast) fn series(
        key: &str,
        days: usize,
        noise_only: bool,
        seed: u64,
    ) -> Series {
        let mut s = seed;
        let values = (0..days * 288)
            .map(|i| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (s >> 11) as f64 / (1u64 << 53) as f64;
                if noise_only {
                    1000.0 * u
                } else {
                    let hour = (i % 288) as f64 / 12.0;
                    100.0 + 60.0 * (std::f64::consts::TAU * hour / 24.0).sin() + 10.0 * u
                }
            })
            .collect();
        Series {
            key: SeriesKey::new(key),
            start: 1_704_067_200,
            step: 300,
            values,
        }
    }

    #[test]
    fn retraining_replaces_a_worse_model_and_keeps_a_better_one() {
        let load = series("load", 9, false, 1);
        let noise = series("noise", 9, true, 2);
        let opts = TrainOptions::new(300, 900);
        // A model that only ever saw noise forecasts a daily cycle badly: replaced.
        let bad = Model::train(std::slice::from_ref(&noise), &opts).unwrap();
        let new = challenge(&bad, std::slice::from_ref(&load)).unwrap();
        let new = new.expect("a model trained on the load beats one trained on noise");
        assert_eq!(new.meta.series[0].key.as_str(), "load");
        assert_eq!(new.meta.series[0].range, (load.start, load.end()));
        // A model that has already seen the recent data is kept.
        let good = Model::train(std::slice::from_ref(&load), &opts).unwrap();
        assert!(challenge(&good, std::slice::from_ref(&load))
            .unwrap()
            .is_none());
    }

    /// The contest scores only what the current model was not trained on: trained on 8 of
    /// 9 days, it is scored on the ninth, not on the newest fifth (1.8 days, 0.8 of them its
    /// own training data); trained on all 9, there is nothing to compare on.
    #[test]
    fn the_contest_scores_only_data_the_current_model_has_not_seen() {
        let load = series("load", 9, false, 1);
        let opts = TrainOptions::new(300, 900);
        let fifth = holdout_start(load.len(), 0.2);
        let other = Model::train(&[series("other", 9, false, 3)], &opts).unwrap();
        assert_eq!(
            contest_starts(&other, std::slice::from_ref(&load), 0.2),
            [fifth]
        );
        let eight = Model::train(&[load.slice(0..8 * 288)], &opts).unwrap();
        assert_eq!(
            contest_starts(&eight, std::slice::from_ref(&load), 0.2),
            [8 * 288]
        );
        let all = Model::train(std::slice::from_ref(&load), &opts).unwrap();
        assert_eq!(
            contest_starts(&all, std::slice::from_ref(&load), 0.2),
            [load.len()]
        );
        assert!(challenge(&all, std::slice::from_ref(&load))
            .unwrap()
            .is_none());
    }
}
