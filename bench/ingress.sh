#!/usr/bin/env bash
# Ingress benchmark: signed 1-KiB single-event batches against switchyard
# (durable journal, group commit) and against a bare axum server that only
# reads the body, in one run on the same machine. Prints both and the ratio.
#
#   bench/ingress.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
CONNS=${2:-32}
cargo build --release --bin switchyard --example loadgen --example bare_server >&2
BIN=target/release
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

wait_port() { for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
peak_rss_kib() { awk '/VmHWM/ {print $2}' /proc/$1/status; }

$BIN/examples/bare_server 127.0.0.1:18181 2>/dev/null & BARE=$!
wait_port 18181
bare=$($BIN/examples/loadgen --url http://127.0.0.1:18181/hooks/screenmeet --key bench-key --connections "$CONNS" --seconds "$SECS")
bare_rss=$(peak_rss_kib $BARE)
kill $BARE

cat > "$WORK/config.yaml" <<YAML
listen: 127.0.0.1:18180
store: sqlite://$WORK/journal.db
admin: { listen: null }
sources:
  screenmeet:
    path: /hooks/screenmeet
    verify: screenmeet
    keys: [ { label: current, secret: "\${BENCH_KEY}" } ]
YAML
BENCH_KEY=bench-key $BIN/switchyard --config "$WORK/config.yaml" --log-level warn serve & SY=$!
wait_port 18180
sy=$($BIN/examples/loadgen --url http://127.0.0.1:18180/hooks/screenmeet --key bench-key --connections "$CONNS" --seconds "$SECS")
sy_rss=$(peak_rss_kib $SY)
stored=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from events').fetchone()[0])" "$WORK/journal.db")
kill -TERM $SY; wait $SY || true

python3 - "$bare" "$sy" "$bare_rss" "$sy_rss" "$stored" "$CONNS" "$SECS" <<'PY'
import json, sys
bare, sy = json.loads(sys.argv[1]), json.loads(sys.argv[2])
bare_rss, sy_rss, stored, conns, secs = map(int, sys.argv[3:8])
print(f"ingress bench: {conns} connections, {secs}s each, 1 KiB signed single-event batches")
print(f"{'server':<12}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-200':>9}{'peak RSS MiB':>14}")
for name, r, rss in (("bare axum", bare, bare_rss), ("switchyard", sy, sy_rss)):
    print(f"{name:<12}{r['rps']:>10.0f}{r['p50_us']/1000:>9.2f}{r['p99_us']/1000:>9.2f}{r['non_200']:>9}{rss/1024:>14.1f}")
print(f"ratio switchyard/bare: {sy['rps']/bare['rps']:.2f}x; events stored: {stored} of {sy['ok']} answered 200")
if stored != sy['ok']:
    sys.exit("every 200 must be a stored event")
PY
