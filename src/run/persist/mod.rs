//! What the loop keeps across restarts, in `run.calibration_state`: the online calibration's
//! offsets, the risk ledgers of `max_short` workloads, which retrained model
//! `run.retrained_model` holds (`file` says what the file holds and
//! when each part applies). Read at start-up (`run`), restored before the first cycle, saved
//! at most once a minute of wall time and after the last cycle.

pub(super) mod file;

pub use file::StateError;
pub(super) use file::{load_or_set_aside, Loaded, Retrained, SavedState};

use super::state::Loop;
use crate::forecast::Model;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Wall time between two saves: the offsets move by γ per resolved forecast and the ledgers
/// by one step per cycle, so a crash loses at most a minute of them, and at 100,000 series (a
/// few MB of JSON) the writes stay a small share of the loop's time.
const SAVE_EVERY: Duration = Duration::from_secs(60);

impl Loop {
    /// Starts from the state read at start-up.
    pub(super) fn with_persisted(mut self, saved: Option<Loaded>) -> Self {
        self.persisted.loaded = saved;
        self
    }

    /// Restores what was read at start-up if it was saved at or before `now`, the first
    /// cycle's time: the risk ledgers, and the offsets when learnt against this model.
    pub(super) fn restore_persisted(&mut self, now: i64) {
        let Some(Loaded { state: saved, risk }) = self.persisted.loaded.take() else {
            return;
        };
        let path = self.persisted.path.display().to_string();
        if saved.saved_at > now {
            tracing::info!(
                "{path} was saved at {}, after this run's first cycle at {now} (a replay of \
                 earlier history): online calibration and risk ledgers start afresh",
                saved.saved_at
            );
            return;
        }
        self.restore_retrained(saved.retrained);
        self.risk.restore(risk);
        // Only workloads this run plans with a budget: a ledger of one removed, renamed or now
        // another shard's would be saved again forever, and come back with its old debt if
        // the name ever returned.
        self.retain_risk();
        let workloads = self.risk.len();
        if workloads > 0 {
            tracing::info!("risk ledgers of {workloads} workloads restored from {path}");
        }
        if saved.series.is_empty() || !self.series.online.enabled() {
            return;
        }
        if Some(saved.model) != self.persisted.model {
            tracing::info!(
                "online calibration: {path} was learnt against another model; starting afresh"
            );
        } else {
            let n = self.series.online.restore(saved.series);
            tracing::info!("online calibration: offsets of {n} series restored from {path}");
        }
    }

    /// Goes on with the retrained model the state names, when retraining is on, `run.model` is
    /// still the model it was retrained from, and `run.retrained_model` still holds it (or the
    /// one before it, when a stop came between naming a model and writing it). Else
    /// `run.model` stays, saying why; the file is left as it is (the next retraining that wins
    /// replaces it).
    fn restore_retrained(&mut self, saved: Option<Retrained>) {
        let Some(r) = saved else {
            return;
        };
        let p = &self.persisted;
        let path = p.retrained_path.display().to_string();
        if p.root.is_none() {
            tracing::info!("run.retrain_every is off: going on with run.model, not {path}");
            return;
        }
        if p.root != Some(r.from) {
            tracing::info!(
                "run.model is not the model {path} was retrained from: going on with run.model"
            );
            return;
        }
        let model = match Model::load(&p.retrained_path) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("retrained model not restored, going on with run.model: {e}");
                return;
            }
        };
        let held = model.fingerprint();
        let r = match r.previous {
            _ if held == r.model => Retrained {
                previous: None,
                ..r
            },
            Some((previous, at)) if held == previous => {
                tracing::warn!(
                    "{path} still holds the model retrained at {at}: the one retrained at {} \
                     was not written (prescale stopped in between)",
                    r.at
                );
                Retrained {
                    model: previous,
                    at,
                    previous: None,
                    ..r
                }
            }
            _ => {
                tracing::warn!(
                    "{path} holds another model than the one retrained at {}: going on with \
                     run.model",
                    r.at
                );
                return;
            }
        };
        tracing::info!("going on with the model retrained at {} ({path})", r.at);
        self.model = Arc::new(model);
        self.model_name = format!("{path} (retrained at {})", r.at);
        if self.persisted.model.is_some() {
            self.persisted.model = Some(r.model);
        }
        self.persisted.retrained = Some(r);
    }

    /// The global model was just replaced by a retrained one (`self.model`): it is written to
    /// `run.retrained_model` so a restart goes on with it. The state names it first, with the
    /// model the file holds until the write ends, so that a stop between the two writes leaves
    /// a state that accepts whichever model the file holds. If either write fails, the model
    /// is used but not kept, and the file keeps the offsets learnt for the model a restart
    /// would load ([`freeze_offsets`](Self::freeze_offsets)). Call before the offsets are
    /// forgotten. Returns whether it was kept (the offsets saved from now on are its own).
    pub(super) fn keep_retrained(&mut self, now: i64) -> bool {
        let Some(from) = self.persisted.root else {
            self.freeze_offsets(now);
            return false;
        };
        let before = self.persisted.retrained;
        let model = self.model.fingerprint();
        let named = Retrained {
            from,
            model,
            at: now,
            previous: before.map(|b| (b.model, b.at)),
        };
        self.persisted.retrained = Some(named);
        // The offsets saved with it are still the model's before, and labelled so.
        let kept = self.save_persisted(now, true)
            && match self.model.save(&self.persisted.retrained_path) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(
                        "retrained model not kept: a restart goes back to the last one kept: {e}"
                    );
                    false
                }
            };
        if !kept {
            self.persisted.retrained = before;
            self.freeze_offsets(now);
            return false;
        }
        tracing::info!(
            "retrained model kept in {}: a restart goes on with it",
            self.persisted.retrained_path.display()
        );
        let p = &mut self.persisted;
        p.retrained = Some(Retrained {
            previous: None,
            ..named
        });
        if p.model.is_some() {
            p.model = Some(model);
        }
        p.frozen = None;
        true
    }

    /// The offsets learnt until now are saved from now on in place of the current model's,
    /// whose file a restart cannot load.
    fn freeze_offsets(&mut self, now: i64) {
        let Some(model) = self.persisted.model else {
            return;
        };
        if self.persisted.frozen.is_none() {
            let own = &self.own;
            self.persisted.frozen = Some(SavedState::new(
                model,
                now,
                self.series.online.to_saved(|k| own.get(k).is_none()),
            ));
            tracing::info!(
                "online calibration: the retrained model's offsets are not saved; {} keeps \
                 those learnt for the model a restart loads",
                self.persisted.path.display()
            );
        }
    }

    /// Saves when a minute has passed since the last save, or always with `last`. A failure
    /// is logged, never fatal: planning goes on without the file. Returns `false` when a save
    /// failed.
    pub(super) fn save_persisted(&mut self, now: i64, last: bool) -> bool {
        let p = &mut self.persisted;
        if !(last || p.last_save.is_none_or(|t| t.elapsed() >= SAVE_EVERY)) {
            return true;
        }
        let risk = self.risk.to_saved();
        if p.model.is_none() && risk.is_empty() && p.retrained.is_none() {
            return true;
        }
        p.last_save = Some(Instant::now());
        let own = &self.own;
        let mut fresh;
        let saved = match &mut p.frozen {
            Some(frozen) => frozen,
            None => {
                // Offsets learnt on an own model are that model's: a restart loads run.model.
                // Without a model (calibration off) there are none, only the ledgers.
                let series = match p.model {
                    Some(_) => self.series.online.to_saved(|k| own.get(k).is_none()),
                    None => Vec::new(),
                };
                fresh = SavedState::new(p.model.unwrap_or(0), now, series);
                &mut fresh
            }
        };
        saved.saved_at = now;
        saved.risk = risk;
        saved.retrained = p.retrained;
        let result = file::save(&p.path, saved);
        saved.risk = Vec::new();
        if let Err(e) = &result {
            tracing::warn!("online calibration and risk ledgers not saved: {e}");
        }
        result.is_ok()
    }
}
