//! Own models: a model per series, trained on that series' history alone once it has
//! `run.own_model_after` of it, used only when it wins (see [`stage`](super::stage)).
//!
//! The contest is the [`Retrainer`](super::Retrainer)'s: a candidate fitted on all but the
//! newest fifth of the series must beat the model the series uses now (the global one, or its
//! own from an earlier contest) on that fifth at p90 pinball; the winner is refitted on
//! everything. Training runs on tokio's blocking pool while the loop keeps cycling, **one
//! series at a time** (a fleet of workloads crossing the threshold together must not take
//! every core from the cycle), and a series is tried again [`RETRY_AFTER`] after its last
//! contest, won or lost: a day brings a new daily cycle of evidence; sooner would mostly
//! re-score the same data.

use super::model::{Model, ModelError};
use super::retrain::challenge;
use crate::series::{Series, SeriesKey};
use std::collections::HashMap;
use std::sync::Arc;

/// Loop time between two contests of one series, seconds.
pub const RETRY_AFTER: i64 = 86_400;

/// The own models in use, and the one contest running.
#[derive(Debug)]
pub struct OwnModels {
    after: Option<i64>,
    models: HashMap<SeriesKey, Own>,
    next_try: HashMap<SeriesKey, i64>,
    job: Option<Job>,
}

/// A series' own model and since when it is used.
#[derive(Debug, Clone)]
pub struct Own {
    /// The model.
    pub model: Arc<Model>,
    /// When it won its contest (the loop's clock, Unix seconds).
    pub since: i64,
}

/// A contest running in the background.
#[derive(Debug)]
struct Job {
    key: SeriesKey,
    task: tokio::task::JoinHandle<Result<Option<Model>, ModelError>>,
}

/// How a finished contest ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contest {
    /// The series' own model won and is used from now on.
    Won(SeriesKey),
    /// The model in use stays.
    Lost(SeriesKey),
    /// Training failed (e.g. too little usable history); the message says why.
    Failed(SeriesKey, String),
}

impl OwnModels {
    /// Own models for series with at least `after` seconds of history; none when `None`.
    pub fn new(after: Option<i64>) -> Self {
        OwnModels {
            after,
            models: HashMap::new(),
            next_try: HashMap::new(),
            job: None,
        }
    }

    /// `run.own_model_after`, if own models are on.
    pub fn after(&self) -> Option<i64> {
        self.after
    }

    /// The own model of `key`, if it won one.
    pub fn get(&self, key: &SeriesKey) -> Option<&Own> {
        self.models.get(key)
    }

    /// Forgets the series `keep` refuses (gone from the collector).
    pub fn retain(&mut self, keep: impl Fn(&SeriesKey) -> bool) {
        self.models.retain(|k, _| keep(k));
        self.next_try.retain(|k, _| keep(k));
    }

    /// Whether a contest is running.
    pub fn busy(&self) -> bool {
        self.job.as_ref().is_some_and(|j| !j.task.is_finished())
    }

    /// Called once per cycle from inside a tokio runtime. Collects a finished contest (its
    /// outcome is returned), then, when none runs, starts one for the first of `candidates`
    /// (`(key, seconds of history)`) that has enough history and is due, with `series(key)`
    /// its history and `global` the model it competes with unless it has its own already.
    pub async fn poll(
        &mut self,
        now: i64,
        global: &Arc<Model>,
        candidates: impl IntoIterator<Item = (SeriesKey, i64)>,
        series: impl Fn(&SeriesKey) -> Option<Series>,
    ) -> Option<Contest> {
        if self.busy() {
            return None;
        }
        let outcome = self.finished(now).await;
        let after = self.after?;
        let due = candidates.into_iter().find(|(k, history)| {
            *history >= after && self.next_try.get(k).is_none_or(|t| now >= *t)
        });
        if let Some((key, _)) = due {
            self.next_try.insert(key.clone(), now + RETRY_AFTER);
            if let Some(s) = series(&key) {
                let current = self
                    .models
                    .get(&key)
                    .map_or_else(|| global.clone(), |o| o.model.clone());
                let task = tokio::task::spawn_blocking(move || challenge(&current, &[s]));
                self.job = Some(Job { key, task });
            }
        }
        outcome
    }

    /// Takes the finished contest's outcome, adopting a winner.
    async fn finished(&mut self, now: i64) -> Option<Contest> {
        let job = self.job.take()?;
        let key = job.key;
        Some(match job.task.await {
            Ok(Ok(Some(m))) => {
                tracing::info!("series '{key}': its own model beats the one in use: using it");
                self.models.insert(
                    key.clone(),
                    Own {
                        model: Arc::new(m),
                        since: now,
                    },
                );
                Contest::Won(key)
            }
            Ok(Ok(None)) => {
                tracing::info!(
                    "series '{key}': its own model is not better: keeping the one in use"
                );
                Contest::Lost(key)
            }
            Ok(Err(e)) => {
                tracing::warn!("series '{key}': training its own model failed: {e}");
                Contest::Failed(key, e.to_string())
            }
            Err(e) => {
                tracing::warn!("series '{key}': own-model training task failed: {e}");
                Contest::Failed(key, e.to_string())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::TrainOptions;

    use crate::forecast::retrain::tests::series;

    async fn settle(own: &mut OwnModels, now: i64, global: &Arc<Model>) -> Option<Contest> {
        for _ in 0..600 {
            if !own.busy() {
                return own.poll(now, global, [], |_| None).await;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("contest did not finish in 30 s");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_series_gets_its_own_model_only_when_it_wins_and_one_at_a_time() {
        let opts = TrainOptions::new(300, 900);
        // A global model that only saw noise: a daily cycle's own model beats it.
        let noise = series("noise", 6, true, 2);
        let global = Arc::new(Model::train(std::slice::from_ref(&noise), &opts).unwrap());
        let load = series("load", 6, false, 1);
        let key = load.key.clone();
        let mut own = OwnModels::new(Some(4 * 86_400));
        let lookup = |k: &SeriesKey| (k == &key).then(|| load.clone());
        // Too little history: nothing starts.
        let none = own
            .poll(0, &global, [(key.clone(), 3 * 86_400)], lookup)
            .await;
        assert_eq!(none, None);
        assert!(!own.busy() && own.job.is_none());
        // Enough: a contest starts; a second candidate waits (one at a time).
        let other = SeriesKey::new("other");
        own.poll(
            0,
            &global,
            [(key.clone(), 6 * 86_400), (other.clone(), 6 * 86_400)],
            lookup,
        )
        .await;
        assert_eq!(own.job.as_ref().map(|j| j.key.clone()), Some(key.clone()));
        assert_eq!(
            settle(&mut own, 300, &global).await,
            Some(Contest::Won(key.clone()))
        );
        assert_eq!(own.get(&key).map(|o| o.since), Some(300));
        // Not due again for a day; the other series is.
        own.poll(600, &global, [(key.clone(), 6 * 86_400)], lookup)
            .await;
        assert!(own.job.is_none());
        // Against its own model, a candidate trained on the same data does not win.
        own.poll(RETRY_AFTER, &global, [(key.clone(), 6 * 86_400)], lookup)
            .await;
        assert_eq!(
            settle(&mut own, RETRY_AFTER + 300, &global).await,
            Some(Contest::Lost(key.clone()))
        );
        assert_eq!(own.get(&key).map(|o| o.since), Some(300));
        // Off: nothing ever starts.
        let mut off = OwnModels::new(None);
        off.poll(0, &global, [(key.clone(), 30 * 86_400)], lookup)
            .await;
        assert!(off.job.is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_global_model_that_is_better_stays() {
        let opts = TrainOptions::new(300, 900);
        let load = series("load", 6, false, 1);
        // The global model saw this very series (and more of it): it is not beaten.
        let global = Arc::new(Model::train(std::slice::from_ref(&load), &opts).unwrap());
        let key = load.key.clone();
        let mut own = OwnModels::new(Some(86_400));
        own.poll(0, &global, [(key.clone(), 6 * 86_400)], |_| {
            Some(load.clone())
        })
        .await;
        assert_eq!(
            settle(&mut own, 300, &global).await,
            Some(Contest::Lost(key.clone()))
        );
        assert!(own.get(&key).is_none());
    }
}
