#!/usr/bin/env bash
# OAuth2 cell (issue 11): the same STARTTLS route to the same kind of upstream (aiosmtpd, test
# certificates), once with AUTH PLAIN and a password, once with XOAUTH2 and a token from the test
# token endpoint (oauth_endpoint.py). Reports end-to-end messages/s for each and the token
# fetches the OAuth2 run made, scaled to 10 000 messages. Loopback only; `make bench` runs it
# after the Postfix comparison and the orgs scale run.
#
#   Tests/Bench/oauth2.sh                       SMARTHOST_BIN=.build/release/smarthost, 10 000 messages
#   BENCH_MESSAGES=2000 SMARTHOST_BIN=.build/debug/smarthost Tests/Bench/oauth2.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${SMARTHOST_BIN:-$ROOT/.build/release/smarthost}
N=${BENCH_MESSAGES:-10000}
SESSIONS=${BENCH_SESSIONS:-20}
SUPPORT=$ROOT/Tests/SmarthostCoreTests/Support
PY=/usr/bin/python3
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

cd "$WORK"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -subj "/CN=Bench CA" -days 2 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >ext
openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext 2>/dev/null
echo "bench-client-secret" >client.secret; chmod 600 client.secret
mkdir -p state

# start NAME CMD...: runs CMD with stdin held open (the scripts end when it closes), waits for
# "READY port=N", sets PORT. Not in a $(…): the subshell would close the pipe on exit.
start() {
    local name=$1; shift
    mkfifo "$name.in"
    "$@" <"$name.in" >"$name.out" 2>"$name.err" &
    PIDS+=($!)
    exec {fd}>"$name.in"
    for _ in $(seq 100); do grep -q READY "$name.out" 2>/dev/null && break; sleep 0.1; done
    PORT=$(sed -n 's/READY port=//p' "$name.out")
}
start endpoint $PY "$SUPPORT/oauth_endpoint.py" --cert srv.pem --key srv.key --state state --client-secret-file client.secret
EP=$PORT
start up-password $PY "$SUPPORT/test_upstream.py" --mode starttls --cert srv.pem --key srv.key --outdir out-password --auth bench:pw
UP_PW=$PORT
start up-oauth $PY "$SUPPORT/test_upstream.py" --mode starttls --cert srv.pem --key srv.key --outdir out-oauth --oauth-state state
UP_OA=$PORT

route() {   # route NAME PORT AUTH-YAML
    cat >"$1.yaml" <<YAML
hostname: bench.test
listen: ["127.0.0.1:0"]
spool: $WORK/spool-$1
queue: { connections_per_route: 10 }
default: { host: 127.0.0.1, port: 9, tls: none }
host:
  use: custom
  host: localhost
  port: $2
  tls: starttls
  ca_file: $WORK/ca.pem
  username: bench
$3
YAML
}
route password "$UP_PW" "  password: pw"
route oauth "$UP_OA" "  oauth2:
    provider: generic
    token_url: https://localhost:$EP/token
    client_id: app-1
    client_secret_file: $WORK/client.secret
    scope: https://outlook.office365.com/.default
    ca_file: $WORK/ca.pem"

cell() {    # cell NAME: prints messages/s end to end
    local name=$1
    HTTPS_PROXY= https_proxy= "$BIN" serve --config "$name.yaml" >"relay-$name.log" 2>&1 &
    local relay=$!
    PIDS+=($relay)
    local port=""
    for _ in $(seq 100); do
        port=$(sed -n 's/.*listening.*address=127\.0\.0\.1:\([0-9]*\).*/\1/p' "relay-$name.log" | head -1)
        [ -n "$port" ] && break; sleep 0.1
    done
    [ -n "$port" ] || { echo "relay $name did not start:" >&2; cat "relay-$name.log" >&2; exit 1; }
    local start end
    start=$(date +%s.%N)
    smtp-source -s "$SESSIONS" -m "$N" -l 1024 -f from@bench.local -t to@bench.example "127.0.0.1:$port"
    local waited=0
    while [ "$(find "out-$name" -name '*.eml' | wc -l)" -lt "$N" ]; do
        sleep 0.2; waited=$((waited + 1))
        [ "$waited" -lt 3000 ] || { echo "$name: not all delivered; relay log:" >&2; tail -5 "relay-$name.log" >&2; exit 1; }
    done
    end=$(date +%s.%N)
    kill "$relay"; wait "$relay" 2>/dev/null || true
    echo "$N / ($end - $start)" | bc -l | xargs printf '%.0f'
}
pw=$(cell password)
oa=$(cell oauth)
fetches=$(grep -c 'status=200' state/requests.log || true)
echo "oauth2 bench: $N messages x 1 KiB, $SESSIONS sessions, STARTTLS to aiosmtpd, binary $BIN"
echo "  password (AUTH PLAIN):   $pw msg/s end to end"
echo "  oauth2 (AUTH XOAUTH2):   $oa msg/s end to end"
echo "  token fetches: $fetches for $N messages ($(echo "$fetches * 10000 / $N" | bc -l | xargs printf '%.1f') per 10 000)"
