#!/usr/bin/env python3
"""scikit-learn baseline for benches/forest.rs on the identical data set.

`cargo bench --bench forest` writes target/forest_bench_data.csv (column `test` marks the
20k held-out rows). This fits RandomForestRegressor with the same hyper-parameters
(depth 12, min leaf 5, 8 features per split, bootstrap) and prints fit time and test R².

    pip install scikit-learn
    python3 benches/sklearn_compare.py [--trees 100] [--jobs 2]

A 100-tree fit takes well over a minute on 2 cores; R² barely moves with tree count, so
`--trees 20` is a fair quick check (the time then scales ~linearly).
"""
import argparse
import os
import time

import numpy as np
from sklearn.ensemble import RandomForestRegressor
from sklearn.metrics import r2_score

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CSV = os.path.join(HERE, "..", "target", "forest_bench_data.csv")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--csv", default=DEFAULT_CSV)
    ap.add_argument("--trees", type=int, default=100)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()

    t0 = time.perf_counter()
    data = np.loadtxt(args.csv, delimiter=",", skiprows=1)
    is_test = data[:, 0] == 1
    y, x = data[:, 1], data[:, 2:]
    print(f"loaded {data.shape[0]} rows x {x.shape[1]} features in {time.perf_counter() - t0:.1f} s")

    model = RandomForestRegressor(
        n_estimators=args.trees,
        max_depth=12,
        min_samples_leaf=5,
        max_features=8,
        bootstrap=True,
        n_jobs=args.jobs,
        random_state=7,
    )
    t0 = time.perf_counter()
    model.fit(x[~is_test], y[~is_test])
    fit_s = time.perf_counter() - t0
    r2 = r2_score(y[is_test], model.predict(x[is_test]))
    print(f"sklearn RandomForestRegressor: {args.trees} trees, n_jobs={args.jobs}: "
          f"fit {fit_s:.1f} s, test R2 {r2:.4f}")


if __name__ == "__main__":
    main()
