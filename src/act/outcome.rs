//! What became of each decision: [`Outcome`] and, for a decision not carried out on purpose,
//! [`Skip`]. One spelling for the log, the table and the metrics' `outcome` label.

use super::is_scale;
use crate::plan::Decision;
use std::fmt;

/// What became of one decision.
///
/// Logged (field `outcome`) and shown as `dry-run`, `applied`, `failed: <reason>`, `skipped`
/// or `skipped (<why>)`; exported as the `outcome` label [`label`](Self::label).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A scale decision, only shown and logged (no `--apply`).
    DryRun,
    /// Carried out: the command exited 0.
    Applied,
    /// Not carried out, and why: the exit status and the end of what the command said, a
    /// timeout, or a stop. The change is not believed done, so the next cycle tries again.
    Failed(String),
    /// Not carried out, on purpose: see [`Skip`].
    Skipped(Skip),
}

/// Why a decision was not carried out although prescale runs with `--apply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Nothing to carry out: a hold, or a node decision (a recommendation only). Shown as a
    /// bare `skipped`.
    Nothing,
    /// The workload's `mode` is `preview`: recommend only.
    Preview,
    /// Another prescale replica holds the leader Lease and acts; this one only records.
    NotLeader,
    /// The workload runs another count than prescale expected: the one it last set, or before
    /// it set any, the one the decision was planned from. Someone else changed it (a person
    /// with `kubectl scale`, another controller), or prescale's belief never was the cluster's
    /// (no replica read): prescale does not fight them nor write over a count it did not plan
    /// from, leaves the count this cycle and plans from `live` next cycle.
    ChangedElsewhere {
        /// The replica count read from the cluster.
        live: u32,
    },
    /// Another replica in view splits the workloads over another shard count (a resize under
    /// way, see [`crate::shard::agree`]): a workload may have a second owner that acts on it,
    /// so this one acts on none until every shard runs with one count. Not believed done.
    ShardsDisagree,
    /// The workload runs the count of an earlier change of prescale's, but the decision was
    /// planned from the count before it: the change's answer never came (a timeout, a dropped
    /// connection, a 5xx) and it turned out applied, or the replica count planned from was
    /// read before the change. That count is prescale's; the decision is left this cycle and
    /// the next plans from `live`. Not a change elsewhere: nobody else touched it.
    Landed {
        /// The replica count read from the cluster: the earlier change's.
        live: u32,
    },
}

/// How [`Skip::ChangedElsewhere`] and [`Skip::Landed`] are written before their live count,
/// and read back from the decision log ([`Outcome::live_count_in`]).
const CHANGED_ELSEWHERE: &str = "changed elsewhere: live ";
const LANDED: &str = "earlier change landed: live ";
/// How [`Outcome::unanswered`] ends a failure's reason with the count asked for, and how
/// [`Outcome::asked_in`] reads it back from the decision log.
const ASKED: &str = "; no answer, it may have landed: asked ";

impl Skip {
    /// What the log and the table add after `skipped`: `None` for [`Skip::Nothing`].
    pub fn why(self) -> Option<String> {
        match self {
            Skip::Nothing => None,
            Skip::Preview => Some("preview".into()),
            Skip::NotLeader => Some("not leader".into()),
            Skip::ShardsDisagree => Some("shards disagree".into()),
            Skip::ChangedElsewhere { live } => Some(format!("{CHANGED_ELSEWHERE}{live}")),
            Skip::Landed { live } => Some(format!("{LANDED}{live}")),
        }
    }
}

impl Outcome {
    /// Every outcome's label, in the order of the variants: the exporter starts a counter at 0
    /// for each, per workload.
    pub const LABELS: [&'static str; 4] = ["dry_run", "applied", "failed", "skipped"];

    /// The outcome as a metric label: one of [`LABELS`](Self::LABELS) (never the reason, which
    /// would make a series per message).
    pub fn label(&self) -> &'static str {
        let i = match self {
            Outcome::DryRun => 0,
            Outcome::Applied => 1,
            Outcome::Failed(_) => 2,
            Outcome::Skipped(_) => 3,
        };
        Self::LABELS[i]
    }

    /// The live count read when the decision was left for it ([`Skip::ChangedElsewhere`],
    /// [`Skip::Landed`]): the count the next cycle plans from.
    pub fn live_count(&self) -> Option<u32> {
        match self {
            Outcome::Skipped(Skip::ChangedElsewhere { live } | Skip::Landed { live }) => {
                Some(*live)
            }
            _ => None,
        }
    }

    /// The live count of a logged outcome that [`live_count`](Self::live_count) would give,
    /// read back from its text (`skipped (changed elsewhere: live 9)`): the log's reader and
    /// [`Skip::why`] share this one spelling.
    pub fn live_count_in(text: &str) -> Option<u32> {
        let why = text.strip_prefix("skipped (")?.strip_suffix(')')?;
        [CHANGED_ELSEWHERE, LANDED]
            .iter()
            .find_map(|prefix| why.strip_prefix(prefix)?.parse().ok())
    }

    /// A change whose request got no answer (a timeout, a dropped connection, a 5xx): failed,
    /// so not believed, but it may have landed, so the count it asked for is written after
    /// `why`: after a restart, finding that count live is then read as the change having
    /// landed ([`Skip::Landed`]), not as someone else's.
    pub fn unanswered(why: String, asked: u32) -> Outcome {
        Outcome::Failed(format!("{why}{ASKED}{asked}"))
    }

    /// The count an [`unanswered`](Self::unanswered) change asked for, read back from its
    /// logged text (`failed: timeout: …; no answer, it may have landed: asked 5`).
    pub fn asked_in(text: &str) -> Option<u32> {
        let (_, n) = text.strip_prefix("failed: ")?.rsplit_once(ASKED)?;
        n.parse().ok()
    }

    /// The live count when someone else changed the workload ([`Skip::ChangedElsewhere`]).
    pub fn changed_elsewhere(&self) -> Option<u32> {
        match self {
            Outcome::Skipped(Skip::ChangedElsewhere { live }) => Some(*live),
            _ => None,
        }
    }

    /// True for [`Outcome::Failed`].
    pub fn is_failed(&self) -> bool {
        matches!(self, Outcome::Failed(_))
    }

    /// True for a decision held back while the shards disagree ([`Skip::ShardsDisagree`]):
    /// nothing was carried out, so nothing is believed done.
    pub fn is_held(&self) -> bool {
        matches!(self, Outcome::Skipped(Skip::ShardsDisagree))
    }

    /// The table's short form: `dry-run`, `applied`, `failed`, `skipped`.
    pub fn short(&self) -> &'static str {
        match self {
            Outcome::DryRun => "dry-run",
            Outcome::Applied => "applied",
            Outcome::Failed(_) => "failed",
            Outcome::Skipped(_) => "skipped",
        }
    }

    /// What a dry run records for `d`: `dry-run` for a scale decision, `skipped` otherwise.
    pub fn dry_run(d: &Decision) -> Self {
        if is_scale(d) {
            Outcome::DryRun
        } else {
            Outcome::Skipped(Skip::Nothing)
        }
    }
}

/// `dry-run`, `applied`, `failed: <reason>`, `skipped`, `skipped (preview)`: as logged.
impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Failed(why) => write!(f, "failed: {why}"),
            Outcome::Skipped(skip) => match skip.why() {
                Some(why) => write!(f, "skipped ({why})"),
                None => f.write_str("skipped"),
            },
            o => f.write_str(o.short()),
        }
    }
}

impl serde::Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_labels_are_few_and_fixed() {
        let all = [
            Outcome::DryRun,
            Outcome::Applied,
            Outcome::Failed("a reason".into()),
            Outcome::Skipped(Skip::Nothing),
        ];
        let labels: Vec<&str> = all.iter().map(Outcome::label).collect();
        assert_eq!(labels, Outcome::LABELS);
        // The label never carries the reason, the log always does.
        assert_eq!(all[2].to_string(), "failed: a reason");
        assert_eq!(serde_json::to_string(&all[0]).unwrap(), "\"dry-run\"");
        let elsewhere = Outcome::Skipped(Skip::ChangedElsewhere { live: 7 });
        assert_eq!(elsewhere.label(), "skipped");
        assert_eq!(elsewhere.to_string(), "skipped (changed elsewhere: live 7)");
        assert_eq!(elsewhere.changed_elsewhere(), Some(7));
        let lost = Outcome::unanswered("timeout: PATCH had no answer within 1s".into(), 5);
        assert_eq!(
            lost.to_string(),
            "failed: timeout: PATCH had no answer within 1s; no answer, it may have landed: asked 5"
        );
        assert_eq!(Outcome::asked_in(&lost.to_string()), Some(5));
        assert!(lost.is_failed());
        assert_eq!(Outcome::asked_in("failed: forbidden: asked 5"), None);
        assert_eq!(Outcome::asked_in("applied"), None);
    }
}
