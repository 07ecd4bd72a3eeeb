//! What a replica simulation hands the user: a table, `report.json`, per-step decisions as CSV
//! and PNG charts (demand against capacity over time; cost-versus-risk curves).

use super::budget::BudgetCheck;
use super::error::ReplayError;
use super::replica::{Run, Scores};
use super::scenario::{Knobs, PolicyKind, Scenario, Workload};
use super::setup::Setup;
use super::sweep::{Curve, CurvePoint, RISK_TARGET};
pub use super::sweep_chart::sweep_chart;
use crate::atomic_file::write_atomic;
use crate::chart::{self, Chart, Line};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Most steps drawn in a demand-vs-capacity chart.
const CHART_STEPS: usize = 1_000;

/// The zoomed sweep chart shows settings at or under this share of under-provisioned steps.
const ZOOM_RISK: f64 = 0.05;

/// A span of the trace.
#[derive(Debug, Clone, Serialize)]
pub struct Span {
    /// First step, RFC 3339.
    pub from: String,
    /// One step past the last, RFC 3339.
    pub to: String,
    /// Steps.
    pub steps: usize,
}

impl Span {
    fn new(start: i64, step: i64, steps: usize) -> Span {
        Span {
            from: crate::series::format_timestamp(start),
            to: crate::series::format_timestamp(start + step * steps as i64),
            steps,
        }
    }
}

/// One policy's replay.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyResult {
    /// The policy.
    pub policy: PolicyKind,
    /// Its knob setting.
    pub knob: String,
    /// How it did.
    pub scores: Scores,
    /// The replay itself (for decisions.csv and charts).
    #[serde(skip)]
    pub run: Run,
}

/// The replica simulation's report.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaReport {
    /// The trace file.
    pub trace: PathBuf,
    /// The series replayed.
    pub series: String,
    /// Seconds per step.
    pub step: i64,
    /// Where the forecasts came from.
    pub model: String,
    /// The part of the trace the model and the static baseline learned from.
    pub history: Span,
    /// The part every policy was replayed on.
    pub simulated: Span,
    /// The workload.
    pub workload: Workload,
    /// Boot time in steps, as the replay applies it.
    pub boot_steps: usize,
    /// The knobs of the single-setting runs.
    pub knobs: Knobs,
    /// One entry per policy run.
    pub policies: Vec<PolicyResult>,
    /// Cost-versus-risk curves, with `--sweep`.
    pub sweep: Option<Vec<Curve>>,
    /// The cheapest policy within the risk target and the others' costs, in one line.
    pub verdict: Option<String>,
    /// With a short-step budget (`max_short`): the predictive policy's outcome and the bound.
    pub budget: Option<BudgetCheck>,
    #[serde(skip)]
    setup: Option<Setup>,
    #[serde(skip)]
    demand: Vec<f64>,
}

impl ReplicaReport {
    /// Assembles a report of `scenario` from single runs and an optional sweep.
    pub fn new(
        trace: &Path,
        model: String,
        scenario: &Scenario,
        knobs: Knobs,
        policies: Vec<PolicyResult>,
        sweep: Option<Vec<Curve>>,
    ) -> Self {
        let s = &scenario.setup;
        let history_start = s.start - s.step * scenario.history.len() as i64;
        let verdict = sweep.as_ref().and_then(|c| verdict(c));
        let budget = knobs.max_short.and_then(|b| {
            let p = policies
                .iter()
                .find(|p| p.policy == PolicyKind::Predictive)?;
            Some(BudgetCheck::new(
                b,
                p.scores.under_provisioned,
                p.scores.steps,
                s.boot_steps,
            ))
        });
        ReplicaReport {
            trace: trace.to_path_buf(),
            series: scenario.key.to_string(),
            step: s.step,
            model,
            history: Span::new(history_start, s.step, scenario.history.len()),
            simulated: Span::new(s.start, s.step, scenario.demand.len()),
            workload: scenario.workload.clone(),
            boot_steps: s.boot_steps,
            knobs,
            policies,
            sweep,
            verdict,
            budget,
            setup: Some(s.clone()),
            demand: scenario.demand.clone(),
        }
    }

    /// The table printed on stdout.
    pub fn table(&self) -> String {
        let mut out = format!(
            "simulation of {} — {} steps of {}s ({} .. {}), history {} steps before; replica capacity {:.4}, boot {} step(s)\nforecasts: {}\n",
            self.series,
            self.simulated.steps,
            self.step,
            self.simulated.from,
            self.simulated.to,
            self.history.steps,
            self.workload.replica_capacity,
            self.boot_steps,
            self.model,
        );
        out.push_str(&format!(
            "{:<11} {:<14} {:>7} {:>9} {:>11} {:>8} {:>8} {:>9} {:>8}\n",
            "policy",
            "knob",
            "under%",
            "unserved%",
            "replica-h",
            "vs-oracle",
            "actions",
            "lead-hit%",
            "peak"
        ));
        for p in &self.policies {
            let s = &p.scores;
            out.push_str(&format!(
                "{:<11} {:<14} {:>7.2} {:>9.3} {:>11.1} {:>8.3}x {:>8} {:>9} {:>8}\n",
                p.policy.as_str(),
                p.knob,
                s.under_provisioned * 100.0,
                s.unserved * 100.0,
                s.replica_hours,
                s.cost_vs_oracle,
                s.scaling_actions,
                s.lead_time_hit_rate
                    .map_or("-".into(), |h| format!("{:.1}", h * 100.0)),
                s.peak_replicas,
            ));
        }
        if let Some(b) = &self.budget {
            out.push_str(&format!("{}\n", b.line()));
        }
        if let Some(curves) = &self.sweep {
            out.push_str(&format!(
                "\nsweep: cost (x oracle) / under-provisioned steps (%) per knob setting; budget = cheapest with ≤ {:.0}% under-provisioned\n",
                RISK_TARGET * 100.0
            ));
            for c in curves {
                let pts: Vec<String> = c
                    .points
                    .iter()
                    .map(|p| {
                        format!(
                            "{} {:.2}x/{:.2}%",
                            p.knob,
                            p.cost_vs_oracle,
                            p.under_provisioned * 100.0
                        )
                    })
                    .collect();
                out.push_str(&format!("{:<11} {}\n", c.policy.as_str(), pts.join(", ")));
                out.push_str(&format!(
                    "{:<11} budget: {}\n",
                    "",
                    c.budget.as_ref().map_or(
                        "no setting tried stays within the target".into(),
                        |b| format!(
                            "{} at {:.3}x oracle ({:.2}% under-provisioned)",
                            b.knob,
                            b.cost_vs_oracle,
                            b.under_provisioned * 100.0
                        )
                    )
                ));
            }
        }
        if let Some(v) = &self.verdict {
            out.push_str(&format!("\n{v}\n"));
        }
        out
    }

    /// Writes `report.json`, `decisions.csv` (the first policy run), `decisions-<policy>.csv`
    /// for each policy, `capacity.png` (demand and every policy's ready capacity),
    /// `capacity-<policy>.png` and, after a sweep, `sweep.png` and `sweep-zoom.png` (only the
    /// settings with at most 5 % under-provisioned steps). Returns the paths written.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, ReplayError> {
        std::fs::create_dir_all(dir).map_err(|error| ReplayError::Write {
            path: dir.to_path_buf(),
            error,
        })?;
        let mut written = Vec::new();
        let json = dir.join("report.json");
        let text = serde_json::to_vec_pretty(self)?;
        write_atomic(&json, |w| w.write_all(&text)).map_err(|error| ReplayError::Write {
            path: json.to_path_buf(),
            error,
        })?;
        written.push(json);
        for (i, p) in self.policies.iter().enumerate() {
            let path = dir.join(format!("decisions-{}.csv", p.policy.as_str()));
            self.write_decisions(&path, &p.run)?;
            written.push(path.clone());
            if i == 0 {
                let main = dir.join("decisions.csv");
                self.write_decisions(&main, &p.run)?;
                written.push(main);
            }
        }
        written.extend(self.capacity_charts(dir)?);
        if let Some(curves) = &self.sweep {
            let path = dir.join("sweep.png");
            sweep_chart(curves, &path, "cost vs risk: each policy's knob swept")?;
            written.push(path);
            // The region that matters for a decision, where the full chart's first, very
            // risky points squash everything against the axis.
            let zoomed: Vec<Curve> = curves
                .iter()
                .map(|c| Curve {
                    points: c
                        .points
                        .iter()
                        .filter(|p| p.under_provisioned <= ZOOM_RISK)
                        .cloned()
                        .collect(),
                    ..c.clone()
                })
                .collect();
            let path = dir.join("sweep-zoom.png");
            sweep_chart(
                &zoomed,
                &path,
                &format!(
                    "cost vs risk, settings with ≤ {:.0}% under-provisioned steps",
                    ZOOM_RISK * 100.0
                ),
            )?;
            written.push(path);
        }
        Ok(written)
    }

    /// `timestamp,demand,replicas,capacity`: the replicas provisioned during the step (ready
    /// and booting: what is paid for) and the capacity ready to serve it.
    fn write_decisions(&self, path: &Path, run: &Run) -> Result<(), ReplayError> {
        let Some(setup) = &self.setup else {
            return Ok(());
        };
        write_atomic(path, |w| {
            let mut out = csv::Writer::from_writer(w);
            out.write_record(["timestamp", "demand", "replicas", "capacity"])?;
            for (t, &d) in self.demand.iter().enumerate() {
                let demand = if d.is_finite() {
                    d.to_string()
                } else {
                    String::new()
                };
                let cap = f64::from(run.ready[t]) * setup.replica_capacity;
                out.write_record([
                    crate::series::format_timestamp(setup.timestamp(t)),
                    demand,
                    run.provisioned[t].to_string(),
                    format!("{cap}"),
                ])?;
            }
            out.flush()?;
            Ok(())
        })
        .map_err(|error| ReplayError::Write {
            path: path.to_path_buf(),
            error,
        })
    }

    fn capacity_charts(&self, dir: &Path) -> Result<Vec<PathBuf>, ReplayError> {
        let Some(setup) = &self.setup else {
            return Ok(Vec::new());
        };
        // A chart can only show so many steps legibly (about one per pixel column); longer runs
        // show their last stretch, and the title says which.
        let n = self.demand.len();
        let from = n.saturating_sub(CHART_STEPS);
        let hours: Vec<f64> = (from..n)
            .map(|t| t as f64 * setup.step as f64 / 3600.0)
            .collect();
        let demand = &self.demand[from..];
        let span = if from > 0 {
            format!(
                " (last {:.0} h of {:.0} h)",
                (n - from) as f64 * setup.step as f64 / 3600.0,
                n as f64 * setup.step as f64 / 3600.0
            )
        } else {
            String::new()
        };
        let caps: Vec<(PolicyKind, Vec<f64>)> = self
            .policies
            .iter()
            .map(|p| {
                let c = p
                    .run
                    .ready
                    .iter()
                    .skip(from)
                    .map(|&r| f64::from(r) * setup.replica_capacity)
                    .collect();
                (p.policy, c)
            })
            .collect();
        let mut written = Vec::new();
        let title = format!("{}: demand vs ready capacity{span}", self.series);
        let mut lines = vec![Line {
            label: "demand",
            y: demand,
            rgb: (0, 0, 0),
        }];
        for (k, c) in &caps {
            lines.push(Line {
                label: k.as_str(),
                y: c,
                rgb: colour(*k),
            });
        }
        let path = dir.join("capacity.png");
        chart::draw(
            &Chart {
                title: &title,
                x_label: "hours into the simulated part",
                y_label: "demand (trace units)",
                x: &hours,
                lines,
                bands: Vec::new(),
            },
            &path,
            1400,
            600,
        )?;
        written.push(path);
        for (k, c) in &caps {
            let title = format!("{}: demand vs {} capacity{span}", self.series, k.as_str());
            let path = dir.join(format!("capacity-{}.png", k.as_str()));
            chart::draw(
                &Chart {
                    title: &title,
                    x_label: "hours into the simulated part",
                    y_label: "demand (trace units)",
                    x: &hours,
                    lines: vec![
                        Line {
                            label: "demand",
                            y: demand,
                            rgb: (0, 0, 0),
                        },
                        Line {
                            label: k.as_str(),
                            y: c,
                            rgb: colour(*k),
                        },
                    ],
                    bands: Vec::new(),
                },
                &path,
                1400,
                600,
            )?;
            written.push(path);
        }
        Ok(written)
    }
}

/// Each policy's colour, the same in every chart.
pub(super) fn colour(k: PolicyKind) -> (u8, u8, u8) {
    match k {
        PolicyKind::Predictive => (31, 119, 180),
        PolicyKind::Reactive => (214, 39, 40),
        PolicyKind::Static => (44, 160, 44),
        PolicyKind::Persistence => (255, 127, 14),
        PolicyKind::Oracle => (148, 103, 189),
    }
}

/// One line naming the cheapest policy within the risk target, whichever it is, then the
/// others by cost, each at its own bisected setting; the oracle (not a policy anyone can run)
/// is left out. `None` without a curve of a real policy.
pub fn verdict(curves: &[Curve]) -> Option<String> {
    let target = RISK_TARGET * 100.0;
    let real: Vec<&Curve> = curves
        .iter()
        .filter(|c| c.policy != PolicyKind::Oracle)
        .collect();
    if real.is_empty() {
        return None;
    }
    let mut within: Vec<(&Curve, &CurvePoint)> = real
        .iter()
        .filter_map(|c| c.budget.as_ref().map(|b| (*c, b)))
        .collect();
    within.sort_by(|a, b| a.1.replica_hours.total_cmp(&b.1.replica_hours));
    let missing: Vec<&str> = real
        .iter()
        .filter(|c| c.budget.is_none())
        .map(|c| c.policy.as_str())
        .collect();
    let mut line = match within.split_first() {
        None => {
            format!("no policy keeps under-provisioned steps ≤ {target:.0}% with any setting tried")
        }
        Some(((c, b), rest)) => {
            let mut l = format!(
                "cheapest with under-provisioned steps ≤ {target:.0}%: {} ({}) at {:.3}x the oracle's replica-hours",
                c.policy.as_str(),
                b.knob,
                b.cost_vs_oracle
            );
            for (c, p) in rest {
                l.push_str(&format!(
                    "; {} ({}) {:.3}x, {:.1}% dearer",
                    c.policy.as_str(),
                    p.knob,
                    p.cost_vs_oracle,
                    (p.replica_hours / b.replica_hours - 1.0) * 100.0
                ));
            }
            l
        }
    };
    if !missing.is_empty() {
        line.push_str(&format!(
            "; no setting tried gets {} there",
            missing.join(", ")
        ));
    }
    Some(line)
}
