#!/usr/bin/env bash
# Scores prescale against the peers of the independent yardstick (../shared/tools/yardstick) on
# every trace given (default: ../shared/data/traces/*.csv) and prints one table.
#
#   scripts/yardstick.sh [-o OUT_DIR] [TRACE.csv ...]
#
# Needs the yardstick's Python environment: set YARDSTICK_VENV (default /tmp/yardstick-venv); it
# is made with the yardstick's own setup.sh if missing. Per trace, OUT_DIR (default
# target/yardstick) gets prescale's backtest report and forecasts and the scorer's JSON.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/yardstick
if [ "${1:-}" = "-o" ]; then out=$2; shift 2; fi
shared=${SHARED_DIR:-../shared}
yard=$shared/tools/yardstick
venv=${YARDSTICK_VENV:-/tmp/yardstick-venv}
[ -x "$venv/bin/python" ] || bash "$yard/setup.sh" "$venv"
traces=("$@")
[ ${#traces[@]} -gt 0 ] || traces=("$shared"/data/traces/*.csv)
# nice: the machine is shared with other builds and the scorer is CPU-bound.
nice -n 10 cargo build --release --locked --quiet
mkdir -p "$out"
for t in "${traces[@]}"; do
  name=$(basename "$t" .csv)
  dir=$out/$name
  mkdir -p "$dir"
  echo "== $name" >&2
  # The scorer's target: peak over the next 15 min, train 70 %, score 30 %.
  if ! nice -n 10 target/release/prescale backtest --history "$t" --window 15m --holdout 0.3 \
      --report "$dir" --forecasts-csv "$dir/forecasts.csv" >"$dir/backtest.txt" 2>"$dir/backtest.log"; then
    echo "   prescale backtest failed: $(tail -1 "$dir/backtest.log")" >&2
    continue
  fi
  if ! nice -n 10 "$venv/bin/python" "$yard/eval_forecast.py" "$t" --prescale-forecasts "$dir/forecasts.csv" \
      >"$dir/score.json" 2>"$dir/score.log"; then
    echo "   scorer failed: $(tail -1 "$dir/score.log")" >&2
    rm -f "$dir/score.json"
  fi
done
"$venv/bin/python" scripts/yardstick_table.py "$out"
