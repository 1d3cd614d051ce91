#!/usr/bin/env bash
# An incremental night against a full recompute of the same night, in one sitting: the
# history of ROWS demo purchase rows is run for as_of D-1 once (which keeps the maintained
# tables), then, alternated ROUNDS times, the night of D (one more day of purchases: the
# rows dated D-1, which the night of D-1 left out) incrementally from a copy of that state,
# and with --full-refresh. Prints wall seconds, peak RSS and the keys the night touched.
# Usage: scripts/bench_incremental.sh [ROWS] [ROUNDS]   (SKIP_BUILD=1: the release binary
# already built; MEMORY_LIMIT_MIB=2048: both under that cap)
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${1:-10000000}"
ROUNDS="${2:-2}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet --bins
BIN="$(realpath "$CARGO_TARGET_DIR/release/winback")"
DATA="$PWD/bench-data/rows-$ROWS"
AS_OF=2026-11-24
BEFORE=2026-11-23
mkdir -p bench-out
if [ ! -d "$DATA/purchases" ]; then
    "$BIN" demo --rows "$ROWS" --no-run --dir "$DATA" --as-of "$AS_OF"
fi
export WINBACK_NO_PROGRESS=1 WINBACK_LOG=warn
CAP=()
[ -z "${MEMORY_LIMIT_MIB:-}" ] || CAP=(--memory-limit-mib "$MEMORY_LIMIT_MIB")
WORK="$(mktemp -d "$PWD/bench-out/incremental-XXXX")"
trap 'rm -rf "$WORK"' EXIT
run() {
    local as_of="$1" state="$2" out="$3"; shift 3
    /usr/bin/time -f "%e %M" -o "$out.time" "$BIN" run --no-send --as-of "$as_of" \
        --input "purchases=$DATA/purchases" --input "customers=$DATA/customers" \
        --input "complaints=$DATA/complaints" --threads 2 "${CAP[@]}" \
        --output "$out" --state-dir "$state" "$@" >/dev/null 2>"$out.log" || true
    python3 - "$out" "$as_of" <<'PY'
import json, sys
out, as_of = sys.argv[1:]
secs, kib = open(f"{out}.time").read().split()[-2:]
try:
    m = json.load(open(f"{out}/_runs/as_of={as_of}/manifest.json"))
except Exception as e:  # a failed run: say so
    print(f"{as_of} {float(secs):7.1f} s  FAILED ({e}), see {out}.log"); sys.exit()
inc = m.get("incremental") or {}
how = inc.get("mode", "-") + (f" ({inc['reason']})" if inc.get("reason") else f", {inc.get('keys_touched')} keys touched")
top = sorted(((s["name"], s["seconds"]) for s in m["stages"]), key=lambda kv: -kv[1])[:5]
print(f"{as_of} {float(secs):7.1f} s  peak {int(kib)/1048576:.2f} GiB  {how}  top: "
      + ", ".join(f"{k} {v:.1f}" for k, v in top))
PY
}
echo "== the night before ($BEFORE), keeping the maintained tables"
run "$BEFORE" "$WORK/state0" "$WORK/out0"
for r in $(seq 1 "$ROUNDS"); do
    echo "== round $r"
    rm -rf "$WORK/state" "$WORK/out-inc" "$WORK/out-full" "$WORK/state-full"
    cp -a "$WORK/state0" "$WORK/state"
    echo -n "incremental "; run "$AS_OF" "$WORK/state" "$WORK/out-inc"
    cp -a "$WORK/state0" "$WORK/state-full"
    echo -n "full        "; run "$AS_OF" "$WORK/state-full" "$WORK/out-full" --full-refresh
done
