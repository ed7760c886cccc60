#!/usr/bin/env bash
# Retention benchmark: does pruning a large journal slow the webhooks down?
#
# Fills a journal with FILL seconds of the ingress load (signed 1-KiB
# single-event batches, no rules, so every event is evaluated as no_rule and
# has no action), then makes two copies: one as it is, one aged 40 days so
# every event is past `retention.events` (30d). Each round serves both
# copies in turn under the same 32-connection load; on the aged copy the
# first prune starts with the server and runs during the load. It prints
# requests/s and p99 for both, the ratio, and how many events the prune
# deleted in the round (and whether it finished).
#
#   bench/retention.sh [fill seconds] [seconds per run] [rounds]
FILL=${1:-8}
SECS=${2:-5}
ROUNDS=${3:-3}
source "$(dirname "$0")/lib.sh"

# Fill once.
start_switchyard
load $SY_PORT 32 "$FILL" fill >/dev/null
stop $PID
filled=$(stored_events)
mkdir -p "$WORK/fresh" "$WORK/aged"
# shift_days N: moves every event of the journal N days (negative: older).
shift_days() {
  python3 - "$WORK/journal.db" "$1" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
d = int(sys.argv[2]) * 24 * 3600 * 1000
c.execute("UPDATE events SET received_at = received_at + ?, dedup_until = dedup_until + ?", (d, d))
c.commit()
PY
}
shift_days -40
cp -r "$WORK/journal.db" "$WORK/journal.db-log" "$WORK/aged/"
shift_days 40
cp -r "$WORK/journal.db" "$WORK/journal.db-log" "$WORK/fresh/"

# serve_copy NAME: a working copy of WORK/NAME as the journal, served; sets PID.
serve_copy() {
  rm -rf "$WORK"/journal.db*
  cp -r "$WORK/$1/journal.db" "$WORK/$1/journal.db-log" "$WORK/"
  BENCH_KEY=bench-key "$BIN/switchyard" --config "$WORK/config.yaml" --log-level warn serve & PID=$!
  wait_port $SY_PORT
}
events_left() { python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from events').fetchone()[0])" "$WORK/journal.db"; }

rows=()
for round in $(seq 1 "$ROUNDS"); do
  serve_copy fresh
  fresh=$(load $SY_PORT 32 "$SECS" "r${round}f")
  stop $PID
  fresh_left=$(events_left)
  serve_copy aged
  aged=$(load $SY_PORT 32 "$SECS" "r${round}a")
  stop $PID
  aged_left=$(events_left)
  rows+=("$fresh|$aged|$fresh_left|$aged_left")
done

python3 - "$filled" "$SECS" "${rows[@]}" <<'PY'
import json, statistics, sys
filled, secs = int(sys.argv[1]), int(sys.argv[2])
print(f"retention bench: a journal of {filled} events, aged 40 days or not; 32 connections, {secs}s per run")
print(f"{'round':<6}{'journal':<9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'non-200':>9}{'events left':>13}{'ratio':>8}")
ratios = []
for i, row in enumerate(sys.argv[3:], 1):
    f, a, fl, al = row.split("|")
    f, a = json.loads(f), json.loads(a)
    ratio = a["rps"] / f["rps"]
    ratios.append(ratio)
    print(f"{i:<6}{'fresh':<9}{f['rps']:>9.0f}{f['p50_us']/1000:>9.2f}{f['p99_us']/1000:>9.2f}{f['non_200']:>9}{int(fl):>13}")
    print(f"{i:<6}{'aged':<9}{a['rps']:>9.0f}{a['p50_us']/1000:>9.2f}{a['p99_us']/1000:>9.2f}{a['non_200']:>9}{int(al):>13}{ratio:>7.2f}x")
print(f"median req/s while pruning / without: {statistics.median(ratios):.2f}x")
PY
