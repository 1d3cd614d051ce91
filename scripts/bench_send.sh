#!/usr/bin/env bash
# Send benchmark, end to end: `winback run` (stages, planning, ledger, requests) on demo
# data of ROWS purchase rows, its e-mail channel on SendGrid and its SMS channel on Twilio,
# both a fake provider on 127.0.0.1 that accepts everything at once (examples/fake_provider.rs).
# Two projects: the shipped pipeline as it is (the nightly run's real sends), and a copy
# whose quick campaign's audience is every customer (about 0.9 of them have e-mail
# consent: 10M rows give about 1.1M e-mails through SendGrid in one run).
# With BASELINE_BIN set, that binary and this build are alternated ROUNDS times in one
# sitting, each on a fresh output and state folder; BASELINE_DIR names the checkout whose
# pipelines/ and sql/ the baseline runs (default: this one; give the baseline's own when
# the SQL needs what an older binary lacks, such as a new function). Prints wall seconds, peak RSS and what
# each channel delivered (and, where the binary records it, the delivery's own seconds).
# Then the module benchmark (examples/bench_delivery.rs: 1M SendGrid recipients, 100k SMS).
# Usage: scripts/bench_send.sh [ROWS] [ROUNDS]    (BASELINE_BIN=/path/to/old/winback;
# EVERYONE=0 stops after the shipped pipeline's runs, EVERYONE=only runs only the
# every-customer runs; SKIP_MODULE=1 leaves out the module benchmark; KEEP_OUT=1 keeps
# each run's output folder under bench-out/)
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${1:-8000000}"
ROUNDS="${2:-2}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
# One build of the binary and the examples together (building them apart unifies the
# dependencies' features differently and rebuilds half of them).
if [ -z "${SKIP_BUILD:-}" ]; then
    cargo build --release --quiet --bins --examples
fi
BIN="$(realpath "$CARGO_TARGET_DIR/release/winback")"
DATA="$PWD/bench-data/rows-$ROWS"
BASELINE_DIR="$(realpath "${BASELINE_DIR:-.}")"
AS_OF=2026-11-24
PORT="${PORT:-18089}"
if [ ! -d "$DATA/purchases" ]; then
    "$BIN" demo --rows "$ROWS" --no-run --dir "$DATA" --as-of "$AS_OF"
fi
"$CARGO_TARGET_DIR/release/examples/fake_provider" "$PORT" &
FAKE=$!
trap 'kill $FAKE 2>/dev/null || true' EXIT
sleep 0.5
export WINBACK_NO_PROGRESS=1 WINBACK_LOG=warn
export BENCH_KEY=bench-key-not-secret BENCH_SID=ACbench BENCH_TOKEN=bench-token
# Channels that reach people sign unsubscribe tokens with a real secret (issue 24).
export WINBACK_TOKEN_SECRET=bench-token-secret-0123456789abcdef0123456789
URL="http://127.0.0.1:$PORT"
args=(--as-of "$AS_OF" --input "purchases=$DATA/purchases" --input "customers=$DATA/customers"
    --input "complaints=$DATA/complaints" --threads 2
    --set channels.email.type=sendgrid --set "channels.email.base_url=$URL"
    --set channels.email.api_key_env=BENCH_KEY --set channels.email.from=shop@example.com
    --set channels.email.rate_per_sec=100000 --set channels.email.concurrency=4
    --set channels.sms.type=twilio --set "channels.sms.base_url=$URL"
    --set channels.sms.account_sid_env=BENCH_SID --set channels.sms.auth_token_env=BENCH_TOKEN
    --set 'channels.sms.from="+15550001111"' --set channels.sms.quiet_hours=
    --set channels.sms.rate_per_sec=100000 --set channels.sms.concurrency=16)
# one NAME BIN DIR [ARGS...]: one run of BIN in checkout DIR (its pipelines/ and sql/).
one() {
    local name="$1" bin="$2" dir="$3" out
    shift 3
    out="$(mktemp -d "$PWD/bench-out/send-XXXX")"
    (cd "$dir" && /usr/bin/time -f "%e %M" -o "$out/time" "$bin" run "${args[@]}" "$@" \
        --output "$out/out" --state-dir "$out/state" >/dev/null 2>"$out/log") || true
    python3 - "$name" "$out" "$AS_OF" <<'PY'
import json, sys
name, out, as_of = sys.argv[1:4]
# The last line: /usr/bin/time writes "Command exited with non-zero status N" above it.
secs, kib = open(f"{out}/time").read().split("\n")[-2].split()
m = json.load(open(f"{out}/out/_runs/as_of={as_of}/manifest.json"))
parts = []
for d in (m.get("campaigns") or {}).get("deliveries", []):
    s = d.get("seconds")
    rate = f", {d['requests'] / s:,.0f} req/s" if s else ""
    took = f" in {s:.2f} s{rate}" if s else ""
    parts.append(f"{d['channel']}: {d['delivered']} delivered, {d['requests']} requests{took}")
print(f"{name:9} {float(secs):6.1f} s  {int(kib) / 1048576:.2f} GiB  status {m['status']}  " + "; ".join(parts))
PY
    [ -n "${KEEP_OUT:-}" ] || rm -rf "$out"
}
mkdir -p bench-out
# A copy of checkout $1's pipelines/ and sql/ in $2 whose quick campaign's audience is
# every customer.
everyone() {
    rm -rf "$2" && mkdir -p "$2" && cp -r "$1/pipelines" "$1/sql" "$2/"
    cat > "$2/sql/audiences/winback_quick.sql" <<'SQL'
-- Bench only: every customer enters the quick campaign tonight (step 1 is an e-mail).
select
    s.customer_id,
    s.last_purchase_date as entry_date,
    s.monetary_total as value,
    'win_back' as treatment,
    'bench' as segment,
    'our shop' as favourite_channel,
    s.recency_days as days_since_last_purchase,
    s.orders,
    s.last_purchase_date,
    s.monetary_total
from customer_summary s
SQL
}
everyone . bench-out/send-everyone
everyone "$BASELINE_DIR" bench-out/send-everyone-baseline
if [ "${EVERYONE:-1}" != only ]; then
    echo "== winback run end to end, $ROWS rows, e-mail via SendGrid and SMS via Twilio (fakes on 127.0.0.1)"
    for _ in $(seq "$ROUNDS"); do
        if [ -n "${BASELINE_BIN:-}" ]; then one baseline "$BASELINE_BIN" "$BASELINE_DIR"; fi
        one this "$BIN" .
    done
fi
if [ "${EVERYONE:-1}" = 0 ]; then exit 0; fi
echo "== the same, every customer in the quick campaign (step 1: one e-mail each through SendGrid)"
args+=(--set campaigns.winback_quick.holdout_share=0.0 --set budget.total_per_run=1000000000.0)
for _ in $(seq "$ROUNDS"); do
    if [ -n "${BASELINE_BIN:-}" ]; then
        one baseline "$BASELINE_BIN" bench-out/send-everyone-baseline
    fi
    one this "$BIN" bench-out/send-everyone
done
echo "== module: examples/bench_delivery (1,000,000 e-mails through SendGrid, 100,000 SMS through Twilio)"
[ -n "${SKIP_MODULE:-}" ] || "$CARGO_TARGET_DIR/release/examples/bench_delivery"
