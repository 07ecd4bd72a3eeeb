#!/usr/bin/env python3
"""Re-scores prescale's backtest forecasts against cached peer results of the yardstick.

The yardstick's peers (persistence, seasonal naive, Holt-Winters, scikit-learn, LightGBM) do
not change between prescale runs, yet they take most of a full scorer run (20 s a trace, up to
minutes: NASA HTTP's Holt-Winters alone takes 7). This
runs the full scorer once per trace without prescale (cached in CACHE_DIR/TRACE.json) and then
scores only prescale's forecasts, with the scorer's own functions (imported from
eval_forecast.py, not copied), into OUT_DIR/TRACE/score.json: the same JSON the full run would
write, so `scripts/yardstick_table.py OUT_DIR` summarises it. The one part copied is the
bisection of the cost at 1 % short, which the scorer defines inside its main(); `--check`
compares every number with a full scorer run to prove the two agree.

usage: yardstick_fast.py [--cache DIR] [--check] OUT_DIR [TRACE.csv ...]
  OUT_DIR/TRACE/forecasts.csv must exist (prescale backtest --forecasts-csv), e.g. from
  scripts/yardstick.sh or a loop of `prescale backtest ... --forecasts-csv`.
Needs the yardstick's venv (numpy, pandas, scikit-learn, lightgbm, statsmodels).
"""
import argparse, json, math, os, pathlib, subprocess, sys

import numpy as np
import pandas as pd

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = pathlib.Path(os.environ.get("SHARED_DIR", ROOT.parent / "shared"))  # as yardstick.sh
YARD = SHARED / "tools" / "yardstick"
sys.path.insert(0, str(YARD))
import eval_forecast as ef  # noqa: E402  (the scorer itself: its load, targets, scores, replay)


def peers(trace, cache):
    """The full scorer's JSON for the trace without prescale, run once and cached; None (and
    the scorer's last words on stderr) where the scorer itself fails on the trace."""
    path = cache / (trace.stem + ".json")
    failed = cache / (trace.stem + ".failed")  # the failure is cached too: it is as lasting
    if not path.exists() and not failed.exists():
        cache.mkdir(parents=True, exist_ok=True)
        run = subprocess.run([sys.executable, str(YARD / "eval_forecast.py"), str(trace)],
                             capture_output=True, text=True)
        if run.returncode != 0:
            failed.write_text((run.stderr.strip().splitlines() or ["no message"])[-1] + "\n")
        else:
            path.write_text(run.stdout)
    if failed.exists():
        print(f"{trace.stem}: the scorer fails on it ({failed.read_text().strip()}), skipped",
              file=sys.stderr)
        return None
    return json.loads(path.read_text())


def cost_at(d, lead, unit, plan_fn, budget=0.01):
    """The scorer's cost at <= `budget` violations (defined inside its main(), so copied)."""
    lo, hi = -0.5, 8.0
    if ef.replay(d, plan_fn(hi), lead, unit)["violation_rate"] > budget:
        return None
    for _ in range(30):
        mid = (lo + hi) / 2
        if ef.replay(d, plan_fn(mid), lead, unit)["violation_rate"] <= budget:
            hi = mid
        else:
            lo = mid
    r = ef.replay(d, plan_fn(hi), lead, unit)
    return {"margin": round(hi, 4), "cost_vs_oracle": round(r["cost_vs_oracle"], 4),
            "scale_events": r["scale_events"]}


def score(trace, forecasts, res):
    """Adds prescale's entries to the peers' result `res`, as the scorer's main() does."""
    s, _ = ef.load(str(trace))
    w, lead = res["window_steps"], res["lead_steps"]
    v = s.values
    n = len(v)
    y = ef.future_peak(v, w)
    split = int(n * 0.7)
    test = slice(split, n - w)
    pf = pd.read_csv(forecasts)
    idx = pd.Series(np.arange(n), index=s.index)
    pos = idx.reindex(pd.to_datetime(pf["timestamp"], utc=True)).values
    keep = ~np.isnan(pos)
    cols = {}
    for col in ("p50", "p90", "p95", "p99"):
        if col in pf:
            a = np.full(n, np.nan)
            a[pos[keep].astype(int)] = pf[col].values[keep]
            cols[col] = a
    p50, p90 = cols["p50"], cols.get("p90")
    res["forecast"]["prescale"] = ef.scores(y[test], p50[test], p90[test] if p90 is not None else None)
    d = v[split:n - w]
    unit = res["replica_unit"]
    if unit != float(np.quantile(d, 0.99) / 20):
        sys.exit(f"{trace}: the cached peer results were made from other data; delete "
                 f"{trace.stem}.json in the cache and run again")
    plan = (p90 if p90 is not None else p50)[split:n - w]
    if not np.isnan(plan).all():
        plan = np.where(np.isnan(plan), d, plan)
        res["autoscale"][f"prescale{'_p90' if p90 is not None else ''}"] = ef.replay(d, plan, lead, unit)
    at1 = res["cost_at_1pct_violations"]
    names = {"p50": "prescale", "p90": "prescale_p90", "p95": "prescale_p95", "p99": "prescale_p99"}
    for col, b in cols.items():
        base = b[split:n - w]
        if np.isnan(base).all():
            continue
        base = np.where(np.isnan(base), d, base)
        at1[names[col]] = cost_at(d, lead, unit, lambda m, base=base: base * (1 + m))
    best = None
    for k, c in at1.items():
        if k.split("_p9")[0] == "prescale" and c is not None:
            if best is None or c["cost_vs_oracle"] < best["cost_vs_oracle"]:
                best = dict(c, base=k)
    if best is not None:
        res["cost_at_1pct_best"]["prescale"] = best
    return res


def differences(a, b, path=""):
    """Every leaf where two JSON values differ (timings aside)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k.endswith("_s"):
                continue
            out += differences(a.get(k), b.get(k), f"{path}.{k}")
        return out
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return []
    return [] if a == b else [f"{path}: {a} != {b}"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=pathlib.Path)
    ap.add_argument("traces", nargs="*", type=pathlib.Path)
    ap.add_argument("--cache", type=pathlib.Path, default=ROOT / "target" / "yardstick-peers")
    ap.add_argument("--check", action="store_true",
                    help="also run the full scorer and report any number that differs")
    a = ap.parse_args()
    traces = a.traces or sorted((SHARED / "data" / "traces").glob("*.csv"))
    bad = 0
    for t in traces:
        fc = a.out / t.stem / "forecasts.csv"
        if not fc.exists():
            print(f"{t.stem}: no {fc}, skipped", file=sys.stderr)
            continue
        cached = peers(t, a.cache)
        if cached is None:
            continue
        res = score(t, fc, cached)
        (a.out / t.stem / "score.json").write_text(json.dumps(res, indent=1) + "\n")
        if a.check:
            full = json.loads(subprocess.run(
                [sys.executable, str(YARD / "eval_forecast.py"), str(t), "--prescale-forecasts", str(fc)],
                check=True, capture_output=True, text=True).stdout)
            diff = differences(full, res)
            bad += bool(diff)
            print(f"{t.stem}: {'identical to the full scorer' if not diff else 'DIFFERS'}", file=sys.stderr)
            for line in diff:
                print(f"   {line}", file=sys.stderr)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
