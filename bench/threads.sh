#!/usr/bin/env bash
# Where a request's CPU goes: runs the ingress load (signed 1-KiB
# single-event batches, CONNS connections, SECS seconds) against the bare
# axum server and then against switchyard, and prints, per thread, the CPU
# time and the voluntary / involuntary context switches per request, read
# from /proc/<pid>/task/<tid>/{stat,status} before and after the load.
#
#   bench/threads.sh [seconds] [connections]
SECS=${1:-5}
CONNS=${2:-32}
source "$(dirname "$0")/lib.sh"

# tid comm voluntary involuntary cpu-ticks, one line per thread
snapshot() {
  for t in /proc/$1/task/*; do
    printf '%s %s %s %s\n' "$(basename "$t")" "$(tr ' ' _ < "$t/comm")" \
      "$(awk '/^voluntary_ctxt/ {v=$2} /^nonvoluntary_ctxt/ {n=$2} END {print v, n}' "$t/status")" \
      "$(awk '{print $14 + $15}' "$t/stat")"
  done | sort
}
measure() { # name pid port
  snapshot "$2" > "$WORK/before"
  load "$3" "$CONNS" "$SECS" > "$WORK/load.json"
  snapshot "$2" > "$WORK/after"
  python3 - "$1" "$WORK/load.json" "$WORK/before" "$WORK/after" "$(getconf CLK_TCK)" <<'PY'
import json, sys
name, load, before, after, hz = sys.argv[1], json.load(open(sys.argv[2])), sys.argv[3], sys.argv[4], int(sys.argv[5])
read = lambda f: {l.split()[0]: l.split()[1:] for l in open(f)}
b, a, req = read(before), read(after), load["requests"]
print(f"{name}: {load['rps']:.0f} req/s, p50 {load['p50_us']/1000:.2f} ms, p99 {load['p99_us']/1000:.2f} ms")
print(f"  {'thread':<18}{'CPU µs/req':>11}{'vol cs/req':>12}{'invol cs/req':>14}")
rows, total = {}, 0.0
for tid, (comm, v, n, cpu) in a.items():
    v0, n0, c0 = (b[tid][1:] if tid in b else ("0", "0", "0"))
    r = rows.setdefault(comm, [0.0, 0, 0])
    r[0] += (int(cpu) - int(c0)) * 1e6 / hz / req
    r[1] += int(v) - int(v0)
    r[2] += int(n) - int(n0)
for comm, (cpu, v, n) in sorted(rows.items(), key=lambda kv: -kv[1][0]):
    total += cpu
    if cpu >= 0.05 or v / req >= 0.001:
        print(f"  {comm:<18}{cpu:>11.2f}{v/req:>12.3f}{n/req:>14.3f}")
print(f"  {'all threads':<18}{total:>11.2f}")
PY
}

start_bare
measure "bare axum" $PID $BARE_PORT
stop $PID
start_switchyard
measure switchyard $PID $SY_PORT
stop $PID
