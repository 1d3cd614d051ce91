#!/usr/bin/env bash
# Benchmark: generate ROWS purchase rows (about ROWS/8 customers), then time
#   1. the chain up to the RFM table (--select rfm),
#   2. the whole default pipeline (all stages, models, outputs),
#   3. the same with --memory-limit-mib 1024 (operators spill to disk above it),
#   4. BG/NBD + Gamma-Gamma fit and scoring of 1,000,000 simulated customers,
#   5. side by side in one sitting, alternated: winback whole / up to rfm, DuckDB's RFM query
#      and DuckDB running the same SQL stages (scripts/bench_compare.py), with ratios.
# Prints rows/s, seconds per stage and peak memory. Usage: scripts/bench.sh [ROWS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${1:-10000000}"
THREADS="${2:-2}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cargo build --release --quiet
cargo build --release --quiet --example bench_models
BIN="$CARGO_TARGET_DIR/release/winback"
DATA="bench-data/rows-$ROWS"
AS_OF=2026-11-24
if [ ! -d "$DATA/purchases" ]; then
    "$BIN" demo --rows "$ROWS" --no-run --dir "$DATA" --as-of "$AS_OF"
fi
du -sh "$DATA/purchases"
inputs=(--input "purchases=$DATA/purchases" --input "customers=$DATA/customers" --input "complaints=$DATA/complaints")
export WINBACK_NO_PROGRESS=1 WINBACK_LOG=warn
echo "== up to rfm ($THREADS threads)"
"$BIN" run --as-of "$AS_OF" "${inputs[@]}" --output bench-out/rfm --state-dir bench-out/state \
    --threads "$THREADS" --select rfm --set 'output.tables=["rfm"]'
echo "== whole pipeline ($THREADS threads)"
"$BIN" run --as-of "$AS_OF" "${inputs[@]}" --output bench-out/all --state-dir bench-out/state --threads "$THREADS"
echo "== whole pipeline, --memory-limit-mib 1024 ($THREADS threads)"
"$BIN" run --as-of "$AS_OF" "${inputs[@]}" --output bench-out/limited --state-dir bench-out/state \
    --threads "$THREADS" --memory-limit-mib 1024
echo "== models: 1,000,000 customers"
"$CARGO_TARGET_DIR/release/examples/bench_models" 1000000
echo "== side by side with DuckDB (same files, $THREADS threads, alternated)"
# shellcheck source=scripts/python-env.sh
source scripts/python-env.sh duckdb
python3 scripts/duckdb_stages.py "$DATA" "$AS_OF" "$THREADS" bench-out/duckdb-check \
    --compare bench-out/all | grep -E '^compare_summary' || true
python3 scripts/bench_compare.py "$BIN" "$DATA" "$AS_OF" "$THREADS" 2
