#!/bin/sh
# The README's max_short table: every trace in a folder replayed by `prescale simulate
# --policy predictive` at its defaults, once at the fixed default quantile (p90) and once with
# a 1 % short-step budget; prints short-step share and cost relative to the oracle for both.
# Usage: scripts/short-budget-table.sh TRACE_DIR [PRESCALE_BINARY]
set -eu
dir=${1:?usage: $0 TRACE_DIR [PRESCALE]}
bin=${2:-target/release/prescale}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf '| trace | p90: short %% | p90: cost/oracle | max_short 1%%: short %% | max_short 1%%: cost/oracle |\n'
printf '|---|---:|---:|---:|---:|\n'
for t in "$dir"/*.csv; do
    name=$(basename "$t" .csv)
    row="| $name"
    for mode in fixed budget; do
        rep="$out/$name-$mode"
        extra=""
        [ "$mode" = budget ] && extra="--max-short 1%"
        # shellcheck disable=SC2086 # $extra is two words or none
        if "$bin" simulate --trace "$t" --policy predictive $extra --report "$rep" >/dev/null 2>"$rep.err"; then
            row="$row $(python3 -c '
import json, sys
p = [p for p in json.load(open(sys.argv[1]))["policies"] if p["policy"] == "predictive"][0]["scores"]
print("| %.2f | %.3f" % (100 * p["under_provisioned"], p["cost_vs_oracle"]))' "$rep/report.json")"
        else
            row="$row | failed: $(tail -1 "$rep.err") | "
        fi
    done
    printf '%s |\n' "$row"
done
