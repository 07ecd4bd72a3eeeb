#!/usr/bin/env python3
"""Puts, per trace, `prescale simulate --sweep`'s cheapest policy at <= 1 % under-provisioned
steps next to the independent yardstick's ranking of the same three methods, and counts the
traces where the two name the same cheapest one.

The comparable methods: prescale's forecasts (simulate: `predictive`; scorer: `prescale`, its
cheapest base), the Kubernetes HPA rule (`reactive` / `reactive_hpa`) and persistence of the
recent peak plus a margin (`persistence` / `persistence`). Costs are each side's own "replica
steps relative to the oracle's" at the cheapest setting within the budget.

usage: cheapest_agreement.py YARD_DIR SIM_DIR
  YARD_DIR: scripts/yardstick.sh's output (TRACE/score.json per trace)
  SIM_DIR:  TRACE/report.json per trace from `simulate --sweep` (scripts/cheapest-agreement.sh)
"""
import json, math, pathlib, sys

SIM = {"predictive": "prescale", "reactive": "reactive", "persistence": "persistence"}
YARD = {"prescale": "prescale", "reactive_hpa": "reactive", "persistence": "persistence"}


def finite(x):
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def ranking(costs):
    """methods cheapest first; a method with no setting within the budget is left out"""
    return sorted((k for k, v in costs.items() if finite(v)), key=lambda k: costs[k])


def cell(costs, order):
    return ", ".join(f"{k} {costs[k]:.3f}" for k in order) or "none within budget"


def main():
    yard, sim = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    rows, agree, n, same_order = [], 0, 0, 0
    for rep in sorted(sim.glob("*/report.json")):
        name = rep.parent.name
        score = yard / name / "score.json"
        if not score.exists():
            continue
        r = json.loads(rep.read_text())
        s = json.loads(score.read_text())
        sc = {SIM[c["policy"]]: (c["budget"] or {}).get("cost_vs_oracle")
              for c in r.get("sweep") or [] if c["policy"] in SIM}
        best = s.get("cost_at_1pct_best", {})
        yc = {YARD[k]: v["cost_vs_oracle"] for k, v in best.items() if k in YARD}
        so, yo = ranking(sc), ranking(yc)
        if not so or not yo:
            rows.append(f"| {name} | {cell(sc, so)} | {cell(yc, yo)} | n/a |")
            continue
        n += 1
        same = so[0] == yo[0]
        agree += same
        same_order += so == yo
        rows.append(f"| {name} | {cell(sc, so)} | {cell(yc, yo)} | {'yes' if same else 'NO'} |")
    print("| trace | simulate --sweep: cost/oracle at <= 1 % short, cheapest first | "
          "scorer: cost/oracle at <= 1 % short, cheapest first | same cheapest |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nsame cheapest policy on {agree} of {n} traces; same full order on {same_order} of {n}")


if __name__ == "__main__":
    main()
