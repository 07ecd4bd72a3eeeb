//! The decision's reason: what the raw number rests on (forecast need, reactive floor and which
//! won) and what each guard did, in words a person reading the dry-run table can check.

use super::{Cycle, ForecastUse, POORLY_RATED_WEIGHT};
use crate::plan::decision::{num, Guard, GuardKind};
use crate::series::format_duration;

impl Cycle<'_> {
    /// The reason's opening: what the raw number rests on.
    pub(super) fn basis(&self, fc_use: &ForecastUse, raw: u32) -> String {
        let (spec, input, unit) = (self.spec, self.input, &self.unit);
        let (demand, reactive, weight, current) =
            (self.demand, self.reactive, self.weight, self.current);
        let mut basis = match fc_use {
            ForecastUse::Used { q, n } => {
                let level = match (input.risk, input.forecast) {
                    (Some(r), Some(f)) => {
                        // The forecast clamps to its top level: name the one actually used.
                        let top = f.quantiles.last().map_or(r.base, |l| l.0);
                        let base = r.base.min(top);
                        let margin = if (r.margin - 1.0).abs() < 0.005 {
                            String::new()
                        } else {
                            format!(" × {:.2}", r.margin)
                        };
                        let realised = match r.realised {
                            Some(x) => format!(
                                "realised {}% over {}",
                                num(x * 100.0),
                                format_duration(r.window)
                            ),
                            None => "nothing realised yet".to_string(),
                        };
                        // Engaged only when the margin is at its cap and steps are still
                        // short (`plan::risk::floor`): name it, and whether it set the peak.
                        let floor = match r.floor {
                            Some((level, v)) => format!(
                                "; floor p{} of {}'s demand {}{}",
                                num(level * 100.0),
                                format_duration(r.window),
                                num(v),
                                if f.quantile(r.base).is_some_and(|b| v > b * r.margin) {
                                    ", above the forecast"
                                } else {
                                    ""
                                }
                            ),
                            None => String::new(),
                        };
                        format!(
                            "p{}{margin} (budget {}% short, {realised}{floor})",
                            num(base * 100.0),
                            num(r.budget * 100.0)
                        )
                    }
                    _ => format!("p{}", num(spec.quantile * 100.0)),
                };
                let mut s = format!(
                    "{level} peak {}{unit} over next {} needs {n} × {}{unit}",
                    num(*q),
                    format_duration(input.forecast.map_or(0, |f| f.window)),
                    num(self.cap),
                );
                let window = input.forecast.map_or(0, |f| f.window);
                if window < spec.boot_time {
                    // Capacity ordered now arrives after the forecast horizon: say so.
                    s.push_str(&format!(
                        " (forecast covers only {} of the {} boot time)",
                        format_duration(window),
                        format_duration(spec.boot_time)
                    ));
                }
                // The weight changes nothing in the number; a reader should still know when
                // the capacity above the floor rests on a forecast that has been wrong lately.
                let weighing = if weight < POORLY_RATED_WEIGHT {
                    format!("forecast weight {weight:.2}, poorly rated, counted in full")
                } else if weight < 1.0 {
                    format!("forecast weight {weight:.2}")
                } else {
                    String::new()
                };
                let sep = |s: &str| {
                    if s.is_empty() {
                        String::new()
                    } else {
                        format!("; {s}")
                    }
                };
                match (demand, reactive) {
                    (Some(d), Some(r)) => {
                        let winner = match n.cmp(&r) {
                            std::cmp::Ordering::Greater => "forecast above it",
                            std::cmp::Ordering::Equal => "forecast and floor agree",
                            std::cmp::Ordering::Less => "floor wins",
                        };
                        s.push_str(&format!(
                            "; reactive floor {r} (current {}{unit}); {winner}{} → {}",
                            num(d),
                            sep(&weighing),
                            raw.max(r)
                        ));
                    }
                    _ if weight < POORLY_RATED_WEIGHT => s.push_str(&format!(
                        "; forecast weight {weight:.2}, poorly rated, and no current demand: \
                         never below the {current} running → {raw}"
                    )),
                    _ => s.push_str(&format!("{}; no current demand", sep(&weighing))),
                }
                s
            }
            ForecastUse::Ignored(why) => match (demand, reactive) {
                (Some(d), Some(r)) => {
                    let mut s = format!(
                        "current {}{unit}{} needs {r} × {}{unit} ({why})",
                        num(d),
                        if spec.headroom > 0.0 {
                            format!(" + {}% headroom", num(spec.headroom * 100.0))
                        } else {
                            String::new()
                        },
                        num(self.cap)
                    );
                    // The budget's demand floor stands without a forecast (see `raw`): when
                    // it sets the number, say so, or the number reads as unexplained.
                    if let (Some(risk), Some(f)) = (input.risk, self.risk_floor()) {
                        if let Some((level, v)) = risk.floor.filter(|_| f > r) {
                            s.push_str(&format!(
                                "; budget {}% short engaged its floor, p{} of {}'s demand {}{unit}, \
                                 needing {f} → {raw}",
                                num(risk.budget * 100.0),
                                num(level * 100.0),
                                format_duration(risk.window),
                                num(v)
                            ));
                        }
                    }
                    s
                }
                _ => format!("no current demand and {why}"),
            },
        };
        if input.data_stale && demand.is_some() {
            basis.push_str(" (data stale)");
        }
        basis
    }

    /// How the reason says what guard `g` did.
    pub(super) fn phrase(&self, g: &Guard) -> String {
        let (spec, unit, current) = (self.spec, &self.unit, self.current);
        match g.kind {
            GuardKind::Surge => format!(
                "raised to the reactive floor {} by current demand {}{unit} (surge the forecast missed)",
                g.after,
                num(self.demand.unwrap_or(0.0))
            ),
            GuardKind::StaleData => format!("held at {}: data stale, no scale-down", g.after),
            GuardKind::UnhealthyModel => {
                format!("held at {}: model unhealthy, no scale-down", g.after)
            }
            GuardKind::NoSignal => format!("held at {}", g.after),
            GuardKind::Tolerance => {
                format!(
                    "held at {}: within {}% tolerance",
                    g.after,
                    num(spec.tolerance * 100.0)
                )
            }
            GuardKind::Stabilization => format!(
                "{} {} by {} scale-down stabilisation",
                if g.after == current {
                    "held at"
                } else {
                    "limited to"
                },
                g.after,
                format_duration(spec.scale_down_window)
            ),
            GuardKind::MaxStep => format!(
                "limited to {} by max step {}",
                g.after,
                if g.after > current {
                    format!("+{}", spec.max_step_up.unwrap_or(0))
                } else {
                    format!("-{}", spec.max_step_down.unwrap_or(0))
                }
            ),
            GuardKind::EventFloor => {
                match crate::plan::events::strongest(&spec.events, self.now, spec.boot_time) {
                    Some(e) => format!(
                        "raised to event floor {} by event {} (active from its start − {} boot time)",
                        g.after,
                        e.label(),
                        format_duration(spec.boot_time)
                    ),
                    None => format!("raised to event floor {}", g.after),
                }
            }
            GuardKind::MinReplicas => format!("raised to min {}", g.after),
            GuardKind::MaxReplicas => format!("capped at max {}", g.after),
            _ => format!("{} → {}", g.kind, g.after),
        }
    }
}
