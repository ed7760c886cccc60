# Shared by the bench scripts (sourced, not run): builds the release
# binaries, makes a scratch directory with a switchyard config (no rules,
# the SQLite store, one ScreenMeet source keyed "bench-key"), and starts the
# two servers the benches compare.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --bin switchyard --example loadgen --example bare_server --example naive_server >&2
BIN=$PWD/target/release
WORK=$(mktemp -d -p "${BENCH_DIR:-$PWD/target}")
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
BARE_PORT=18181
SY_PORT=18180
NAIVE_PORT=18182
# No rules: this measures the ingress (the evaluation loop still reads every
# event and marks it no_rule).
mkdir -p "$WORK/rules"
cat > "$WORK/config.yaml" <<YAML
listen: 127.0.0.1:$SY_PORT
store: sqlite://journal.db
admin: { listen: null }
sources:
  screenmeet:
    path: /hooks/screenmeet
    verify: screenmeet
    keys: [ { label: current, secret: "\${BENCH_KEY}" } ]
YAML

wait_port() { for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }
peak_rss_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
# load PORT CONNECTIONS SECONDS: one JSON line (requests/s, p50/p99 in µs).
# An optional fourth argument tags every event id, so that runs against the
# same journal send new events instead of duplicates.
load() { "$BIN/examples/loadgen" --url "http://127.0.0.1:$1/hooks/screenmeet" --key bench-key --connections "$2" --seconds "$3" ${4:+--tag "$4"}; }
# start_bare / start_switchyard: start the server, wait for its port, set PID.
start_bare() { "$BIN/examples/bare_server" "127.0.0.1:$BARE_PORT" 2>/dev/null & PID=$!; wait_port $BARE_PORT; }
# The naive durable receiver (examples/naive_server.rs), on a fresh database.
start_naive() {
  rm -rf "$WORK"/naive.db*
  "$BIN/examples/naive_server" "127.0.0.1:$NAIVE_PORT" "$WORK/naive.db" bench-key 2>/dev/null & PID=$!
  wait_port $NAIVE_PORT
}
start_switchyard() {
  rm -rf "$WORK"/journal.db*
  BENCH_KEY=bench-key "$BIN/switchyard" --config "$WORK/config.yaml" --log-level warn serve & PID=$!
  wait_port $SY_PORT
}
stop() { kill -TERM "$1"; wait "$1" 2>/dev/null || true; }
# stored_events [DB]: events in a journal (default: the last switchyard
# run's), read after its server stopped.
stored_events() { python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from events').fetchone()[0])" "${1:-$WORK/journal.db}"; }
