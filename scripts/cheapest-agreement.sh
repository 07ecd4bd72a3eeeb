#!/bin/sh
# Does `prescale simulate --sweep` name the same cheapest policy at <= 1 % under-provisioned
# steps as the independent yardstick? Per trace the yardstick scored (scripts/yardstick.sh's
# OUT_DIR, default target/yardstick), simulate is asked the scorer's question: the same split
# (history 70 %, scored 30 %), the same lead (boot time = the scorer's lead steps), the same
# replica unit (the scorer's `replica_unit`, its test part's p99 / 20) and the same forecast
# window (15 min) and the same model (backtest's 100 trees, seed 42, on the same 70 %), then
# scripts/cheapest_agreement.py puts the two rankings side by side.
# Usage: scripts/cheapest-agreement.sh [YARD_DIR [TRACE_DIR [PRESCALE_BINARY]]]
set -eu
yard=${1:-target/yardstick}
traces=${2:-../shared/data/traces}
bin=${3:-target/release/prescale}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for score in "$yard"/*/score.json; do
    name=$(basename "$(dirname "$score")")
    # shellcheck disable=SC2046 # three words on purpose
    set -- $(python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
print(s["replica_unit"], round(s["lead_steps"] * s["step_min"] * 60), s["window_steps"])' "$score")
    unit=$1 boot=$2
    [ "$unit" = 0.0 ] && continue
    if ! nice -n 10 "$bin" simulate --trace "$traces/$name.csv" --sweep \
        --policy predictive,reactive,persistence,oracle --train-fraction 0.7 \
        --boot-time "${boot}s" --replica-capacity "$unit" --window 15m --trees 100 \
        --report "$out/$name" >"$out/$name.txt" 2>"$out/$name.err"; then
        echo "$name: simulate failed: $(tail -1 "$out/$name.err")" >&2
    fi
done
python3 "$(dirname "$0")/cheapest_agreement.py" "$yard" "$out"
