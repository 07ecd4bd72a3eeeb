//! The allocation runs as the task-queue report prints them: one line per policy × placement,
//! then one per tenant under it.

use super::AllocationMetrics;

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.1}", v * 100.0)
    } else {
        "-".into()
    }
}

/// The allocation table (empty when there are no runs).
pub fn table(runs: &[AllocationMetrics]) -> String {
    let Some(first) = runs.first() else {
        return String::new();
    };
    let mut out = format!(
        "allocation policies (within a tenant first come, first served; starved = waited > {:.0} s)\n",
        first.starve_after
    );
    out.push_str(&format!(
        "{:<9} {:<13} {:>10} {:>10} {:>10} {:>10} {:>6} {:>7} {:>7} {:>6} {:>8} {:>8}\n",
        "policy",
        "placement",
        "wait-mean",
        "wait-p95",
        "compl-mean",
        "compl-p95",
        "cpu%",
        "cpu%arr",
        "load-cv",
        "jain",
        "starved",
        "clearing"
    ));
    for m in runs {
        out.push_str(&format!(
            "{:<9} {:<13} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>6} {:>7} {:>7.3} {:>6.3} {:>8} {:>8}\n",
            m.allocation.as_str(),
            m.placement.as_str(),
            m.mean_wait,
            m.p95_wait,
            m.mean_completion,
            m.p95_completion,
            pct(m.utilisation.cpu),
            pct(m.utilisation_arrivals.cpu),
            m.load_cv,
            m.jain,
            m.starved,
            m.clearing_bid.map_or("-".into(), |b| format!("{b:.2}")),
        ));
        for t in &m.tenants {
            out.push_str(&format!(
                "  {:<21} {:>10.1} {:>10.1} {:>10.1} {:>10.1} {:>6} {:>7} {:>7} {:>6} {:>8}\n",
                format!("{} ({})", t.tenant, t.tasks),
                t.mean_wait,
                t.p95_wait,
                t.mean_completion,
                t.p95_completion,
                pct(t.utilisation.cpu),
                "",
                "",
                format!("{:.2}", t.mean_slowdown),
                t.starved,
            ));
        }
    }
    out.push_str(
        "tenant lines: name (tasks), its waits and completions, its share of the cluster's CPU \
         (cpu%) and mean slowdown (completion / run time; jain is Jain's index of these across \
         tenants); clearing = lowest bid started while others waited\n",
    );
    out
}
