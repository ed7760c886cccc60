#!/usr/bin/env bash
# Ingress benchmark: signed 1-KiB single-event batches against switchyard
# (durable ingest log, group commit), against a bare axum server that only
# reads the body (examples/bare_server.rs) and against a naive durable
# receiver (examples/naive_server.rs: verify, parse into a JSON tree, insert
# into SQLite with group commit), alternating in one run on the same
# machine, ROUNDS times. Prints every round and the median ratios.
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

  start_naive
  naive=$(load $NAIVE_PORT "$CONNS" "$SECS")
  naive_rss=$(peak_rss_kib $PID)
  stop $PID
  naive_stored=$(stored_events "$WORK/naive.db")

  start_switchyard
  sy=$(load $SY_PORT "$CONNS" "$SECS")
  sy_rss=$(peak_rss_kib $PID)
  stop $PID
  results+=("$bare|$sy|$bare_rss|$sy_rss|$(stored_events)|$naive|$naive_rss|$naive_stored")
done

python3 - "$CONNS" "$SECS" "${results[@]}" <<'PY'
import json, statistics, sys
conns, secs = int(sys.argv[1]), int(sys.argv[2])
print(f"ingress bench: {conns} connections, {secs}s per run, 1 KiB signed single-event batches")
print(f"{'round':<6}{'server':<12}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-200':>9}{'peak RSS MiB':>14}{'ratio':>8}")
ratios, naive_ratios, over_naive, failed = [], [], [], False
def line(i, name, r, rss, ratio=None):
    tail = f"{ratio:>7.2f}x" if ratio is not None else ""
    print(f"{i:<6}{name:<12}{r['rps']:>10.0f}{r['p50_us']/1000:>9.2f}{r['p99_us']/1000:>9.2f}{r['non_200']:>9}{int(rss)/1024:>14.1f}{tail}")
for i, row in enumerate(sys.argv[3:], 1):
    b, s, brss, srss, stored, n, nrss, nstored = row.split("|")
    b, s, n = json.loads(b), json.loads(s), json.loads(n)
    ratios.append(s["rps"] / b["rps"])
    naive_ratios.append(n["rps"] / b["rps"])
    over_naive.append(s["rps"] / n["rps"])
    line(i, "bare axum", b, brss)
    line(i, "naive", n, nrss, naive_ratios[-1])
    line(i, "switchyard", s, srss, ratios[-1])
    for who, kept, r in (("switchyard", stored, s), ("naive", nstored, n)):
        if int(kept) != r["ok"]:
            print(f"round {i}: {who} stored {kept} events but answered 200 to {r['ok']}", file=sys.stderr)
            failed = True
print(f"median ratio naive/bare: {statistics.median(naive_ratios):.2f}x")
print(f"median ratio switchyard/naive: {statistics.median(over_naive):.2f}x")
print(f"median ratio switchyard/bare: {statistics.median(ratios):.2f}x")
sys.exit(1 if failed else 0)
PY
