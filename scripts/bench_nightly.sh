#!/usr/bin/env bash
# The nightly run, end to end, against a baseline in one sitting: `winback run --no-send`
# (every stage, model, output table and the report) of a baseline binary and this build,
# alternated ROUNDS times on the same demo data of ROWS purchase rows, each on a fresh
# output and state folder. Prints per run the wall seconds and peak RSS, and the seconds
# of the stages that differ most between the two.
# Usage: BASELINE_BIN=/path/to/old/winback [BASELINE_DIR=/old/checkout] \
#        scripts/bench_nightly.sh [ROWS] [ROUNDS]
# (BASELINE_DIR: the checkout whose pipelines/ and sql/ the baseline runs; SKIP_BUILD=1
# uses the release binary already built.)
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${1:-10000000}"
ROUNDS="${2:-3}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet --bins
BIN="$(realpath "$CARGO_TARGET_DIR/release/winback")"
BASE="$(realpath "${BASELINE_BIN:?set BASELINE_BIN to the baseline winback binary}")"
BASE_DIR="$(realpath "${BASELINE_DIR:-.}")"
DATA="$PWD/bench-data/rows-$ROWS"
AS_OF=2026-11-24
mkdir -p bench-out
if [ ! -d "$DATA/purchases" ]; then
    "$BIN" demo --rows "$ROWS" --no-run --dir "$DATA" --as-of "$AS_OF"
fi
export WINBACK_NO_PROGRESS=1 WINBACK_LOG=warn
one() {
    local name="$1" bin="$2" dir="$3" out
    out="$(mktemp -d "$PWD/bench-out/nightly-XXXX")"
    (cd "$dir" && /usr/bin/time -f "%e %M" -o "$out/time" "$bin" run --no-send --as-of "$AS_OF" \
        --input "purchases=$DATA/purchases" --input "customers=$DATA/customers" \
        --input "complaints=$DATA/complaints" --threads 2 \
        --output "$out/out" --state-dir "$out/state" >/dev/null 2>"$out/log") || true
    python3 - "$name" "$out" "$AS_OF" <<'PY'
import json, sys
name, out, as_of = sys.argv[1:]
secs, kib = open(f"{out}/time").read().split()[-2:]
try:
    m = json.load(open(f"{out}/out/_runs/as_of={as_of}/manifest.json"))
    stages = {s["name"]: s.get("seconds", 0) for s in m.get("stages", [])}
    status = m.get("status")
except Exception as e:  # a failed run: say so
    stages, status = {}, f"no manifest ({e})"
top = sorted(stages.items(), key=lambda kv: -kv[1])[:6]
picked = {k: stages[k] for k in ("churn_kpis", "sltv", "winback_odds", "won_back_clv", "treatment_matrix", "campaign_results") if k in stages}
print(f"{name:8} {float(secs):7.1f} s  peak {int(kib)/1048576:.2f} GiB  {status}  top: "
      + ", ".join(f"{k} {v:.1f}" for k, v in top)
      + "  | " + ", ".join(f"{k} {v:.2f}" for k, v in picked.items()))
PY
    rm -rf "$out"
}
for r in $(seq 1 "$ROUNDS"); do
    echo "== round $r"
    one baseline "$BASE" "$BASE_DIR"
    one this "$BIN" "$PWD"
done
