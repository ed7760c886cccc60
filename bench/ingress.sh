#!/usr/bin/env bash
# Ingress benchmark: signed 1-KiB single-event batches against switchyard
# (durable ingest log, group commit) and against a bare axum server that only
# reads the body (examples/bare_server.rs), alternating in one run on the
# same machine, ROUNDS times. Prints every round and the median ratio.
#
#   bench/ingress.sh [seconds] [connections] [rounds]
SECS=${1:-6}
CONNS=${2:-32}
ROUNDS=${3:-6}
source "$(dirname "$0")/lib.sh"

results=()
for round in $(seq 1 "$ROUNDS"); do
  start_bare
  bare=$(load $BARE_PORT "$CONNS" "$SECS")
  bare_rss=$(peak_rss_kib $PID)
  stop $PID

  start_switchyard
  sy=$(load $SY_PORT "$CONNS" "$SECS")
  sy_rss=$(peak_rss_kib $PID)
  stop $PID
  results+=("$bare|$sy|$bare_rss|$sy_rss|$(stored_events)")
done

python3 - "$CONNS" "$SECS" "${results[@]}" <<'PY'
import json, statistics, sys
conns, secs = int(sys.argv[1]), int(sys.argv[2])
print(f"ingress bench: {conns} connections, {secs}s per run, 1 KiB signed single-event batches")
print(f"{'round':<6}{'server':<12}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-200':>9}{'peak RSS MiB':>14}{'ratio':>8}")
ratios, failed = [], False
for i, row in enumerate(sys.argv[3:], 1):
    b, s, brss, srss, stored = row.split("|")
    b, s = json.loads(b), json.loads(s)
    ratio = s["rps"] / b["rps"]
    ratios.append(ratio)
    print(f"{i:<6}{'bare axum':<12}{b['rps']:>10.0f}{b['p50_us']/1000:>9.2f}{b['p99_us']/1000:>9.2f}{b['non_200']:>9}{int(brss)/1024:>14.1f}")
    print(f"{i:<6}{'switchyard':<12}{s['rps']:>10.0f}{s['p50_us']/1000:>9.2f}{s['p99_us']/1000:>9.2f}{s['non_200']:>9}{int(srss)/1024:>14.1f}{ratio:>7.2f}x")
    if int(stored) != s["ok"]:
        print(f"round {i}: {stored} events stored but {s['ok']} answered 200", file=sys.stderr)
        failed = True
print(f"median ratio switchyard/bare: {statistics.median(ratios):.2f}x")
sys.exit(1 if failed else 0)
PY
