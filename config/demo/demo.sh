#!/usr/bin/env bash
# make demo: the whole settings model (org custom > host custom > default) in under a minute,
# on loopback, with no network. Three local upstreams with real TLS and AUTH stand in for the
# default (SendGrid-style) route, the host's custom route and one organization's route;
# smarthost relays one message per case and the script shows where each landed and why.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="${SMARTHOST_BIN:-.build/release/smarthost}"
PY=/usr/bin/python3
UPSTREAM=Tests/SmarthostCoreTests/Support/test_upstream.py
work="$(mktemp -d /tmp/smarthost-demo.XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${DEMO_KEEP:-}" ] && echo "kept: $work" || rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\033[1m%s\033[0m\n' "$*"; }

say "1. Certificates: a demo CA and a certificate for localhost (generated now)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=smarthost demo CA" \
  -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
  -keyout "$work/leaf.key" -out "$work/leaf.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$work/san.ext"
openssl x509 -req -in "$work/leaf.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
  -days 2 -extfile "$work/san.ext" -out "$work/leaf.pem" 2>/dev/null

start_upstream() { # name mode auth
  local name=$1 mode=$2 auth=$3 out="$work/$1"
  mkfifo "$work/$name.stdin"
  sleep 600 > "$work/$name.stdin" & pids+=($!)
  $PY "$UPSTREAM" --mode "$mode" --cert "$work/leaf.pem" --key "$work/leaf.key" --auth "$auth" \
    --outdir "$out" < "$work/$name.stdin" > "$work/$name.ready" 2>"$work/$name.log" & pids+=($!)
  for _ in $(seq 100); do grep -q READY "$work/$name.ready" 2>/dev/null && break; sleep 0.1; done
  sed -n 's/READY port=//p' "$work/$name.ready"
}

say "2. Upstreams (aiosmtpd, real TLS + AUTH):"
p_default=$(start_upstream default starttls apikey:SG.demo-key)
p_host=$(start_upstream host implicit noreply@provider.example:host-pass)
p_org=$(start_upstream acme starttls alerts@acme.example:acme-pass)
echo "   default route (SendGrid stand-in)  127.0.0.1:$p_default  STARTTLS, AUTH apikey"
echo "   host custom route                  127.0.0.1:$p_host  implicit TLS, AUTH noreply@provider.example"
echo "   org 'acme' custom route            127.0.0.1:$p_org  STARTTLS, AUTH alerts@acme.example"

relay_port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/smarthost.yaml" <<YAML
hostname: demo.smarthost.local
listen: ["127.0.0.1:$relay_port"]
spool: $work/spool
queue: { retry_min: 1s, retry_max: 5s, max_age: 1h }
default:
  host: localhost
  port: $p_default
  tls: starttls
  ca_file: $work/ca.pem
  username: apikey
  password_env: DEMO_SENDGRID_KEY
  from: admin@mydomain.example
  from_name: sender mydomain.com
host:
  use: custom
  host: localhost
  port: $p_host
  tls: implicit
  ca_file: $work/ca.pem
  username: noreply@provider.example
  password: host-pass
  from: noreply@provider.example
  from_name: Orchestrator System Notifications
orgs:
  acme:
    use: custom
    senders: ["*@acme.example"]
    host: localhost
    port: $p_org
    tls: starttls
    ca_file: $work/ca.pem
    username: alerts@acme.example
    password: acme-pass
    from: alerts@acme.example
    from_name: ACME Robots
    rewrite_from: replace
  globex:
    use: default
YAML

say "3. smarthost check-config (passwords masked):"
DEMO_SENDGRID_KEY=SG.demo-key "$BIN" check-config --config "$work/smarthost.yaml" | sed 's/^/   /'

DEMO_SENDGRID_KEY=SG.demo-key "$BIN" serve --config "$work/smarthost.yaml" 2>"$work/relay.log" & relay_pid=$!; pids+=($relay_pid)
for _ in $(seq 100); do grep -q listening "$work/relay.log" 2>/dev/null && break; sleep 0.1; done

say "4. One message per case into smarthost on 127.0.0.1:$relay_port:"
send() { # from header-org description
  local args=(--server "127.0.0.1:$relay_port" --from "$1" --to "ops@example.com" --header "Subject: $3" --silent 2)
  [ -n "$2" ] && args+=(--add-header "X-Smarthost-Org: $2")
  swaks "${args[@]}" >/dev/null && echo "   sent: $3"
}
send robot@acme.example "" "acme robot alert (sender matches *@acme.example)"
send jobs@platform.example globex "globex job alert (org header, org inherits host)"
send reset@platform.example "" "password recovery (no org: host level)"

landed() { find "$work/default" "$work/host" "$work/acme" -name '*.eml' 2>/dev/null | wc -l; }
wait_for() { for _ in $(seq 100); do [ "$(landed)" -ge "$1" ] && return 0; sleep 0.1; done; return 1; }
wait_for 3 || echo "   (not everything arrived yet)"

say "5. Now the host switches to 'use: default' (SIGHUP reload, no restart); one more host-level message:"
sed -i 's/^  use: custom$/  use: default/' "$work/smarthost.yaml"
awk '/^host:/{print; print "  use: default"; skip=1; next} skip && /^orgs:/{skip=0} !skip' "$work/smarthost.yaml" > "$work/s2.yaml" && mv "$work/s2.yaml" "$work/smarthost.yaml"
kill -HUP "$relay_pid"
for _ in $(seq 50); do grep -q reloaded "$work/relay.log" && break; sleep 0.1; done
send licence@platform.example "" "licence status (host now uses the default route)"
wait_for 4 || echo "   (not everything arrived yet)"

say "6. Where each message landed:"
for name in acme host default; do
  for meta in "$work/$name"/*.json; do
    [ -e "$meta" ] || continue
    $PY - "$meta" "${meta%.json}.eml" "$name" <<'PY'
import json, sys
meta, eml, name = sys.argv[1:]
m = json.load(open(meta))
headers = open(eml, encoding="utf-8", errors="replace", newline="").read().split("\r\n\r\n")[0].split("\r\n")
get = lambda h: next((l.split(":", 1)[1].strip() for l in headers if l.lower().startswith(h.lower() + ":")), "")
leaked = any(l.lower().startswith("x-smarthost-org:") for l in headers)
print("   %-50s -> %-7s upstream  TLS=%-3s AUTH=%-24s MAIL FROM=<%s>  From: %s%s"
      % (get("Subject")[:50], name, "yes" if m["tls"] else "no", m["auth_user"], m["mail_from"], get("From"),
         "  (ORG HEADER LEAKED!)" if leaked else ""))
PY
  done
done
say "7. The relay's log (one line per event, no secrets):"
grep -E 'accepted|delivered|deferred|failed|reload' "$work/relay.log" | sed 's/^/   /' | head -20
