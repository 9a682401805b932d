#!/usr/bin/env bash
# A/B of two (or more) smarthost binaries on the same load, interleaved, for judging one change:
# smtp-source -> relay -> smtp-sink on 127.0.0.1, fresh spool per run, warm-up first; prints per
# run the accept rate, the end-to-end rate (until queue/ is empty) and the relay's CPU per message
# (user+sys from /proc/PID/stat). The numbers quoted in commit messages and issue notes
# ("A/B, 3 interleaved runs of 20 000") come from this. Not part of make test or make bench.
#
#   Tests/Bench/ab.sh OLD_BINARY NEW_BINARY                      # 3 rounds, 20 000 x 1 KiB, 20 sessions
#   AB_MESSAGES=3000 AB_SIZE=102400 AB_SESSIONS=100 AB_ROUNDS=2 Tests/Bench/ab.sh A B
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,9p' "$0"; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-/usr/bin/python3}
MESSAGES=${AB_MESSAGES:-20000}
SIZE=${AB_SIZE:-1024}
SESSIONS=${AB_SESSIONS:-20}
ROUNDS=${AB_ROUNDS:-3}
command -v smtp-source >/dev/null || PATH=$PATH:/usr/sbin
WORK=$(mktemp -d /tmp/smarthost-ab.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

read -r SINK_PORT RELAY_PORT < <("$PY" "$HERE/benchutil.py" freeports 2)
smtp-sink -c -u nobody "127.0.0.1:$SINK_PORT" 1000 >/dev/null 2>&1 &
PIDS+=($!)

run() {   # run BINARY: one measured run on a fresh relay and spool
    local bin=$1 dir=$WORK/run pid u0 s0 u1 s1 t0 t1 t2
    rm -rf "$dir"; mkdir -p "$dir/spool"
    cat >"$dir/relay.yaml" <<YAML
hostname: ab.local
listen: ["127.0.0.1:$RELAY_PORT"]
spool: $dir/spool
limits: { max_message_size: 35MiB, max_recipients: 100, max_connections: 2000, idle_timeout: 5m }
default: { host: 127.0.0.1, port: $SINK_PORT, tls: none }
host: { use: default }
YAML
    "$bin" serve --config "$dir/relay.yaml" >"$dir/relay.log" 2>&1 &
    pid=$!
    "$PY" "$HERE/benchutil.py" waitport "$RELAY_PORT" 10 "$pid" || { echo "$bin did not start: $(tail -2 "$dir/relay.log")"; return 1; }
    smtp-source -s "$SESSIONS" -m 500 -l "$SIZE" -f a@ab.local -t b@ab.example "127.0.0.1:$RELAY_PORT"
    sleep 1
    read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    t0=$(date +%s.%N)
    smtp-source -s "$SESSIONS" -m "$MESSAGES" -l "$SIZE" -f a@ab.local -t b@ab.example "127.0.0.1:$RELAY_PORT"
    t1=$(date +%s.%N)
    for _ in $(seq 600); do [ -z "$(ls "$dir/spool/queue")" ] && break; sleep 0.1; done
    t2=$(date +%s.%N)
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    local hz; hz=$(getconf CLK_TCK)
    "$PY" -c "
n=$MESSAGES; hz=$hz
cpu=(($u1-$u0)+($s1-$s0))/hz
print('%-24s accept %5.0f/s  e2e %5.0f/s  CPU %.3f ms/msg (user %.3f, sys %.3f)' % ('$(basename "$bin")',
      n/($t1-$t0), n/($t2-$t0), cpu/n*1000, ($u1-$u0)/hz/n*1000, ($s1-$s0)/hz/n*1000))"
}

echo "A/B: $MESSAGES x $SIZE bytes, $SESSIONS sessions, $ROUNDS rounds, interleaved"
for round in $(seq "$ROUNDS"); do
    for bin in "$@"; do run "$bin"; done
done
