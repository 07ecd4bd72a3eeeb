#!/usr/bin/env python3
"""Summarises the yardstick's JSON outputs (scripts/yardstick.sh) as one Markdown table.

Per trace: prescale's WAPE against the best peer's, p90 coverage, and the cost (relative to the
oracle) each reaches at <= 1 % under-provisioned steps, with the margin scaled on its cheapest
base. "excess" compares costs above the oracle (cost - 1), the issue's 0.85 x target; the mean
of its logarithm over the traces (lower is better) sums up a change in one number.
usage: yardstick_table.py OUT_DIR
"""
import json, math, pathlib, sys

out = pathlib.Path(sys.argv[1])
rows, wins_cost, wins_wape, cov_ok, n_cost, n_wape = [], 0, 0, 0, 0, 0
log_ratios = []
for f in sorted(out.glob("*/score.json")):
    r = json.loads(f.read_text())
    fc = r["forecast"]
    if "prescale" not in fc:
        continue
    peers = {k: v for k, v in fc.items() if k != "prescale"}
    bp = min(peers, key=lambda k: peers[k]["wape"])
    pw, bw = fc["prescale"]["wape"], peers[bp]["wape"]
    cov = fc["prescale"].get("p90_coverage")
    n_wape += 1
    wins_wape += pw <= bw
    cov_ok += cov is not None and 0.87 <= cov <= 0.93
    best = r.get("cost_at_1pct_best", {})
    def finite(x):
        return x is not None and not math.isnan(x)
    pc = best.get("prescale", {}).get("cost_vs_oracle")
    pc = pc if finite(pc) else None
    peer_costs = {k: v["cost_vs_oracle"] for k, v in best.items()
                  if k != "prescale" and finite(v["cost_vs_oracle"])}
    cost_cell = "n/a"
    if pc is not None and peer_costs:
        bk = min(peer_costs, key=peer_costs.get)
        bc = peer_costs[bk]
        n_cost += 1
        wins_cost += pc <= bc
        ratio = (pc - 1) / (bc - 1) if bc > 1 else float("inf")
        if 0 < ratio < float("inf"):
            log_ratios.append(math.log(ratio))
        cost_cell = f"{pc:.3f} | {bc:.3f} ({bk}) | {ratio:.2f}"
    else:
        cost_cell = "n/a | n/a | n/a"
    rows.append(f"| {r['trace'].removesuffix('.csv')} | {pw:.3f} | {bw:.3f} ({bp}) | "
                f"{'n/a' if cov is None else f'{cov:.2f}'} | {cost_cell} |")
print("| trace | WAPE prescale | best peer WAPE | p90 cov | cost@1% prescale | best peer cost@1% | excess ratio |")
print("|---|---|---|---|---|---|---|")
print("\n".join(rows))
print(f"\nprescale cost <= best peer on {wins_cost} of {n_cost}; WAPE <= best peer on {wins_wape} of {n_wape}; "
      f"p90 coverage in 0.87-0.93 on {cov_ok} of {n_wape}; mean log excess ratio "
      f"{sum(log_ratios) / max(len(log_ratios), 1):.3f} over {len(log_ratios)}")
