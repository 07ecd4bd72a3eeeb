#!/usr/bin/env python3
"""Times prescale's end-to-end backtest against scikit-learn's forest fit on the same rows.

Issue #13 asks that training and backtesting stay fast: end to end (read, train, backtest) at
most a quarter of the time scikit-learn needs just to fit its forest on the same rows. The
scorer (`../shared/tools/yardstick/eval_forecast.py`) times that fit, but inside a run that
also fits LightGBM and Holt-Winters, so its figure moves with whatever else the machine does.
This times both here, back to back, on an otherwise idle machine:

* prescale: `BIN backtest --history TRACE --window 15m --holdout 0.3 --report DIR
  --forecasts-csv FILE`, the command the yardstick tables use, as a process (reading the CSV,
  training on the first 70 %, the rolling-origin backtest of the rest, the report, the chart
  and the forecasts CSV all count); the best of `--repeat` runs;
* scikit-learn: the scorer's own features (imported from eval_forecast.py, not copied) and its
  forest (100 trees, min leaf 5, max features 0.5, both cores), fitted on the scorer's training
  rows; only `fit` is timed, as the scorer does; the best of `--repeat` fits (one for traces
  whose fit takes over 10 s).

usage: speed_vs_sklearn.py [--repeat N] BIN [TRACE.csv ...]   (default: every shared trace)
Needs the yardstick's venv (numpy, pandas, scikit-learn). Prints a Markdown table.
"""
import argparse, os, pathlib, subprocess, sys, tempfile, time

import numpy as np
import pandas as pd

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = pathlib.Path(os.environ.get("SHARED_DIR", ROOT.parent / "shared"))
YARD = SHARED / "tools" / "yardstick"
sys.path.insert(0, str(YARD))
import eval_forecast as ef  # noqa: E402  (the scorer's load, features and targets)


def prescale_seconds(binary, trace, repeat):
    best = float("inf")
    with tempfile.TemporaryDirectory() as d:
        for _ in range(repeat):
            t0 = time.perf_counter()
            subprocess.run([binary, "backtest", "--history", str(trace), "--window", "15m",
                            "--holdout", "0.3", "--report", d,
                            "--forecasts-csv", os.path.join(d, "f.csv")],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            best = min(best, time.perf_counter() - t0)
    return best


def sklearn_fit(trace, repeat):
    """The scorer's forest fit on the scorer's training rows: (seconds, rows)."""
    from sklearn.ensemble import RandomForestRegressor
    s, step = ef.load(trace)
    step_min = step.total_seconds() / 60
    w = max(1, int(round(15 / step_min)))  # the scorer's 15-minute window in steps
    spd = int(round(24 * 60 / step_min))
    v = s.values
    y = ef.future_peak(v, w)
    n = len(v)
    split = int(n * 0.7)
    X = ef.features(s, spd).values
    tr = (np.arange(n) < split) & ~np.isnan(y)
    lvl = np.maximum(pd.Series(v).rolling(72, min_periods=1).mean().values, 1e-9)
    best = float("inf")
    for k in range(repeat):
        rf = RandomForestRegressor(n_estimators=100, min_samples_leaf=5, max_features=0.5,
                                   n_jobs=2, random_state=0)
        t0 = time.perf_counter()
        rf.fit(X[tr] / lvl[tr, None], y[tr] / lvl[tr])
        best = min(best, time.perf_counter() - t0)
        if best > 10:
            break
    return best, int(tr.sum())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("binary")
    ap.add_argument("traces", nargs="*")
    a = ap.parse_args()
    traces = [pathlib.Path(t) for t in a.traces] or sorted((SHARED / "data" / "traces").glob("*.csv"))
    print("| trace | rows fitted | prescale end to end (s) | scikit-learn fit (s) | ratio | within ¼ |")
    print("|---|---|---|---|---|---|")
    within = 0
    for t in traces:
        p = prescale_seconds(a.binary, t, a.repeat)
        f, rows = sklearn_fit(t, a.repeat)
        ok = p <= f / 4
        within += ok
        print(f"| {t.stem} | {rows} | {p:.2f} | {f:.2f} | {p / f:.2f} | {'yes' if ok else 'no'} |",
              flush=True)
    print(f"\nprescale end to end within a quarter of scikit-learn's fit on {within} of {len(traces)}")


if __name__ == "__main__":
    main()
