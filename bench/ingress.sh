#!/usr/bin/env bash
# Ingress benchmark: signed 1-KiB single-event batches against switchyard
# (durable ingest log, group commit) and against a bare axum server that only
# reads the body (examples/bare_server.rs), alternating in one run on the
# same machine, ROUNDS times. Prints every round and the median ratio.
#
#   bench/ingress.sh [seconds] [connections] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-6}
CONNS=${2:-32}
ROUNDS=${3:-6}
cargo build --release --bin switchyard --example loadgen --example bare_server >&2
BIN=target/release
WORK=$(mktemp -d -p "${BENCH_DIR:-$PWD/target}")
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

wait_port() { for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
peak_rss_kib() { awk '/VmHWM/ {print $2}' /proc/$1/status; }
load() { $BIN/examples/loadgen --url "http://127.0.0.1:$1/hooks/screenmeet" --key bench-key --connections "$CONNS" --seconds "$SECS"; }

# No rules: this measures the ingress (the evaluation loop still reads every
# event and marks it no_rule); bench/rules figures are in BENCHMARKS.md.
mkdir -p "$WORK/rules"
cat > "$WORK/config.yaml" <<YAML
listen: 127.0.0.1:18180
store: sqlite://journal.db
admin: { listen: null }
sources:
  screenmeet:
    path: /hooks/screenmeet
    verify: screenmeet
    keys: [ { label: current, secret: "\${BENCH_KEY}" } ]
YAML

results=()
for round in $(seq 1 "$ROUNDS"); do
  $BIN/examples/bare_server 127.0.0.1:18181 2>/dev/null & BARE=$!
  wait_port 18181
  bare=$(load 18181)
  bare_rss=$(peak_rss_kib $BARE)
  kill $BARE; wait $BARE 2>/dev/null || true

  rm -rf "$WORK"/journal.db*
  BENCH_KEY=bench-key $BIN/switchyard --config "$WORK/config.yaml" --log-level warn serve & SY=$!
  wait_port 18180
  sy=$(load 18180)
  sy_rss=$(peak_rss_kib $SY)
  kill -TERM $SY; wait $SY || true
  stored=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from events').fetchone()[0])" "$WORK/journal.db")
  results+=("$bare|$sy|$bare_rss|$sy_rss|$stored")
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
