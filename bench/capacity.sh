#!/usr/bin/env bash
# Capacity benchmark: each server's throughput over a sweep of connection
# counts (the same signed 1-KiB single-event batches as bench/ingress.sh).
# A bare server is saturated at a few dozen connections; a durable one, whose
# requests wait for a disk flush, needs more in flight before its group
# commits fill. Each round runs every level against both servers,
# alternating, and reports each server's best level whose p99 stays within
# 10 ms and the ratio of the two bests (capacity against capacity); the
# median over the rounds closes.
#
#   bench/capacity.sh [seconds] [rounds] [connection counts...]
SECS=${1:-5}
ROUNDS=${2:-3}
if [ $# -gt 2 ]; then LEVELS=("${@:3}"); else LEVELS=(32 64 128 256); fi
source "$(dirname "$0")/lib.sh"

rows=()
for round in $(seq 1 "$ROUNDS"); do
  for conns in "${LEVELS[@]}"; do
    start_bare
    bare=$(load $BARE_PORT "$conns" "$SECS")
    stop $PID
    start_switchyard
    sy=$(load $SY_PORT "$conns" "$SECS")
    stop $PID
    rows+=("$round|$conns|$bare|$sy|$(stored_events)")
  done
done

python3 - "$SECS" "${rows[@]}" <<'PY'
import json, statistics, sys
from collections import defaultdict
secs = int(sys.argv[1])
P99_LIMIT_US = 10_000
print(f"capacity bench: {secs}s per run, 1 KiB signed single-event batches")
print(f"{'round':<6}{'conns':>6}{'bare req/s':>12}{'p99 ms':>8}{'switchyard req/s':>18}{'p99 ms':>8}{'ratio':>8}")
best = defaultdict(lambda: {"bare": (0, 0), "sy": (0, 0)})
failed = False
for row in sys.argv[2:]:
    rnd, conns, b, s, stored = row.split("|")
    b, s = json.loads(b), json.loads(s)
    print(f"{rnd:<6}{conns:>6}{b['rps']:>12.0f}{b['p99_us']/1000:>8.2f}{s['rps']:>18.0f}{s['p99_us']/1000:>8.2f}{s['rps']/b['rps']:>7.2f}x")
    for who, r in (("bare", b), ("sy", s)):
        if r["p99_us"] <= P99_LIMIT_US:
            best[rnd][who] = max(best[rnd][who], (r["rps"], int(conns)))
    if int(stored) != s["ok"]:
        print(f"round {rnd}, {conns} connections: {stored} events stored but {s['ok']} answered 200", file=sys.stderr)
        failed = True
ratios = []
for rnd, b in best.items():
    if not b["bare"][0] or not b["sy"][0]:
        print(f"round {rnd}: no level kept p99 within 10 ms for both servers")
        continue
    ratio = b["sy"][0] / b["bare"][0]
    ratios.append(ratio)
    print(f"round {rnd}: best bare {b['bare'][0]:.0f} req/s at {b['bare'][1]} connections, best switchyard {b['sy'][0]:.0f} req/s at {b['sy'][1]}: {ratio:.2f}x")
if ratios:
    print(f"median capacity ratio switchyard/bare (p99 <= 10 ms): {statistics.median(ratios):.2f}x")
else:
    failed = True
sys.exit(1 if failed else 0)
PY
