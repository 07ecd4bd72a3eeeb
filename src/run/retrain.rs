//! Retraining the global model in the live loop: the [`Retrainer`](crate::forecast::Retrainer)
//! runs in the background on a copy of the rings (with `run.retrain_exclude` as gaps); the
//! loop only hands it the series when a job is due and takes the better model when one ends.

use super::state::Loop;
use crate::collect::{Collector, Source};
use crate::forecast::spread_sample;
use crate::series::{Ring, Series, SeriesKey};

/// The rings `rings()` goes through (in the store's order) that [`spread_sample`] keeps within
/// `budget` points, copied out as series; nothing is copied that is not handed over.
fn sample_for_training<'a, I>(rings: impl Fn() -> I, budget: usize) -> Vec<Series>
where
    I: Iterator<Item = (&'a SeriesKey, &'a Ring)>,
{
    let lens: Vec<usize> = rings().map(|(_, r)| r.len()).collect();
    let keep = spread_sample(&lens, budget);
    let mut keep = keep.iter().peekable();
    rings()
        .enumerate()
        .filter(|(i, _)| keep.next_if(|&&k| k == *i).is_some())
        .map(|(_, (k, r))| r.to_series(k.clone()))
        .collect()
}

impl Loop {
    /// Lets the retrainer hand over a better model and start its next job when one is due.
    pub(super) async fn maybe_retrain<S: Source>(&mut self, collector: &Collector<S>, now: i64) {
        let exclude = &self.retrain_exclude;
        let max_points = self.retrain_max_points;
        let series = |step: i64| {
            let rings = || {
                collector
                    .store()
                    .signals()
                    .iter()
                    .filter(move |s| s.step() == step)
                    .flat_map(|s| s.iter().map(|(k, e)| (k, e.ring())))
            };
            // Handing over every ring of a fleet (100,000 series × a week at 5 minutes: 200
            // million points, ~100 GB of training at ~500 bytes a point) would take the
            // process down a retraining period after start.
            let mut series = sample_for_training(rings, max_points);
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
            let kept = self.keep_retrained(now);
            // The offsets learnt the old model's errors; series on own models keep theirs.
            let own = &self.own;
            self.series.online.retain(|k| own.get(k).is_some());
            if kept {
                // Now, not within the minute: the file must name the model just written.
                self.save_persisted(now, true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fleet_is_sampled_within_the_points_budget_and_a_small_store_whole() {
        let keys: Vec<SeriesKey> = (0..100)
            .map(|i| SeriesKey::new(format!("s{i:03}")))
            .collect();
        let rings: Vec<Ring> = (0..100)
            .map(|_| {
                let mut r = Ring::new(60, 50);
                for t in 0..50 {
                    r.push(t * 60, t as f64);
                }
                r
            })
            .collect();
        let all = || keys.iter().zip(rings.iter());
        // 5,000 points within 10,000: every series.
        assert_eq!(sample_for_training(all, 10_000).len(), 100);
        // Within 1,200: every 5th (k = ceil(5000 / 1200) = 5), then the first others that
        // fit: 24 series, copied whole and in the store's order.
        let some = sample_for_training(all, 1_200);
        let names: Vec<&str> = some.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(names.len(), 24);
        assert_eq!(&names[4..7], ["s004", "s005", "s010"]);
        assert_eq!(some.iter().map(|s| s.len()).sum::<usize>(), 1_200);
        assert_eq!(some[6].values, rings[10].to_series(keys[10].clone()).values);
        // Uneven lengths, 10, 1, 10, 1 within 11: the first of 10, then a short one.
        let mut long = Ring::new(60, 10);
        let mut short = Ring::new(60, 10);
        for t in 0..10 {
            long.push(t * 60, 1.0);
        }
        short.push(0, 1.0);
        let uneven = [&long, &short, &long, &short];
        let some = sample_for_training(|| keys.iter().zip(uneven.iter().copied()), 11);
        assert_eq!(some.iter().map(|s| s.len()).collect::<Vec<_>>(), [10, 1]);
    }
}
