#!/usr/bin/env bash
# make test-system: the Debian package installed in a real systemd, as an operator would.
#
#   Tests/System/run.sh .build-deb/smarthost_VERSION_ARCH.deb
#
# A Debian 12 root with systemd as PID 1 (../shared/tools/systemd-box; no Swift toolchain in
# it, so it also proves the binary self-contained) gets the package with `apt-get install`,
# then every step the README's install section tells an operator, each checked against what
# really happened: bytes at an aiosmtpd upstream (STARTTLS + AUTH) inside the box, the
# journal, `systemctl` and the spool. Prints PASS/FAIL per check and "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
deb=${1:?usage: Tests/System/run.sh PACKAGE.deb}
[ -f "$deb" ] || { echo "no package at $deb (make deb)" >&2; exit 2; }
BOX=${SYSTEMD_BOX:-$(cd .. && pwd)/shared/tools/systemd-box}
[ -x "$BOX" ] || { echo "systemd-box not found at $BOX" >&2; exit 2; }
# A box of our own, so a developer's box is never disturbed.
export BOX_DIR=${BOX_DIR:-/var/tmp/smarthost-system-box}

passed=0 failed=0 started=$(date +%s)
pass() { echo "PASS $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }
check() {  # check NAME COMMAND…: passes when the command succeeds inside the box
    local name=$1; shift
    local out
    if out=$(box "$@" 2>&1); then pass "$name"; else fail "$name" "$(echo "$out" | tail -5)"; fi
}
box() { "$BOX" exec "$@"; }
sh_box() { "$BOX" exec sh -c "$1"; }
# wait_for SECONDS 'shell condition in the box'
wait_for() {
    local deadline=$(( $(date +%s) + $1 ))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        sh_box "$2" >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    return 1
}
count_delivered() { sh_box 'ls /root/up/*.eml 2>/dev/null | wc -l'; }
send() {  # send SUBJECT: one message through the relay on port 25; prints swaks' last reply
    sh_box "swaks --server 127.0.0.1:25 --from app@example.com --to someone@example.org \
        --header 'Subject: $1' --body 'system test $1' 2>&1 | grep -E '^<[-~]+ +[0-9]{3} ' | grep -v -E ' (220|221|250-|354) ' | tail -1"
}
main_pid() { box systemctl show -p MainPID --value smarthost.service; }
boot() {
    "$BOX" start
    # The box starts systemd inside a namespace whose mounts are private; a real host's
    # systemd runs with / shared, which credentials (LoadCredential=) need to reach services.
    box mount --make-rshared /
}

echo "== box: $BOX_DIR"
# The package's Debian dependencies beyond the box's base (libcurl4: OAuth2 token endpoints;
# libyaml-0-2: the configuration parser), so apt-get installs the .deb offline, as it would
# on a host that has them.
export BOX_PACKAGES=${BOX_PACKAGES:-libcurl4,libyaml-0-2}
"$BOX" create || { echo "cannot create the box" >&2; exit 1; }
if ! chroot "$("$BOX" path)" dpkg -s libcurl4 libyaml-0-2 >/dev/null 2>&1; then
    echo "== the box predates libcurl4 or libyaml-0-2: made again" >&2
    "$BOX" destroy && "$BOX" create || { echo "cannot create the box" >&2; exit 1; }
fi
boot || { echo "cannot start the box" >&2; exit 1; }
root=$(BOX_DIR=$BOX_DIR "$BOX" path)

# A fresh host: nothing of an earlier run remains.
sh_box 'systemctl stop smarthost.socket smarthost.service test-upstream 2>/dev/null
        dpkg -P smarthost >/dev/null 2>&1; rm -rf /var/lib/smarthost /etc/smarthost /root/up
        rm -f /etc/systemd/system/test-upstream.service; userdel smarthost 2>/dev/null; userdel robot 2>/dev/null
        rm -rf /etc/systemd/system/smarthost.socket.d /etc/systemd/system/smarthost.service.d
        systemctl daemon-reload
        # The box is kept between runs and PIDs repeat in its namespace: journalctl _PID=N
        # would count lines of an earlier run too.
        journalctl --rotate >/dev/null 2>&1; journalctl --vacuum-time=1s >/dev/null 2>&1; true'
cp "$deb" "$root/root/smarthost.deb"
cp Tests/SmarthostCoreTests/Support/test_upstream.py "$root/root/test_upstream.py"

echo "== install (README: apt-get install ./smarthost_*.deb)"
check "package installs with apt-get" apt-get install -y -q /root/smarthost.deb
check "binary is self-contained (only Debian libraries, no Swift runtime)" \
    sh -c '! ldd /usr/bin/smarthost | grep -E "not found|libswift|libFoundation"'
check "--version names the version, commit and OpenSSL" sh -c 'smarthost --version | grep -E "^smarthost [0-9.]+ \(commit [0-9a-f]+; OpenSSL 3"'
check "man pages installed" test -f /usr/share/man/man8/smarthost.8.gz -a -f /usr/share/man/man5/smarthost.yaml.5.gz
check "service account created" id smarthost
check "config is root:smarthost 0640" sh -c '[ "$(stat -c %U:%G:%a /etc/smarthost/smarthost.yaml)" = root:smarthost:640 ]'
check "credentials directory is root-only" sh -c '[ "$(stat -c %U:%G:%a /etc/smarthost/credentials)" = root:root:700 ]'
check "installing enabled nothing" sh -c '! systemctl is-enabled --quiet smarthost.service && ! systemctl is-active --quiet smarthost.socket'

echo "== first start with the example config and no credentials"
check "systemctl enable --now smarthost.socket smarthost.service" systemctl enable --now smarthost.socket smarthost.service
check "the relay runs" systemctl is-active --quiet smarthost.service
check "STATUS= says which credentials are missing" sh -c 'systemctl show -p StatusText --value smarthost | grep -q "credentials missing for default"'
check "the journal says what is missing and where to put it" \
    sh -c 'journalctl -u smarthost --no-pager | grep -q "sendgrid.secret.*/etc/smarthost/credentials/sendgrid.secret"'
reply=$(send early-bird)
case "$reply" in *250*) pass "mail is accepted before configuration" ;; *) fail "mail is accepted before configuration" "$reply" ;; esac
check "and held in the spool" sh -c 'smarthost queue list | grep -q .'

echo "== configure: an upstream with STARTTLS and AUTH, its secret in /etc/smarthost/credentials"
sh_box 'set -e; cd /root; mkdir -p up
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=box-test-ca 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout up.key -out up.csr -subj /CN=localhost 2>/dev/null
    printf "subjectAltName=DNS:localhost,IP:127.0.0.1\n" > up.ext
    openssl x509 -req -in up.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out up.pem -days 2 -extfile up.ext 2>/dev/null
    install -m 0644 ca.pem /etc/smarthost/upstream-ca.pem
    cat > /etc/systemd/system/test-upstream.service <<EOF
[Service]
ExecStart=/usr/bin/python3 /root/test_upstream.py --mode starttls --cert /root/up.pem --key /root/up.key --auth relay:box-secret-7f3a --outdir /root/up --port 2525
EOF
    systemctl daemon-reload; systemctl start test-upstream'
wait_for 15 'ss -ltn | grep -q ":2525 "' && pass "test upstream listens" || fail "test upstream listens" "$(box journalctl -u test-upstream --no-pager | tail -5)"
write_config() {  # write_config EXTRA_YAML: the test configuration, as an operator edits it
    sh_box "cat > /etc/smarthost/smarthost.yaml <<'EOF'
hostname: box.example.internal
spool: /var/lib/smarthost/spool
metrics: { listen: \"127.0.0.1:9325\" }
queue:
  retry_min: 1s
  retry_max: 3s
default:
  host: 127.0.0.1
  port: 2525
  tls: starttls
  ca_file: /etc/smarthost/upstream-ca.pem
  username: relay
  password_file: upstream.secret
$1
EOF"
}
write_config ""
check "config still root:smarthost 0640 after editing" sh -c '[ "$(stat -c %U:%G:%a /etc/smarthost/smarthost.yaml)" = root:smarthost:640 ]'
check "systemctl reload applies a good file" systemctl reload smarthost
sh_box 'printf "box-secret-7f3a\n" | install -m 0600 /dev/stdin /etc/smarthost/credentials/upstream.secret'
check "systemctl restart with the secret in place" systemctl restart smarthost
wait_for 20 'grep -lq "Subject: early-bird" /root/up/*.eml' \
    && pass "mail held before configuration is delivered once the secret is there" \
    || fail "mail held before configuration is delivered" "$(box journalctl -u smarthost --no-pager -n 20)"
check "AUTH happened only after TLS" sh -c 'grep -q . /root/up/auth.log && ! grep -qv "^tls=1 " /root/up/auth.log'
before=$(count_delivered)
reply=$(send socket-activated)
wait_for 20 'grep -lq "Subject: socket-activated" /root/up/*.eml' \
    && pass "swaks → 127.0.0.1:25 (socket activation) → upstream with TLS and AUTH" \
    || fail "swaks → upstream" "reply: $reply; $(box journalctl -u smarthost --no-pager -n 10)"
check "the secret is in no log line" sh -c '! journalctl --no-pager | grep -q box-secret-7f3a'

echo "== status and journal"
wait_for 5 'systemctl status smarthost --no-pager | grep -E "Status: \".*queue=[0-9]+ .*delivered=[1-9]"' \
    && pass "systemctl status shows STATUS= counts" || fail "systemctl status shows STATUS= counts" "$(box systemctl status smarthost --no-pager | grep Status:)"
check "STATUS= no longer says credentials are missing" sh -c '! systemctl show -p StatusText --value smarthost | grep -q "credentials missing"'
check "journal entries carry QUEUE_ID, ORG, ROUTE fields" \
    sh -c 'journalctl -u smarthost -o export --no-pager | grep -q "^QUEUE_ID=" && journalctl -u smarthost -o export --no-pager | grep -q "^ROUTE="'

check "smarthost status shows the running relay" sh -c 'smarthost status | grep -q "running (pid $(systemctl show -p MainPID --value smarthost))"'
check "/metrics answers under the unit's sandbox, counting the deliveries" \
    sh -c 'python3 -c "import urllib.request; print(urllib.request.urlopen(\"http://127.0.0.1:9325/metrics\").read().decode())" | grep -E "^smarthost_messages_delivered_total\{org=\"-\",route=\"default\"\} [1-9]"'

echo "== reload"
pid=$(main_pid)
write_config "orgs:
  acme:
    use: default
    senders: ['*@acme.example']"
check "reload with a good file succeeds" systemctl reload smarthost
check "and the new config is applied" sh -c 'journalctl -u smarthost --no-pager -n 20 | grep -q "reloaded.*orgs=1"'
write_config "bogus_key: 1"
if box systemctl reload smarthost >/dev/null 2>&1; then fail "reload with a bad file fails" "systemctl reload exited 0"; else pass "reload with a bad file fails (non-zero exit)"; fi
check "the relay keeps running on the old config" sh -c "systemctl is-active --quiet smarthost && [ \"\$(systemctl show -p MainPID --value smarthost)\" = $pid ]"
check "the refusal names the bad key and line" sh -c 'journalctl -u smarthost --no-pager -n 30 | grep -q "bogus_key"'
reply=$(send after-bad-reload)
wait_for 20 'grep -lq "Subject: after-bad-reload" /root/up/*.eml' && pass "mail still flows after a refused reload" || fail "mail after refused reload" "$reply"
write_config ""
check "reload back to the good file" systemctl reload smarthost

echo "== tenants on a Unix socket (README: Tenants' robots on a Unix socket)"
# swaks_box [runuser -u USER --] swaks ARGS…: the last reply swaks got (a refusal too), one line.
swaks_box() {
    sh_box "$* 2>&1 | grep -E '^<[-~*]+ +[0-9]{3} ' | grep -v -E ' (220|221|250-|354) ' | tail -1"
}
# Subjects in this section are unique and none is the start of another (lines end in CRLF).
delivered() { wait_for 20 "grep -lq 'Subject: $1' /root/up/*.eml"; }
eml_of() { sh_box "grep -l 'Subject: $1' /root/up/*.eml | head -1"; }
sock="--socket /run/smarthost/smtp.sock"
box sh -c 'id robot >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin robot'
robot_uid=$(box id -u robot)
write_config "org_header_trust: senders
orgs:
  acme:
    use: default
    senders: ['*@acme.example']
  robots:
    use: default
    senders: ['*@robots.example']
    clients: ['user:robot']
  rootco:
    use: default
    senders: ['*@rootco.example']
    clients: ['user:root']"
check "reload with org_header_trust: senders and clients: user:robot / user:root" systemctl reload smarthost
# The socket drop-in alone, as an operator who skipped the README's second drop-in would.
sh_box 'mkdir -p /etc/systemd/system/smarthost.socket.d
    printf "[Socket]\nListenStream=/run/smarthost/smtp.sock\nSocketMode=0666\n" > /etc/systemd/system/smarthost.socket.d/tenants.conf'
check "systemctl edit smarthost.socket (ListenStream=/run/smarthost/smtp.sock); restart socket and service" \
    sh -c 'systemctl daemon-reload && systemctl restart smarthost.socket smarthost.service && systemctl is-active --quiet smarthost'
check "systemd made /run/smarthost/smtp.sock, a socket of mode 0666, beside port 25" \
    sh -c '[ "$(stat -c %F:%a /run/smarthost/smtp.sock)" = socket:666 ] && ss -ltn | grep -q "127.0.0.1:25 "'
reply=$(swaks_box runuser -u robot -- swaks $sock --from bot@robots.example --to someone@example.org \
    --header "'Subject: robot-private-users'" --add-header "'X-Smarthost-Org: robots'")
case "$reply" in *"550 5.7.1"*"uid=unknown may not send as org robots"*) pass "under PrivateUsers=yes the robot is uid=unknown: refused 550 5.7.1, not mistaken for another user" ;;
    *) fail "under PrivateUsers=yes the robot is uid=unknown and refused" "$reply" ;; esac
check "and the journal says why (PrivateUsers)" sh -c 'journalctl -u smarthost --no-pager -n 40 | grep -q "uid rules cannot see most users.*PrivateUsers=no.*orgs=robots,rootco"'
sh_box 'mkdir -p /etc/systemd/system/smarthost.service.d
    printf "[Service]\nPrivateUsers=no\n" > /etc/systemd/system/smarthost.service.d/tenants.conf'
check "systemctl edit smarthost.service (PrivateUsers=no); restart" \
    sh -c 'systemctl daemon-reload && systemctl restart smarthost.service && systemctl is-active --quiet smarthost'
reply=$(swaks_box runuser -u nobody -- swaks $sock --from app@example.com --to someone@example.org \
    --header "'Subject: unix-nobody'" --body "'over the Unix socket'")
delivered unix-nobody && pass "as nobody: swaks --socket /run/smarthost/smtp.sock → upstream" \
    || fail "as nobody over the Unix socket → upstream" "reply: $reply; $(box journalctl -u smarthost --no-pager -n 10)"
eml=$(eml_of unix-nobody)
check "its Received: header and the journal's accepted line name uid=65534" \
    sh -c "grep -q '^Received: from .*(uid=65534)' '$eml' && journalctl -u smarthost --no-pager | grep -q 'accepted .*client=uid=65534'"
reply=$(swaks_box runuser -u robot -- swaks $sock --from bot@robots.example --to someone@example.org \
    --header "'Subject: robot-as-robots'" --add-header "'X-Smarthost-Org: robots'")
delivered robot-as-robots && pass "the robot (user:robot, uid $robot_uid) sends as org robots over the socket" \
    || fail "the robot sends as org robots" "reply: $reply"
eml=$(eml_of robot-as-robots)
check "Received: names uid=$robot_uid and the org header is gone" \
    sh -c "grep -q '^Received: from .*(uid=$robot_uid)' '$eml' && ! grep -qi '^X-Smarthost-Org:' '$eml'"
reply=$(swaks_box runuser -u nobody -- swaks $sock --from bot@robots.example --to someone@example.org \
    --header "'Subject: nobody-as-robots'" --add-header "'X-Smarthost-Org: robots'")
case "$reply" in *"550 5.7.1"*"client uid=65534 may not send as org robots"*) pass "nobody claiming org robots over the socket: 550 5.7.1" ;;
    *) fail "nobody claiming org robots: 550 5.7.1" "$reply" ;; esac
reply=$(swaks_box runuser -u nobody -- swaks $sock --from ops@rootco.example --to someone@example.org \
    --header "'Subject: nobody-as-rootco'" --add-header "'X-Smarthost-Org: rootco'")
case "$reply" in *"550 5.7.1"*"client uid=65534 may not send as org rootco"*) pass "nobody claiming org rootco (clients: user:root) over the socket: 550 5.7.1" ;;
    *) fail "nobody claiming org rootco: 550 5.7.1" "$reply" ;; esac
reply=$(swaks_box swaks $sock --from ops@rootco.example --to someone@example.org \
    --header "'Subject: root-as-rootco'" --add-header "'X-Smarthost-Org: rootco'")
delivered root-as-rootco && pass "root claiming org rootco over the socket is delivered" || fail "root as rootco delivered" "reply: $reply"
echo "== org_header_trust: senders on port 25"
reply=$(swaks_box swaks --server 127.0.0.1:25 --from app@example.com --to someone@example.org \
    --header "'Subject: tcp-claim-acme'" --add-header "'X-Smarthost-Org: acme'")
case "$reply" in *"550 5.7.1"*"names org acme, whose senders do not include this envelope sender"*)
        pass "header claims org acme, sender not acme's, over TCP 25: 550 5.7.1" ;;
    *) fail "header claim without acme's sender over TCP: 550 5.7.1" "$reply" ;; esac
reply=$(swaks_box swaks --server 127.0.0.1:25 --from app@acme.example --to someone@example.org \
    --header "'Subject: tcp-acme-sender'" --add-header "'X-Smarthost-Org: acme'")
delivered tcp-acme-sender && pass "the same claim with acme's sender over TCP 25 is delivered" || fail "acme's sender delivered" "reply: $reply"
# The last accepted message's spool files go a moment after the upstream's 250: poll.
wait_for 10 '! grep -lqE "Subject: (robot-private-users|nobody-as-robots|nobody-as-rootco|tcp-claim-acme)" /root/up/*.eml &&
        [ -z "$(smarthost queue list)" ] && j=$(journalctl -u smarthost --no-pager) &&
        echo "$j" | grep -q "refused .*client=uid=65534 .*org=rootco" &&
        echo "$j" | grep -q "refused .*client=uid=65534 .*org=robots" &&
        echo "$j" | grep -q "refused .*client=127.0.0.1 .*org=acme"' \
    && pass "refused claims reached no upstream and were not queued; the journal logged each with its org" \
    || fail "refused claims: nothing delivered or queued, each logged" "$(box smarthost queue list; box journalctl -u smarthost --no-pager -n 15 | grep refused)"
# Later sections relay with the plain configuration; the drop-ins stay, as on a real host.
write_config ""
check "reload back to the plain configuration (the socket stays)" sh -c 'systemctl reload smarthost && [ -S /run/smarthost/smtp.sock ]'

echo "== the machine's MTA: /usr/sbin/sendmail and mailq (README: As the machine's MTA)"
check "/usr/sbin/sendmail and /usr/bin/mailq are links to the relay" \
    sh -c '[ "$(readlink -f /usr/sbin/sendmail)" = /usr/bin/smarthost ] && [ "$(readlink -f /usr/bin/mailq)" = /usr/bin/smarthost ]'
box systemctl stop smarthost.service   # the socket stays: the next connection starts the relay
check "sendmail -t -i as an unprivileged user (the config unreadable to it) exits 0" sh -c \
    'printf "To: someone@example.org\nSubject: via-sendmail\n\nfrom sendmail\n" | runuser -u nobody -- /usr/sbin/sendmail -t -i'
wait_for 20 'grep -lq "Subject: via-sendmail" /root/up/*.eml' \
    && pass "sendmail → socket activation starts the relay → upstream" \
    || fail "sendmail → upstream" "$(box journalctl -u smarthost --no-pager -n 10)"
check "mailq lists the queue" sh -c 'mailq | grep -q .'
box systemctl stop smarthost.socket smarthost.service
out=$(sh_box 'printf "Subject: nothing-listens\n\nqueued\n" | /usr/sbin/sendmail someone@example.org 2>&1; echo "exit=$?"')
case "$out" in "exit=0") pass "sendmail with nothing listening exits 0, silently (the message waits in the maildrop)" ;;
    *) fail "sendmail with nothing listening exits 0" "$out" ;; esac
box systemctl start smarthost.socket smarthost.service
wait_for 20 'grep -lq "Subject: nothing-listens" /root/up/*.eml' \
    && pass "the relay takes it from the maildrop once it runs" || fail "maildrop → upstream" "$(box journalctl -u smarthost --no-pager -n 10)"

echo "== sendmail while the service fails to start (README: As the machine's MTA, the maildrop)"
# Issue 19: a configuration that does not load, the unit looping on Restart=on-failure behind
# its socket. sendmail used to block 120 s and exit 75, and cron's mail was gone.
check "the maildrop is smarthost:smarthost 3733, the directories above it 0711" sh -c \
    '[ "$(stat -c %U:%G:%a /var/lib/smarthost/spool/maildrop)" = smarthost:smarthost:3733 ] \
     && [ "$(stat -c %a /var/lib/smarthost/spool)" = 711 ] && [ "$(stat -c %a /var/lib/smarthost)" = 711 ]'
write_config "bogus_key: 1"
sh_box 'systemctl restart smarthost.service >/dev/null 2>&1; true'
check "the service fails to start with the broken configuration" sh -c '! systemctl is-active --quiet smarthost.service'
out=$(sh_box 'start=$(date +%s); printf "To: someone@example.org\nSubject: while-broken\n\nwaits in the maildrop\n" \
    | runuser -u nobody -- /usr/sbin/sendmail -t -i 2>&1; rc=$?; echo "exit=$rc seconds=$(( $(date +%s) - start ))"')
case "$out" in "exit=0 seconds="*) s=${out##*seconds=}
    if [ "$s" -le 30 ]; then pass "sendmail as nobody exits 0 in ${s} s while the relay cannot start"; else fail "sendmail exits 0 within seconds" "$out"; fi ;;
    *) fail "sendmail as nobody exits 0 while the relay cannot start" "$out" ;; esac
check "the drop is nobody's, group smarthost, 0640, and another user cannot read it" sh -c \
    'f=$(find /var/lib/smarthost/spool/maildrop -type f -user nobody | head -1); [ -n "$f" ] \
     && [ "$(stat -c %G:%a "$f")" = smarthost:640 ] && ! runuser -u daemon -- cat "$f" >/dev/null 2>&1 \
     && ! runuser -u daemon -- ls /var/lib/smarthost/spool/maildrop >/dev/null 2>&1'
write_config ""
sh_box 'systemctl reset-failed smarthost.service smarthost.socket; systemctl restart smarthost.socket smarthost.service'
wait_for 30 'grep -lq "Subject: while-broken" /root/up/*.eml' \
    && pass "configuration fixed, restarted: the dropped message is delivered" \
    || fail "dropped message delivered after the fix" "$(box journalctl -u smarthost --no-pager -n 15)"
check "the maildrop is empty again and the journal names the pickup" sh -c \
    '[ -z "$(ls -A /var/lib/smarthost/spool/maildrop)" ] && journalctl -u smarthost --no-pager | grep -q "picked up from the maildrop"'

echo "== one relay per spool"
sh_box "sed 's/^hostname:.*/hostname: second\nlisten: [\"127.0.0.1:2600\"]/' /etc/smarthost/smarthost.yaml > /etc/smarthost/second.yaml; chgrp smarthost /etc/smarthost/second.yaml; chmod 0640 /etc/smarthost/second.yaml"
pid=$(main_pid)
out=$(box timeout 20 runuser -u smarthost -- smarthost serve --config /etc/smarthost/second.yaml 2>&1); rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && echo "$out" | grep -q "is in use by pid $pid"; then
    pass "a second serve on the spool exits non-zero naming pid $pid"
else
    fail "a second serve on the spool is refused" "exit $rc: $(echo "$out" | tail -3)"
fi
check "it touched nothing: no listener on 2600, control socket still the live relay's" \
    sh -c '! ss -ltn | grep -q ":2600 " && smarthost queue status | grep -q "daemon running (pid '"$pid"')"'
reply=$(send after-second-serve)
wait_for 20 'grep -lq "Subject: after-second-serve" /root/up/*.eml' && pass "the live relay keeps taking mail" || fail "live relay after second serve" "$reply"

echo "== watchdog"
sh_box 'mkdir -p /etc/systemd/system/smarthost.service.d
    printf "[Service]\nWatchdogSec=3s\nTimeoutAbortSec=2s\n" > /etc/systemd/system/smarthost.service.d/test-watchdog.conf
    systemctl daemon-reload; systemctl restart smarthost'
box systemctl stop test-upstream
for n in 1 2 3 4 5; do send "watchdog-$n" >/dev/null; done
check "5 messages acknowledged while the upstream is down" sh -c '[ "$(smarthost queue list | wc -l)" -ge 5 ]'
pid=$(main_pid)
restarts=$(box systemctl show -p NRestarts --value smarthost)
box systemctl kill --kill-who=main -s SIGSTOP smarthost
wait_for 40 "[ \"\$(systemctl show -p NRestarts --value smarthost)\" -gt $restarts ] && systemctl is-active --quiet smarthost" \
    && pass "a stopped relay is killed by the watchdog and restarted" \
    || fail "watchdog restart" "$(box systemctl status smarthost --no-pager | head -12)"
box systemctl start test-upstream
wait_for 40 'for n in 1 2 3 4 5; do grep -lq "Subject: watchdog-$n" /root/up/*.eml || exit 1; done' \
    && pass "nothing acknowledged before the watchdog kill is lost" \
    || fail "watchdog: acknowledged mail lost" "$(box smarthost queue list)"
sh_box 'rm -f /etc/systemd/system/smarthost.service.d/test-watchdog.conf; systemctl daemon-reload; systemctl restart smarthost'

echo "== stop, start and reboot with mail queued"
box systemctl stop test-upstream
for n in 1 2 3; do send "reboot-$n" >/dev/null; done
check "systemctl stop drains and exits cleanly" sh -c 'systemctl stop smarthost.service && [ "$(systemctl show -p Result --value smarthost)" = success ]'
check "queue list as root with the daemon stopped" sh -c '[ "$(smarthost queue list | grep -c .)" -ge 3 ]'
check "queue list as the service account" sh -c 'runuser -u smarthost -- smarthost queue list | grep -q .'
box systemctl start smarthost.service
"$BOX" stop && boot && pass "box rebooted" || fail "box reboot" "systemd-box stop/start"
wait_for 20 'systemctl is-active --quiet smarthost.service' && pass "the relay is up after a reboot" || fail "relay after reboot" "$(box systemctl status smarthost --no-pager | head -5)"
check "queued mail survived stop/start and the reboot" sh -c '[ "$(smarthost queue list | grep -c .)" -ge 3 ]'
check "the tenants' Unix socket is back after the reboot" sh -c '[ "$(stat -c %F:%a /run/smarthost/smtp.sock)" = socket:666 ]'
box systemctl start test-upstream
wait_for 30 'for n in 1 2 3; do grep -lq "Subject: reboot-$n" /root/up/*.eml || exit 1; done' \
    && pass "delivered when the upstream returns" || fail "delivery after reboot" "$(box smarthost queue list)"

echo "== queue retry as root with the daemon stopped"
box systemctl stop test-upstream
send "retry-by-root" >/dev/null
wait_for 20 'smarthost queue list | grep -vq " 0 "' || true
id=$(sh_box 'smarthost queue list | awk "NR==1 {print \$1}"')
sh_box 'systemctl stop smarthost.socket smarthost.service'
check "queue retry ID as root (direct mode)" smarthost queue retry "$id"
check "it left no file the service cannot read" sh -c '[ -z "$(find /var/lib/smarthost ! -user smarthost)" ]'
box systemctl start test-upstream
box systemctl start smarthost.socket smarthost.service
wait_for 30 'grep -lq "Subject: retry-by-root" /root/up/*.eml' \
    && pass "the retried message is delivered after start" || fail "retried message" "$(box smarthost queue list)"
check "and nothing was quarantined" sh -c '[ -z "$(ls -A /var/lib/smarthost/spool/quarantine)" ] && ! journalctl -u smarthost --no-pager | grep -q quarantined\ file'

echo "== signals and a full disk under systemd (issue 19: kill -HUP reloads, stop exits 0, refusing mail shows)"
# Self-contained: starts from the plain configuration with the relay and the upstream running.
write_config ""
box systemctl start test-upstream smarthost.socket smarthost.service
pid=$(main_pid)
restarts=$(box systemctl show -p NRestarts --value smarthost)
same_relay() { sh_box "systemctl is-active --quiet smarthost && [ \"\$(systemctl show -p MainPID --value smarthost)\" = $pid ] &&
    [ \"\$(systemctl show -p NRestarts --value smarthost)\" = $restarts ]"; }
reloads() { sh_box "journalctl _PID=$pid --no-pager -o cat | grep -c '^reloaded '"; }
check "systemctl reload" systemctl reload smarthost
same_relay && pass "systemctl reload keeps the service active, same MainPID" || fail "systemctl reload keeps the relay" "$(box systemctl status smarthost --no-pager | head -8)"
before=$(reloads)
for n in 1 2 3 4 5; do
    box kill -HUP "$pid"
    wait_for 10 "[ \$(journalctl _PID=$pid --no-pager -o cat | grep -c '^reloaded ') -ge $((before + n)) ]" || break
done
[ "$(reloads)" -eq $((before + 5)) ] && pass "kill -HUP ×5: five reloads in the journal" || fail "kill -HUP ×5 reloads" "reloaded lines: $before → $(reloads)"
same_relay && pass "kill -HUP keeps the service active, same MainPID, no restart" || fail "kill -HUP keeps the relay" "$(box systemctl status smarthost --no-pager | head -8)"
reply=$(send after-five-hups)
delivered after-five-hups && pass "mail still flows after kill -HUP ×5" || fail "mail after kill -HUP" "reply: $reply"

write_config "limits:
  min_free_space: 1000000000GiB"
check "reload to a min_free_space above the disk's free space" systemctl reload smarthost
wait_for 5 'systemctl status smarthost --no-pager | grep -q "Status: \"refusing mail: spool free .* < min_free_space "' \
    && pass "systemctl status shows refusing mail" || fail "systemctl status shows refusing mail" "$(box systemctl status smarthost --no-pager | grep Status:)"
check "smarthost status shows refusing mail" sh -c 'smarthost status | grep -q "^refusing mail: spool free .*every message gets 452 4.3.1"'
reply=$(swaks_box swaks --server 127.0.0.1:25 --from app@example.com --to someone@example.org --header "'Subject: refused-low-disk'")
case "$reply" in *"452 4.3.1"*) pass "mail is refused with 452 4.3.1 meanwhile" ;; *) fail "low disk: 452 4.3.1" "$reply" ;; esac
send refused-low-disk-2 >/dev/null
check "/metrics: smarthost_refusing_mail 1" sh -c 'python3 -c "import urllib.request; print(urllib.request.urlopen(\"http://127.0.0.1:9325/metrics\").read().decode())" | grep -qx "smarthost_refusing_mail{reason=\"min_free_space\"} 1"'
write_config ""
check "reload back to the plain configuration" systemctl reload smarthost
# The reload logs "accepting mail again" before it answers, but journald may not have stored the
# line yet when journalctl reads: it is waited for, then counted exactly.
warning_lines() { sh_box "j=\$(journalctl _PID=$pid --no-pager -o cat); echo \$(echo \"\$j\" | grep -c '^refusing mail: spool free ') \$(echo \"\$j\" | grep -c '^accepting mail again: spool free ') \$(journalctl _PID=$pid -p warning --no-pager -o cat | grep -c 'mail.*spool free')"; }
wait_for 10 "[ \"\$(journalctl _PID=$pid -p warning --no-pager -o cat | grep -c 'mail.*spool free')\" -ge 2 ]" || true
counts=$(warning_lines)
[ "$counts" = "1 1 2" ] && pass "one warning line entering, one leaving (not one per refused message)" \
    || fail "one warning line entering, one leaving (not one per refused message)" "refusing, accepting, warning-priority lines: $counts (want 1 1 2)"
check "status clear again" sh -c '! smarthost status | grep -q refusing && ! systemctl show -p StatusText --value smarthost | grep -q refusing'
reply=$(send after-low-disk)
delivered after-low-disk && pass "mail accepted and delivered again" || fail "mail after low disk" "reply: $reply"

check "systemctl stop" systemctl stop smarthost.service
check "the relay exited by itself with status 0 (ExecMainCode=exited, ExecMainStatus=0)" \
    sh -c '[ "$(systemctl show -p ExecMainCode --value smarthost)" = 1 ] && [ "$(systemctl show -p ExecMainStatus --value smarthost)" = 0 ]'
check "the journal has its stopping and stopped lines" \
    sh -c "journalctl _PID=$pid --no-pager -o cat | grep -q '^stopping: draining sessions' && journalctl _PID=$pid --no-pager -o cat | grep -qx 'stopped'"
box systemctl start smarthost.service

echo "== hardening"
exposure=$(box systemd-analyze security smarthost.service 2>/dev/null | sed -n 's/.*Overall exposure level for smarthost.service: \([0-9.]*\).*/\1/p')
if [ -n "$exposure" ] && awk "BEGIN {exit !($exposure <= 1.5)}"; then pass "systemd-analyze security: $exposure (≤ 1.5)"; else fail "systemd-analyze security ≤ 1.5" "got '${exposure:-nothing}'"; fi
check "no core files (LimitCORE=0)" sh -c 'grep -E "^Max core file size +0 +0" /proc/$(systemctl show -p MainPID --value smarthost)/limits'
check "not dumpable once secrets are loaded (/proc/PID owned by root)" sh -c '[ "$(stat -c %U /proc/$(systemctl show -p MainPID --value smarthost)/environ)" = root ]'

echo "== purge"
check "apt-get purge removes the package" apt-get purge -y -q smarthost
check "and leaves nothing behind" sh -c '! test -e /usr/bin/smarthost && ! test -e /etc/smarthost && ! test -e /usr/lib/systemd/system/smarthost.service && ! systemctl is-active --quiet smarthost.socket && ! test -e /var/lib/smarthost && ! dpkg -s smarthost >/dev/null 2>&1'

box systemctl stop test-upstream >/dev/null 2>&1
"$BOX" stop
echo "system test took $(( $(date +%s) - started )) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
