//! When cycles happen: on the wall clock's step grid, or one step per cycle of a replay.

use std::time::Duration;

/// When cycles happen.
pub(super) enum Clock {
    /// Real time, on the step grid.
    Wall { step: i64 },
    /// Replay time: one step per cycle, `pause` of wall time between cycles, until `end`.
    Virtual {
        now: i64,
        end: i64,
        step: i64,
        pause: Duration,
    },
}

impl Clock {
    /// The current cycle's time (Unix seconds).
    pub(super) fn now(&self) -> i64 {
        match self {
            Clock::Wall { .. } => crate::collect::unix_now(),
            Clock::Virtual { now, .. } => *now,
        }
    }

    /// Waits for the next cycle; false when the replay is over or a stop was asked for.
    pub(super) async fn tick(&mut self, stop: &mut tokio::sync::watch::Receiver<bool>) -> bool {
        let wait = match self {
            Clock::Wall { step } => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs_f64())
                    .unwrap_or(0.0);
                let step = *step as f64;
                let next = ((now / step).floor() + 1.0) * step;
                // A little after the grid point, so the newest sample has been scraped.
                Duration::from_secs_f64(next - now + (step / 10.0).min(5.0))
            }
            Clock::Virtual {
                now,
                end,
                step,
                pause,
            } => {
                if *now + *step > *end {
                    return false;
                }
                *now += *step;
                *pause
            }
        };
        let stopped = tokio::select! {
            _ = tokio::time::sleep(wait) => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        !stopped && !*stop.borrow()
    }
}
