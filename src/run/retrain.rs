//! Retraining the global model in the live loop: the [`Retrainer`](crate::forecast::Retrainer)
//! runs in the background on a copy of the rings (with `run.retrain_exclude` as gaps); the
//! loop only hands it the series when a job is due and takes the better model when one ends.

use super::state::Loop;
use crate::collect::{Collector, Source};

impl Loop {
    /// Lets the retrainer hand over a better model and start its next job when one is due.
    pub(super) async fn maybe_retrain<S: Source>(&mut self, collector: &Collector<S>, now: i64) {
        let exclude = &self.retrain_exclude;
        let series = |step: i64| {
            let mut series: Vec<_> = collector
                .store()
                .signals()
                .iter()
                .filter(|s| s.step() == step)
                .flat_map(|s| s.to_series())
                .collect();
            // The buffers keep the excluded samples (forecasts still read them); only the
            // copy handed to training has them as gaps.
            match crate::series::exclude(&mut series, exclude, "run.retrain_exclude") {
                Ok(counts) if !exclude.is_empty() => {
                    let n: usize = counts.iter().map(|(_, n)| n).sum();
                    tracing::info!(
                        "retraining without {n} points in run.retrain_exclude ({} series)",
                        counts.iter().filter(|(_, n)| *n > 0).count()
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("{e}"),
            }
            series
        };
        if let Some(m) = self.retrainer.poll(now, &self.model, series).await {
            self.model = m;
            self.model_name = format!("retrained at {now}");
            self.persist_model_replaced(now);
            // The offsets learnt the old model's errors; series on own models keep theirs.
            let own = &self.own;
            self.series.online.retain(|k| own.get(k).is_some());
        }
    }
}
