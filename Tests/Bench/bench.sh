#!/usr/bin/env bash
# make bench — smarthost vs Debian's Postfix, same machine, same run, on loopback only:
# accept rate, end-to-end rate and CPU per message (the matrix), per-message latency, and resident
# memory (idle, under load, holding idle connections); then the issue's targets, MET or NOT MET.
#
#   Tests/Bench/bench.sh                 everything (what `make bench` runs, after `make release`)
#   BENCH_QUICK=1 Tests/Bench/bench.sh   smoke run with small counts
#
# Matrix: for every relay ("sink" = smtp-source straight into smtp-sink, the tool pair's own limit;
# "postfix" = a private Postfix instance set up here; "smarthost" = $SMARTHOST_BIN serve) and every
# cell of size x sessions it runs
#
#   smtp-source -s SESSIONS -m MESSAGES -l SIZE -f from@bench.local -t to@bench.example 127.0.0.1:PORT
#
# and reports
#   accept  = MESSAGES / wall seconds until smtp-source exits (it waits for every 250);
#   e2e     = MESSAGES / wall seconds from the same start until the relay's upstream (an
#             smtp-sink on loopback, which both relays forward to) has received them all.
# Each cell starts with the relay's queue empty (the previous cell's mail has reached the sink).
#
# Latency (latency.py): mail from *@latency.bench goes, in both relays, to a second upstream, a
# small Python sink that notes when each message arrived; N senders (smtplib, new connection per
# message) each send one message, wait until it has arrived, send the next. Reported: submit ->
# 250 and submit -> arrival at the upstream, p50/p99. The "sink" column sends straight into the
# latency sink (the tools' own floor).
#
# Memory (VmRSS summed over the relay's processes, and PSS): idle after the warm-up, idle before
# the memory phase, the peak while 100 sessions submit, and holding N idle client connections
# (idleconns.py: connect, read the banner, sit).
#
# Environment:
#   SMARTHOST_BIN          relay binary (default: <repo>/.build/release/smarthost)
#   BENCH_QUICK=1          small counts (smoke run)
#   BENCH_MESSAGES         messages per matrix cell, all sizes (default 10000 for sizes <= 10 KiB,
#                          BENCH_MESSAGES_LARGE=1000 above; quick: 400 / 100)
#   BENCH_MESSAGES_LARGE   messages per matrix cell for sizes > 10 KiB
#   BENCH_SIZES            payload sizes in bytes (default "1024 102400")
#   BENCH_SESSIONS         parallel sessions (default "1 20 100")
#   BENCH_RELAYS           which columns to measure (default "sink postfix smarthost")
#   BENCH_WARMUP           warm-up messages per relay, not reported (default 200; quick: 50)
#   BENCH_RUN_TIMEOUT      seconds allowed for one smtp-source run (default 900)
#   BENCH_DRAIN_TIMEOUT    seconds allowed for the sink to receive one cell's mail (default 900)
#   BENCH_STALL            give up waiting for the sink after this many seconds without progress (20)
#   BENCH_REPEAT           runs per matrix cell / latency level and relay, interleaved; the tables
#                          show the median (default 3; quick: 1)
#   BENCH_REUSE=1          smtp-source -d: send all of a session's messages over one connection
#                          (default: a new connection per message, as applications do)
#   BENCH_MATRIX=0         skip the throughput matrix
#   BENCH_LATENCY=0        skip the latency phase
#   BENCH_LAT_SESSIONS     concurrent latency senders (default "1 20")
#   BENCH_LAT_MESSAGES     messages per latency run (default 1000; quick: 100), 1 KiB each
#   BENCH_MEMORY=0         skip the memory phase
#   BENCH_MEM_MESSAGES     messages of the 100-session load, per size (default 4000 for <= 10 KiB,
#                          1000 above; quick: 400 / 100)
#   BENCH_MEM_CONNS        idle connections held (default "100 10000"; quick: "100 2000")
#   BENCH_PF_CONNS         most idle connections held against Postfix (default 100, its
#                          default_process_limit: one smtpd process per connection)
#   BENCH_TMPDIR           where the spools go (default: $TMPDIR or /tmp) — its file system is measured
#   BENCH_OUT              also write the table to this file
#   BENCH_KEEP=1           keep the work directory (logs, spools) for inspection
#   BENCH_PROBE=0          skip the durability probe (strace counts each relay's fsync calls
#                          for a few messages after the measurements)
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/../.." && pwd)
SMARTHOST_BIN=${SMARTHOST_BIN:-$REPO/.build/release/smarthost}
PY=/usr/bin/python3
util() { "$PY" "$BENCH_DIR/benchutil.py" "$@"; }
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
export BENCH_DIR

QUICK=${BENCH_QUICK:-0}
SIZES=${BENCH_SIZES:-"1024 102400"}
SESSIONS=${BENCH_SESSIONS:-"1 20 100"}
RELAYS=${BENCH_RELAYS:-"sink postfix smarthost"}
DO_MATRIX=${BENCH_MATRIX:-1} DO_LATENCY=${BENCH_LATENCY:-1} DO_MEMORY=${BENCH_MEMORY:-1}
LAT_SESSIONS=${BENCH_LAT_SESSIONS:-"1 20"}
PF_CONNS=${BENCH_PF_CONNS:-100}
MEM_SESSIONS=100
if [ "$QUICK" = 1 ]; then
    M_SMALL=${BENCH_MESSAGES:-400}; M_LARGE=${BENCH_MESSAGES_LARGE:-${BENCH_MESSAGES:-100}}
    WARMUP=${BENCH_WARMUP:-50}
    REPEAT=${BENCH_REPEAT:-1}
    LAT_MESSAGES=${BENCH_LAT_MESSAGES:-100}
    MEM_SMALL=${BENCH_MEM_MESSAGES:-400}; MEM_LARGE=${BENCH_MEM_MESSAGES:-100}
    MEM_CONNS=${BENCH_MEM_CONNS:-"100 2000"}
else
    # The issue asks for 20 000 messages per 1 KiB cell; 10 000 (and 1 000 at 100 KiB) with three
    # runs per cell keeps the whole default run at about 8-10 minutes on a 2-core machine.
    M_SMALL=${BENCH_MESSAGES:-10000}; M_LARGE=${BENCH_MESSAGES_LARGE:-${BENCH_MESSAGES:-1000}}
    WARMUP=${BENCH_WARMUP:-200}
    REPEAT=${BENCH_REPEAT:-3}
    LAT_MESSAGES=${BENCH_LAT_MESSAGES:-1000}
    MEM_SMALL=${BENCH_MEM_MESSAGES:-4000}; MEM_LARGE=${BENCH_MEM_MESSAGES:-1000}
    MEM_CONNS=${BENCH_MEM_CONNS:-"100 10000"}
fi
M_NOTE=""
[ "$M_SMALL" -lt 20000 ] && M_NOTE=" (the issue asks for 20 000 at 1 KiB: BENCH_MESSAGES=20000 BENCH_MESSAGES_LARGE=1000, ~14 min)"
RUN_TIMEOUT=${BENCH_RUN_TIMEOUT:-900}
DRAIN_TIMEOUT=${BENCH_DRAIN_TIMEOUT:-900}
STALL=${BENCH_STALL:-20}
START_TIMEOUT=30
SOURCE_OPTS=()
[ "${BENCH_REUSE:-0}" = 1 ] && SOURCE_OPTS+=(-d)
FROM=from@bench.local
TO=to@bench.example

messages_for() { if [ "$1" -le 10240 ]; then echo "$M_SMALL"; else echo "$M_LARGE"; fi; }
mem_messages_for() { if [ "$1" -le 10240 ]; then echo "$MEM_SMALL"; else echo "$MEM_LARGE"; fi; }

# ---------------------------------------------------------------- dependencies (idempotent)
install_deps() {
    local missing=()
    dpkg -s postfix >/dev/null 2>&1 || missing+=(postfix)
    [ -x "$PY" ] || missing+=(python3)
    command -v timeout >/dev/null || missing+=(coreutils)
    [ "${BENCH_PROBE:-1}" = 1 ] && ! command -v strace >/dev/null && missing+=(strace)
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing: ${missing[*]}"
    local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    # A fresh install must not configure and start a system Postfix on port 25 for us.
    if [[ " ${missing[*]} " == *" postfix "* ]] && command -v debconf-set-selections >/dev/null; then
        echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}
install_deps
[ "$(id -u)" = 0 ] || { echo "bench.sh: run as root (it sets up a private Postfix instance)" >&2; exit 1; }
# Holding 10 000 idle connections needs as many descriptors in the relay (which inherits this
# limit) and in idleconns.py: raise the soft limit to the hard one.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
for t in smtp-source smtp-sink postfix postconf; do
    command -v "$t" >/dev/null || { echo "bench.sh: $t not found (package postfix)" >&2; exit 1; }
done

# ---------------------------------------------------------------- work dir, cleanup
# shellcheck source=postfix-instance.sh
source "$BENCH_DIR/postfix-instance.sh"
W=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/smarthost-bench.XXXXXX")
chmod 755 "$W"                     # the postfix user must reach its queue under it
RESULTS=$W/results.tsv META=$W/meta
: >"$RESULTS"; : >"$META"
PIDS=()                            # background processes we started (sinks, smarthost)
PF_DIRS=()                         # Postfix instances we started

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$CHILD_PID" ]; then kill -TERM "$CHILD_PID" 2>/dev/null || true; wait "$CHILD_PID" 2>/dev/null || true; fi
    for d in ${PF_DIRS[@]+"${PF_DIRS[@]}"}; do pf_stop "$d" || true; done
    for p in ${PIDS[@]+"${PIDS[@]}"}; do kill -TERM "$p" 2>/dev/null || true; done
    for p in ${PIDS[@]+"${PIDS[@]}"}; do
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $W"; else rm -rf "$W"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "${6:-}" >>"$RESULTS"; }
note() { printf 'note\t%s\t%s\n' "$1" "$2" >>"$RESULTS"; }
meta() { printf '%s=%s\n' "$1" "$2" >>"$META"; }
now() { date +%s.%N; }
oneline() { tr '\r\n\t' '   ' | sed 's/  */ /g; s/^ //; s/ $//' | cut -c1-300; }

# start_sink NAME [COUNT] -> sets SINK_PORT, SINK_OUT; with COUNT=1 (default) the sink counts
# received messages on its stdout (-c); the direct tool-limit sink does without (it costs the sink).
start_sink() {
    local name=$1 count=${2:-1} opts=()
    [ "$count" = 1 ] && opts+=(-c)
    SINK_OUT=$W/$name-sink.out
    SINK_PORT=$(util freeports 1)
    smtp-sink -u nobody ${opts[@]+"${opts[@]}"} -m 1024 "127.0.0.1:$SINK_PORT" 1024 >"$SINK_OUT" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    util waitport "$SINK_PORT" "$START_TIMEOUT" "$pid" || {
        echo "smtp-sink did not start on 127.0.0.1:$SINK_PORT: $(oneline <"$SINK_OUT")" >&2; return 1; }
}

stop_pid() {    # stop_pid PID SECS: SIGTERM, wait, SIGKILL
    local pid=$1 secs=${2:-30}
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 1 $((secs * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# run_bounded OUT CMD...: CMD under timeout, in the background so that a signal to this script
# is handled at once (bash defers traps while a foreground child runs); cleanup() ends it.
CHILD_PID=""
run_bg() {
    local rc=0
    "$@" &
    CHILD_PID=$!
    wait "$CHILD_PID" || rc=$?
    CHILD_PID=""
    return "$rc"
}
run_bounded() { local out=$1; shift; run_bg timeout "$RUN_TIMEOUT" "$@" >"$out" 2>&1; }

# source_cmd PORT SIZE SESSIONS N -> the load generator command line
source_cmd() {
    echo smtp-source ${SOURCE_OPTS[@]+"${SOURCE_OPTS[@]}"} -s "$3" -m "$4" -l "$2" -f "$FROM" -t "$TO" "127.0.0.1:$1"
}

# Every relay that starts is described by these, indexed by its name:
declare -A R_PORT R_SINK R_E2E R_PID R_E2E_FAILED R_CPUPID
READY=()                           # relays started and warmed up, in BENCH_RELAYS order

# run_cell RELAY SIZE SESSIONS N: one smtp-source run; records "accept" (and "e2e").
run_cell() {
    local relay=$1 size=$2 sess=$3 n=$4
    local port=${R_PORT[$relay]} sinkout=${R_SINK[$relay]} e2e=${R_E2E[$relay]} livepid=${R_PID[$relay]:-}
    local cpupid=${R_CPUPID[$relay]:-} cpu0="" c0 t0 t1 t2 rc out=$W/$relay-source.out
    if [ -n "$livepid" ] && ! kill -0 "$livepid" 2>/dev/null; then
        record "$relay" "$size" "$sess" accept fail "relay process is gone"
        return 1
    fi
    c0=$(util sinkcount "$sinkout")
    [ -n "$cpupid" ] && cpu0=$(util cputime "$cpupid")
    log "$relay: $(source_cmd "$port" "$size" "$sess" "$n")"
    t0=$(now)
    # shellcheck disable=SC2046
    run_bounded "$out" $(source_cmd "$port" "$size" "$sess" "$n") && rc=0 || rc=$?
    t1=$(now)
    if [ "$rc" -ne 0 ]; then
        local why
        if [ "$rc" = 124 ]; then why="smtp-source timed out after ${RUN_TIMEOUT}s"
        else why="smtp-source exit $rc: $(tail -3 "$out" | oneline)"; fi
        if [ -n "$livepid" ] && ! kill -0 "$livepid" 2>/dev/null; then why="$why; relay process died"; fi
        record "$relay" "$size" "$sess" accept fail "$why"
        log "$relay: FAILED: $why"
        # let whatever it did accept reach its sink before the next relay is measured
        if [ "$e2e" = 1 ] && [ -z "${R_E2E_FAILED[$relay]}" ]; then
            run_bg "$PY" "$BENCH_DIR/benchutil.py" waitsink "$sinkout" $((c0 + n)) "$DRAIN_TIMEOUT" 5 >/dev/null 2>&1 || true
        fi
        return 1
    fi
    local rate; rate=$(util rate "$n" "$t0" "$t1")
    record "$relay" "$size" "$sess" accept "$rate"
    log "$relay: accept $rate msg/s"
    if [ "$e2e" = 1 ]; then
        if [ -n "${R_E2E_FAILED[$relay]}" ]; then
            record "$relay" "$size" "$sess" e2e "n/a" "${R_E2E_FAILED[$relay]}"
        elif run_bg "$PY" "$BENCH_DIR/benchutil.py" waitsink "$sinkout" $((c0 + n)) "$DRAIN_TIMEOUT" "$STALL" >"$W/t2" 2>/dev/null; then
            t2=$(cat "$W/t2")
            rate=$(util rate "$n" "$t0" "$t2")
            record "$relay" "$size" "$sess" e2e "$rate"
            local cpu=""
            if [ -n "$cpupid" ]; then
                cpu=$(util cpupermsg "$n" "$cpu0" "$(util cputime "$cpupid")")
                record "$relay" "$size" "$sess" cpu "$cpu"
            fi
            log "$relay: e2e $rate msg/s${cpu:+, CPU $cpu us/msg}"
        else
            local got=$(( $(util sinkcount "$sinkout") - c0 ))
            record "$relay" "$size" "$sess" e2e stalled "sink got $got/$n, no progress for ${STALL}s"
            log "$relay: e2e stalled ($got/$n at the sink)"
        fi
    fi
    return 0
}

# ready RELAY PORT SINK_OUT E2E [LIVEPID [CPUPID]]: warm it up (spawn processes, fill caches; not reported)
# and add it to READY. A relay that does not deliver the warm-up keeps its accept column, e2e n/a.
# On failure the reason is in READY_ERROR.
READY_ERROR=""
ready() {
    local relay=$1 port=$2 sinkout=$3 e2e=$4 livepid=${5:-} cpupid=${6:-${5:-}} c0 rc=0
    R_PORT[$relay]=$port R_SINK[$relay]=$sinkout R_E2E[$relay]=$e2e R_PID[$relay]=$livepid R_E2E_FAILED[$relay]=""
    R_CPUPID[$relay]=$cpupid
    if [ "$WARMUP" -gt 0 ]; then
        c0=$(util sinkcount "$sinkout")
        log "$relay: warm-up, $WARMUP messages"
        run_bounded "$W/$relay-warmup.out" smtp-source -s 20 -m "$WARMUP" -l 1024 -f "$FROM" -t "$TO" \
            "127.0.0.1:$port" || rc=$?
        if [ "$rc" -ne 0 ]; then
            READY_ERROR="warm-up: smtp-source exit $rc: $(tail -3 "$W/$relay-warmup.out" | oneline)"
            if [ -n "$livepid" ] && ! kill -0 "$livepid" 2>/dev/null; then READY_ERROR="$READY_ERROR; relay process died"; fi
            return 1
        fi
        if [ "$e2e" = 1 ] && ! run_bg "$PY" "$BENCH_DIR/benchutil.py" waitsink "$sinkout" $((c0 + WARMUP)) "$DRAIN_TIMEOUT" "$STALL" >/dev/null 2>&1; then
            R_E2E_FAILED[$relay]="relay did not deliver the warm-up to the sink ($(( $(util sinkcount "$sinkout") - c0 ))/$WARMUP)"
            log "$relay: ${R_E2E_FAILED[$relay]}"
        fi
    fi
    if [ "$DO_MEMORY" = 1 ] && [ -n "$cpupid" ]; then
        sleep 1
        record_rss "$relay" warm "$cpupid"
    fi
    READY+=("$relay")
}

# record_rss RELAY PHASE ROOT [COMM [PREFIX]]: "RELAY mem PHASE rss|pss|procs KiB"
record_rss() {
    local r p n
    read -r r p n < <(util rss "$3" ${4:+"$4"})
    record "$1" mem "$2" "${5:-}rss" "$r"; record "$1" mem "$2" "${5:-}pss" "$p"; record "$1" mem "$2" "${5:-}procs" "$n"
}

# probe RELAY: count the relay's fsync/fdatasync calls per message under strace -f (after the
# measurements: strace slows everything down). Evidence for "the same durability".
PROBE_N=20
probe() {
    local relay=$1
    local root=${R_CPUPID[$relay]:-} sinkout=${R_SINK[$relay]} port=${R_PORT[$relay]}
    local trace=$W/$relay-strace.out spid c0 args=() p rc=0
    [ -n "$root" ] || return 0
    if ! command -v strace >/dev/null; then printf 'probe\t%s\t%s\n' "$relay" "n/a (no strace)" >>"$RESULTS"; return 0; fi
    for p in $(util tree "$root"); do args+=(-p "$p"); done
    strace -f -qq -e trace=fsync,fdatasync,sync_file_range,syncfs,msync -o "$trace" "${args[@]}" 2>"$W/$relay-strace.err" &
    spid=$!
    PIDS+=("$spid")
    sleep 1
    if ! kill -0 "$spid" 2>/dev/null; then
        printf 'probe\t%s\tn/a (strace: %s)\n' "$relay" "$(oneline <"$W/$relay-strace.err")" >>"$RESULTS"; return 0
    fi
    c0=$(util sinkcount "$sinkout")
    log "$relay: durability probe, $PROBE_N messages under strace"
    run_bounded "$W/$relay-probe.out" smtp-source -s 1 -m "$PROBE_N" -l 1024 -f "$FROM" -t "$TO" "127.0.0.1:$port" || rc=$?
    if [ "${R_E2E[$relay]}" = 1 ] && [ -z "${R_E2E_FAILED[$relay]}" ]; then
        run_bg "$PY" "$BENCH_DIR/benchutil.py" waitsink "$sinkout" $((c0 + PROBE_N)) 60 5 >/dev/null 2>&1 || true
    fi
    sleep 0.5
    stop_pid "$spid" 10
    if [ "$rc" -ne 0 ]; then
        printf 'probe\t%s\tn/a (smtp-source exit %s)\n' "$relay" "$rc" >>"$RESULTS"
    else
        printf 'probe\t%s\t%s\n' "$relay" "$(util synccount "$trace" "$PROBE_N")" >>"$RESULTS"
    fi
}

# ---------------------------------------------------------------- the relays
# Each start_X starts relay X with its own counting smtp-sink as upstream and calls ready,
# or notes why it could not (the column then shows n/a and the reason under the table).
start_sink_relay() {               # the tool pair's own limit: smtp-source straight into smtp-sink
    start_sink direct 0 || { note sink "smtp-sink failed to start"; return 0; }
    ready sink "$SINK_PORT" "$SINK_OUT" 0 || note sink "$READY_ERROR"
}

start_postfix() {
    start_sink postfix || { note postfix "smtp-sink failed to start"; return 0; }
    local dir=$W/postfix port
    port=$(util freeports 1)
    if ! pf_setup "$dir" "$port" "$SINK_PORT" "$LAT_PORT" 2>"$W/postfix-setup.err"; then
        note postfix "setup failed: $(tail -3 "$W/postfix-setup.err" | oneline)"; return 0
    fi
    PF_DIRS+=("$dir")
    if ! pf_start "$dir" 2>"$W/postfix-start.err"; then
        note postfix "start failed: $(tail -3 "$W/postfix-start.err" | oneline)"; return 0
    fi
    log "postfix: private instance on 127.0.0.1:$port, relayhost [127.0.0.1]:$SINK_PORT, queue $dir/spool"
    # CPU is counted over master and its children (smtpd, cleanup, qmgr, smtp, postlogd, ...)
    ready postfix "$port" "$SINK_OUT" 1 "" "$(pf_master_pid "$dir")" || note postfix "$READY_ERROR"
}

start_smarthost() {
    if [ ! -x "$SMARTHOST_BIN" ]; then
        note smarthost "relay failed: no executable at $SMARTHOST_BIN (run make release)"; return 0
    fi
    start_sink smarthost || { note smarthost "smtp-sink failed to start"; return 0; }
    local dir=$W/smarthost port pid rc=0
    port=$(util freeports 1)
    mkdir -p "$dir/spool"
    cat >"$dir/smarthost.yaml" <<EOF
hostname: bench.local
listen: ["127.0.0.1:$port"]
spool: $dir/spool
limits: { max_message_size: 35MiB, max_recipients: 100, max_connections: $SH_MAX_CONNECTIONS, idle_timeout: 5m }
default: { host: 127.0.0.1, port: $SINK_PORT, tls: none }
host: { use: default }
EOF
    if [ -n "$LAT_PORT" ]; then       # the latency phase's mail goes to the latency sink
        cat >>"$dir/smarthost.yaml" <<EOF
orgs:
  latency: { use: custom, senders: ["*@latency.bench"], host: 127.0.0.1, port: $LAT_PORT, tls: none }
EOF
    fi
    "$SMARTHOST_BIN" serve --config "$dir/smarthost.yaml" >"$dir/smarthost.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    util waitport "$port" "$START_TIMEOUT" "$pid" || rc=$?
    if [ "$rc" -ne 0 ]; then
        local why
        if [ "$rc" = 2 ]; then
            wait "$pid" 2>/dev/null && why="exited with status 0" || why="exited with status $?"
        else why="not listening on 127.0.0.1:$port after ${START_TIMEOUT}s"; fi
        local last; last=$(grep -v '^[[:space:]]*$' "$dir/smarthost.log" | tail -2 | oneline || true)
        note smarthost "relay failed: $why${last:+: $last}"
        stop_pid "$pid" 5
        return 0
    fi
    log "smarthost: pid $pid on 127.0.0.1:$port, upstream 127.0.0.1:$SINK_PORT, spool $dir/spool"
    if ! ready smarthost "$port" "$SINK_OUT" 1 "$pid"; then
        note smarthost "relay failed: $READY_ERROR"
        stop_pid "$pid" 30
    fi
}

# ---------------------------------------------------------------- machine facts
collect_meta() {
    meta date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    meta host "$(hostname 2>/dev/null || echo '?')"
    meta nproc "$(nproc)"
    meta cpu "$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')"
    meta mem "$(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
    meta kernel "$(uname -sr)"
    meta os "$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-?}")"
    meta tmpdir "$W"
    meta filesystem "$(findmnt -no FSTYPE,SOURCE,OPTIONS -T "$W" 2>/dev/null | head -1 || df -PT "$W" | awk 'NR==2 { print $2, $1 }')"
    meta postfix "$(postconf -d -h mail_version 2>/dev/null) (Debian package $(dpkg-query -W -f='${Version}' postfix 2>/dev/null)), private instance, chroot off, queue fsync as shipped"
    if [ -x "$SMARTHOST_BIN" ]; then
        meta smarthost "$SMARTHOST_BIN ($(stat -c '%y' "$SMARTHOST_BIN" | cut -d. -f1))"
    else
        meta smarthost "$SMARTHOST_BIN (missing)"
    fi
    local head; head=$(git -C "$REPO" log -1 --format='%h %s' 2>/dev/null | cut -c1-72 || echo '?')
    if [ "$SMARTHOST_BIN" = "$REPO/.build/release/smarthost" ]; then
        meta smarthost_commit "$head"
    else                           # a binary from elsewhere: the checkout says nothing about it
        meta smarthost_commit "n/a (SMARTHOST_BIN from outside this checkout; bench scripts at $head)"
    fi
    meta command "$(source_cmd PORT SIZE SESSIONS MESSAGES)  [messages: $M_SMALL for <= 10 KiB, $M_LARGE above$M_NOTE; warm-up $WARMUP; median of $REPEAT]"
    [ "$DO_LATENCY" = 1 ] && meta latency "latency.py send --senders N --messages $LAT_MESSAGES (1 KiB, new connection per message, next message once the previous one has arrived; median of $REPEAT runs)"
    [ "$DO_MEMORY" = 1 ] && meta memory "load: smtp-source -s $MEM_SESSIONS -m $MEM_SMALL (<= 10 KiB) / $MEM_LARGE, sampled every 0.2 s; idle connections: idleconns.py N (postfix at most $PF_CONNS); nofile $NOFILE"
    true
}

# ---------------------------------------------------------------- latency phase
# start_latency_sink: the latency sink (latency.py sink) that both relays send *@latency.bench
# mail to; sets LAT_PORT (empty when it cannot start: the latency table is then n/a).
LAT_PORT=""
start_latency_sink() {
    local pid
    "$PY" "$BENCH_DIR/latency.py" sink --port-file "$W/lat.port" --events "$W/lat.events" \
        --notify "$W/lat.sock" 2>"$W/lat-sink.err" &
    pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 100); do
        [ -s "$W/lat.port" ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -s "$W/lat.port" ]; then
        LAT_PORT=$(cat "$W/lat.port")
        log "latency sink on 127.0.0.1:$LAT_PORT"
    else
        note latency "latency sink did not start: $(tail -3 "$W/lat-sink.err" | oneline)"
    fi
}

# run_latency RELAY N: one latency.py send run with N senders; records "RELAY lat N METRIC ms".
run_latency() {
    local relay=$1 n=$2 port rc=0 line out=$W/$relay-lat-$2.out livepid=${R_PID[$relay]:-} kv
    if [ "$relay" = sink ]; then port=$LAT_PORT; else port=${R_PORT[$relay]}; fi
    if [ -n "$livepid" ] && ! kill -0 "$livepid" 2>/dev/null; then
        record "$relay" lat "$n" e2e_p99 fail "relay process is gone"; return 1
    fi
    log "$relay: latency, $n senders, $LAT_MESSAGES messages"
    run_bounded "$out" "$PY" "$BENCH_DIR/latency.py" send --relay-port "$port" --notify "$W/lat.sock" \
        --senders "$n" --messages "$LAT_MESSAGES" --warmup $((n * 2 > 20 ? n * 2 : 20)) || rc=$?
    line=$(grep '^n=' "$out" | tail -1 || true)
    if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
        local why=${line:-$(tail -3 "$out" | oneline)}
        [ "$rc" = 124 ] && why="timed out after ${RUN_TIMEOUT}s; $why"
        for kv in ack_p50 ack_p99 e2e_p50 e2e_p99; do record "$relay" lat "$n" "$kv" fail "$why"; done
        log "$relay: latency FAILED: $why"
        return 1
    fi
    for kv in $line; do
        case ${kv%%=*} in
            ack_p50|ack_p99|e2e_p50|e2e_p99|e2e_max|n|up_conns|up_peak) record "$relay" lat "$n" "${kv%%=*}" "${kv#*=}" ;;
        esac
    done
    log "$relay: $line"
}

# ---------------------------------------------------------------- memory phase
# mem_phase RELAY: resident memory of the relay's processes: idle, the peak while MEM_SESSIONS
# sessions submit (each size), and holding N idle connections (each of MEM_CONNS).
mem_phase() {
    local relay=$1 root=${R_CPUPID[$1]:-} port=${R_PORT[$1]} sinkout=${R_SINK[$1]}
    local size n c0 spid wpid rc conns c hpid ready=$W/idle.ready line ok why r p k
    [ -n "$root" ] || return 0
    if ! kill -0 "$root" 2>/dev/null; then record "$relay" mem idle rss fail "relay process is gone"; return 1; fi
    sleep 2
    record_rss "$relay" idle "$root"
    for size in $SIZES; do
        n=$(mem_messages_for "$size")
        c0=$(util sinkcount "$sinkout")
        log "$relay: memory under load: $(source_cmd "$port" "$size" "$MEM_SESSIONS" "$n")"
        # shellcheck disable=SC2046
        timeout "$RUN_TIMEOUT" $(source_cmd "$port" "$size" "$MEM_SESSIONS" "$n") >"$W/$relay-memload.out" 2>&1 &
        spid=$!
        util rsswatch "$root" "$spid" 0.2 >"$W/$relay-memload.peak" &
        wpid=$!
        rc=0; CHILD_PID=$spid; wait "$spid" || rc=$?; CHILD_PID=""
        wait "$wpid" || true
        read -r r p k _ <"$W/$relay-memload.peak" || true
        if [ "$rc" -ne 0 ]; then
            record "$relay" mem "load_$size" rss fail "smtp-source exit $rc: $(tail -2 "$W/$relay-memload.out" | oneline)"
        else
            record "$relay" mem "load_$size" rss "$r"; record "$relay" mem "load_$size" pss "$p"
            record "$relay" mem "load_$size" procs "$k"
        fi
        log "$relay: peak RSS ${r:-?} KiB, PSS ${p:-?} KiB, ${k:-?} processes"
        if [ "${R_E2E[$relay]}" = 1 ] && [ -z "${R_E2E_FAILED[$relay]}" ]; then
            run_bg "$PY" "$BENCH_DIR/benchutil.py" waitsink "$sinkout" $((c0 + n)) "$DRAIN_TIMEOUT" "$STALL" >/dev/null 2>&1 || true
        fi
    done
    for conns in $MEM_CONNS; do
        c=$conns
        if [ "$relay" = postfix ] && [ "$c" -gt "$PF_CONNS" ]; then
            record "$relay" mem "conns_$conns" rss "n/a" "process per connection: $conns idle connections would need $conns smtpd processes (limit $PF_CONNS)"
            continue
        fi
        if [ "$c" -gt $((NOFILE - 200)) ]; then
            c=$((NOFILE - 200))
            note "memory" "idle connections capped at $c (open-file limit $NOFILE)"
        fi
        sleep 1
        record_rss "$relay" "conns_$conns" "$root" "" base_
        rm -f "$ready"
        log "$relay: holding $c idle connections"
        "$PY" "$BENCH_DIR/idleconns.py" "$port" "$c" "$ready" 900 >"$W/$relay-idle.out" 2>&1 &
        hpid=$!
        PIDS+=("$hpid")
        for _ in $(seq 1 2000); do
            [ -s "$ready" ] && break
            kill -0 "$hpid" 2>/dev/null || break
            sleep 0.1
        done
        line=$(cat "$ready" 2>/dev/null || echo "fail=? why=idleconns.py: $(tail -2 "$W/$relay-idle.out" | oneline)")
        sleep 1
        record_rss "$relay" "conns_$conns" "$root"
        [ "$relay" = postfix ] && record_rss "$relay" "conns_$conns" "$root" smtpd smtpd_
        ok=$(sed -n 's/.*ok=\([0-9]*\).*/\1/p' <<<"$line")
        record "$relay" mem "conns_$conns" ok "${ok:-0}"
        why=$(sed -n 's/.*why=//p' <<<"$line" | tr _ ' ')
        [ "${ok:-0}" -lt "$c" ] && record "$relay" mem "conns_$conns" short "$((c - ${ok:-0}))" "${why:-?}"
        log "$relay: $line"
        stop_pid "$hpid" 10
        sleep 2
    done
    record_rss "$relay" after "$root"
}

# smarthost's max_connections: room for the most idle connections the memory phase holds
SH_MAX_CONNECTIONS=1000
for c in $MEM_CONNS; do [ $((c + 1000)) -gt "$SH_MAX_CONNECTIONS" ] && SH_MAX_CONNECTIONS=$((c + 1000)); done

collect_meta
meta load "start $(cut -d' ' -f1-3 /proc/loadavg)"
log "work dir $W; relays: $RELAYS; sizes: $SIZES; sessions: $SESSIONS; repeat: $REPEAT"
if [ "$DO_MATRIX" = 1 ]; then
    for size in $SIZES; do
        for sess in $SESSIONS; do record meta "$size" "$sess" messages "$(messages_for "$size")"; done
    done
fi
[ "$DO_LATENCY" = 1 ] && start_latency_sink
# Start every relay first (each with its own counting sink), then measure cell by cell with the
# relays interleaved, so that load from elsewhere on the machine hits the columns alike.
for relay in $RELAYS; do
    case $relay in
        sink) start_sink_relay ;;
        postfix) start_postfix ;;
        smarthost) start_smarthost ;;
        *) echo "bench.sh: unknown relay '$relay' in BENCH_RELAYS" >&2; exit 2 ;;
    esac
done
if [ "$DO_MATRIX" = 1 ]; then
    for size in $SIZES; do
        for sess in $SESSIONS; do
            for _ in $(seq 1 "$REPEAT"); do
                for relay in ${READY[@]+"${READY[@]}"}; do
                    run_cell "$relay" "$size" "$sess" "$(messages_for "$size")" || true
                done
            done
        done
    done
fi
if [ "$DO_LATENCY" = 1 ] && [ -n "$LAT_PORT" ]; then
    for n in $LAT_SESSIONS; do
        record meta lat "$n" messages "$LAT_MESSAGES"
        for _ in $(seq 1 "$REPEAT"); do
            for relay in ${READY[@]+"${READY[@]}"}; do run_latency "$relay" "$n" || true; done
        done
    done
fi
if [ "$DO_MEMORY" = 1 ]; then
    for relay in ${READY[@]+"${READY[@]}"}; do [ "$relay" = sink ] || mem_phase "$relay" || true; done
fi
if [ "${BENCH_PROBE:-1}" = 1 ]; then
    for relay in ${READY[@]+"${READY[@]}"}; do probe "$relay"; done
fi
for d in ${PF_DIRS[@]+"${PF_DIRS[@]}"}; do pf_stop "$d"; done
PF_DIRS=()
for p in ${PIDS[@]+"${PIDS[@]}"}; do stop_pid "$p" 30; done
PIDS=()
sed -i "s|^load=.*|&, end $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min; other work on the machine skews results)|" "$META"
echo
util table "$RESULTS" "$META" "${BENCH_OUT:-}"
