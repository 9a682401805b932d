#!/usr/bin/env bash
# The stress and fault suite (issue 5): bounded in time, loopback only, ends by itself.
# Never part of `make test` (a small SIGKILL test runs there: EndToEnd/CrashEndToEndTests).
#
#   Tests/Stress/stress.sh                    # crash upstream disk abuse fuzz, then a results table
#   STRESS_TESTS="crash" Tests/Stress/stress.sh
#   SMARTHOST_BIN=.build/debug/smarthost STRESS_KILLS=40 Tests/Stress/stress.sh
#
# Knobs (environment): SMARTHOST_BIN (default .build/release/smarthost), STRESS_TESTS
# (crash upstream disk abuse fuzz), STRESS_KILLS (20), STRESS_SESSIONS (20), STRESS_PHASE_SECONDS (10),
# STRESS_CONNECTIONS (20000), STRESS_HUGE_MIB (1024), STRESS_FUZZ_SECONDS (30 per target),
# STRESS_UPSTREAM_SESSIONS (8), STRESS_UPSTREAM_MESSAGES (15 per session), STRESS_DISK_MIB (8),
# STRESS_SEED. Work files go to a temp directory kept when something fails.
# `disk` mounts a tmpfs (needs root; without it, it tests the free-space floor only).
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${SMARTHOST_BIN:-.build/release/smarthost}
TESTS=${STRESS_TESTS:-crash upstream disk abuse fuzz}
SEED=${STRESS_SEED:-$(date +%s)}
WORK=$(mktemp -d /tmp/smarthost-stress.XXXXXX)
HERE=Tests/Stress
[[ -x $BIN ]] || { echo "no relay binary at $BIN (make release, or set SMARTHOST_BIN)"; exit 2; }
BIN=$(realpath "$BIN")
echo "stress: binary $BIN, seed $SEED, work files in $WORK"

status=0
for test in $TESTS; do
  echo "== $test"
  case $test in
    crash)
      /usr/bin/python3 $HERE/crash.py "$BIN" "$WORK/crash" --seed "$SEED" \
        --kills "${STRESS_KILLS:-20}" --sessions "${STRESS_SESSIONS:-20}" | tee "$WORK/crash.out" || status=1 ;;
    upstream)
      /usr/bin/python3 $HERE/upstream.py "$BIN" "$WORK/upstream" --seed "$SEED" \
        --sessions "${STRESS_UPSTREAM_SESSIONS:-8}" --messages "${STRESS_UPSTREAM_MESSAGES:-15}" \
        | tee "$WORK/upstream.out"; [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1 ;;
    disk)
      /usr/bin/python3 $HERE/disk.py "$BIN" "$WORK/disk" --seed "$SEED" --size-mib "${STRESS_DISK_MIB:-8}" \
        | tee "$WORK/disk.out"; [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1 ;;
    abuse)
      /usr/bin/python3 $HERE/abuse.py "$BIN" "$WORK/abuse" --seed "$SEED" \
        --phase-seconds "${STRESS_PHASE_SECONDS:-10}" --connections "${STRESS_CONNECTIONS:-20000}" \
        --huge-mib "${STRESS_HUGE_MIB:-1024}" | tee "$WORK/abuse.out" || status=1 ;;
    fuzz)
      FUZZ_SECONDS=${STRESS_FUZZ_SECONDS:-30} Tests/Fuzz/run.sh 2>&1 | grep -v 'warning\|^ *[0-9]* |\|^ *|' \
        | tee "$WORK/fuzz.out"; [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1 ;;
    *) echo "unknown test $test"; status=2 ;;
  esac
done

# A disk phase that died hard may have left its tmpfs (and a bind mount over it) mounted.
for _ in 1 2; do mountpoint -q "$WORK/disk/spool" 2>/dev/null && umount -l "$WORK/disk/spool"; done
/usr/bin/python3 $HERE/report.py "$WORK"
if [[ $status -eq 0 ]]; then
  echo "stress: PASS"; rm -rf "$WORK"
else
  echo "stress: FAIL (work files kept in $WORK)"
fi
exit $status
