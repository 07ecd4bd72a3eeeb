//! Decisions as data: what the planner wants, what it rests on, and which guard bent it.
//!
//! The act stage prints them as a table (via [`Display`](std::fmt::Display)) and logs them as
//! JSON lines (via `Serialize`); the simulator scores them. Nothing here performs anything.

use serde::Serialize;
use std::fmt;

/// What a decision asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// More replicas of a workload.
    ScaleUp,
    /// Fewer replicas of a workload.
    ScaleDown,
    /// Keep the replica count (recorded so that "why not" is answerable too).
    Hold,
    /// Grow a node pool.
    AddNode,
    /// Drain and remove one node.
    RemoveNode,
    /// Move replicas of a workload from one node to another before the node runs hot.
    Move,
    /// Put new replicas of a workload on a node.
    Place,
}

impl DecisionKind {
    /// Every kind, in declaration order. The exporter zeroes one counter per kind from this, so
    /// a kind added here is counted from the start without a second list to keep in step.
    pub const ALL: [DecisionKind; 7] = [
        DecisionKind::ScaleUp,
        DecisionKind::ScaleDown,
        DecisionKind::Hold,
        DecisionKind::AddNode,
        DecisionKind::RemoveNode,
        DecisionKind::Move,
        DecisionKind::Place,
    ];

    /// Short name for tables and logs. This is the one spelling of a kind: every other one is
    /// derived from it.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::ScaleUp => "scale-up",
            DecisionKind::ScaleDown => "scale-down",
            DecisionKind::Hold => "hold",
            DecisionKind::AddNode => "add-node",
            DecisionKind::RemoveNode => "remove-node",
            DecisionKind::Move => "move",
            DecisionKind::Place => "place",
        }
    }
}

impl DecisionKind {
    /// The kind as a metric label and as the JSON log spells it (`scale_up`): [`as_str`]
    /// with underscores, since hyphens are not idiomatic in Prometheus label values and serde's
    /// `snake_case` writes them so in the log.
    ///
    /// [`as_str`]: Self::as_str
    pub fn label(self) -> String {
        self.as_str().replace('-', "_")
    }
}

impl fmt::Display for DecisionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A rule that may override the raw number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GuardKind {
    /// Current demand needs more than the forecast-based number: a surge the forecast missed.
    Surge,
    /// Input data are stale: no scale-down.
    StaleData,
    /// The forecasting model is unhealthy: forecast ignored and no scale-down.
    UnhealthyModel,
    /// Neither current demand nor a usable forecast: hold.
    NoSignal,
    /// The spec failed validation: hold rather than act on nonsense.
    InvalidSpec,
    /// The change was within the tolerance band: hold to avoid flapping.
    Tolerance,
    /// Scale-down limited to the highest recommendation within the stabilisation window.
    Stabilization,
    /// Change limited by the maximum step per interval.
    MaxStep,
    /// Raised to the floor of an active known event (`[[workload]] events`).
    EventFloor,
    /// Raised to the minimum replicas.
    MinReplicas,
    /// Capped at the maximum replicas.
    MaxReplicas,
    /// Raised to the pool's minimum nodes.
    MinNodes,
    /// Capped at the pool's maximum nodes.
    MaxNodes,
    /// Cut because its pool was short, by the `priority` allocation.
    CappedPriority,
    /// Cut because its pool was short, by the `fair` (DRF) allocation.
    CappedFair,
    /// Cut because its pool was short, by the `static` shares allocation.
    CappedStatic,
    /// Cut because its pool was short, by the `market` allocation.
    CappedMarket,
}

impl GuardKind {
    /// Short name for tables and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            GuardKind::Surge => "surge",
            GuardKind::StaleData => "stale-data",
            GuardKind::UnhealthyModel => "unhealthy-model",
            GuardKind::NoSignal => "no-signal",
            GuardKind::InvalidSpec => "invalid-spec",
            GuardKind::Tolerance => "tolerance",
            GuardKind::Stabilization => "stabilization",
            GuardKind::MaxStep => "max-step",
            GuardKind::EventFloor => "event-floor",
            GuardKind::MinReplicas => "min-replicas",
            GuardKind::MaxReplicas => "max-replicas",
            GuardKind::MinNodes => "min-nodes",
            GuardKind::MaxNodes => "max-nodes",
            GuardKind::CappedPriority => "capped-priority",
            GuardKind::CappedFair => "capped-fair",
            GuardKind::CappedStatic => "capped-static",
            GuardKind::CappedMarket => "capped-market",
        }
    }

    /// Whether the guard is a pool's allocation cutting what the planner wanted.
    pub fn is_capped(self) -> bool {
        matches!(
            self,
            GuardKind::CappedPriority
                | GuardKind::CappedFair
                | GuardKind::CappedStatic
                | GuardKind::CappedMarket
        )
    }
}

impl fmt::Display for GuardKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One guard that changed the number, with the number before and after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Guard {
    /// Which guard.
    pub kind: GuardKind,
    /// The number before the guard.
    pub before: u32,
    /// The number after the guard.
    pub after: u32,
}

impl fmt::Display for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}→{}", self.kind, self.before, self.after)
    }
}

/// One decision of the planner.
///
/// `from`/`to` count replicas for workload decisions (for `place`/`move`: replicas of the
/// workload on `node`), and nodes in the pool for `add-node`/`remove-node`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// When it was made (Unix seconds; the caller's clock).
    pub at: i64,
    /// What it asks for.
    pub kind: DecisionKind,
    /// Workload name, or pool name for node decisions.
    pub target: String,
    /// The node concerned: destination of a `place`, source of a `move`, the node of a
    /// `remove-node`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Destination node of a `move`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_node: Option<String>,
    /// Count before.
    pub from: u32,
    /// Count after.
    pub to: u32,
    /// The number before any guard.
    pub raw: u32,
    /// The forecast quantiles `(level, value)` the decision rests on, if any.
    pub forecast: Option<Vec<(f64, f64)>>,
    /// The current value it rests on: demand for workloads, forecast fill (0..1) for nodes.
    pub current: Option<f64>,
    /// Guards that changed the number, in the order applied.
    pub guards: Vec<Guard>,
    /// One human line.
    pub reason: String,
}

impl Decision {
    /// True when it asks for nothing to change.
    pub fn is_hold(&self) -> bool {
        self.kind == DecisionKind::Hold
    }

    /// True for a decision about a workload's replicas (a scale or a hold), not a node's.
    pub fn is_workload_decision(&self) -> bool {
        matches!(
            self.kind,
            DecisionKind::ScaleUp | DecisionKind::ScaleDown | DecisionKind::Hold
        )
    }

    /// Whether a guard of this kind changed the number.
    pub fn guarded_by(&self, kind: GuardKind) -> bool {
        self.guards.iter().any(|g| g.kind == kind)
    }

    /// Column titles matching [`Display`](fmt::Display), for a dry-run table.
    pub fn table_header() -> String {
        format!(
            "{:<11} {:<24} {:>5}   {:<5} {:<24} REASON",
            "KIND", "TARGET", "FROM", "TO", "GUARDS"
        )
    }
}

/// One table row: kind, target (with nodes), from → to, guards, reason.
impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut target = self.target.clone();
        match (&self.node, &self.to_node) {
            (Some(a), Some(b)) => target.push_str(&format!(" {a}→{b}")),
            (Some(a), None) => target.push_str(&format!(" @{a}")),
            _ => {}
        }
        let guards = if self.guards.is_empty() {
            "-".to_string()
        } else {
            self.guards
                .iter()
                .map(|g| g.kind.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        write!(
            f,
            "{:<11} {:<24} {:>5} → {:<5} {:<24} {}",
            self.kind, target, self.from, self.to, guards, self.reason
        )
    }
}

/// Formats a number for reasons: integers without decimals, small values with enough digits.
pub(crate) fn num(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    let a = v.abs();
    if a >= 100.0 || (v.fract() == 0.0 && a < 1e15) {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_reads_as_a_table_row_and_serializes() {
        let d = Decision {
            at: 100,
            kind: DecisionKind::ScaleDown,
            target: "api".into(),
            node: None,
            to_node: None,
            from: 12,
            to: 10,
            raw: 9,
            forecast: Some(vec![(0.5, 300.0), (0.9, 412.0)]),
            current: Some(280.0),
            guards: vec![Guard { kind: GuardKind::Stabilization, before: 9, after: 10 }],
            reason: "p90 peak 412 rps in 15m needs 9 × 50 rps; held at 10 by 5m scale-down stabilisation".into(),
        };
        let row = d.to_string();
        assert!(row.starts_with("scale-down  api"), "{row}");
        assert!(row.contains("12 → 10"), "{row}");
        assert!(row.contains("stabilization"), "{row}");
        let json = serde_json::to_string(&d).unwrap();
        assert!(json.contains("\"kind\":\"scale_down\""), "{json}");
        assert!(json.contains("\"stabilization\""), "{json}");
        assert!(!json.contains("to_node"), "{json}");
        assert!(d.guarded_by(GuardKind::Stabilization));
        assert!(Decision::table_header().starts_with("KIND"));
    }

    #[test]
    fn labels_are_the_serialized_spelling_of_every_kind() {
        for k in DecisionKind::ALL {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.label()));
        }
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(num(412.3), "412");
        assert_eq!(num(50.0), "50");
        assert_eq!(num(12.34), "12.3");
        assert_eq!(num(0.456), "0.46");
    }
}
