#!/usr/bin/env bash
# The stress and fault suite (issue 5): bounded in time, loopback only, ends by itself.
# Never part of `make test` (a small SIGKILL test runs there: EndToEnd/CrashEndToEndTests).
#
#   Tests/Stress/stress.sh                    # crash + abuse + fuzz, then a results table
#   STRESS_TESTS="crash" Tests/Stress/stress.sh
#   SMARTHOST_BIN=.build/debug/smarthost STRESS_KILLS=40 Tests/Stress/stress.sh
#
# Knobs (environment): SMARTHOST_BIN (default .build/release/smarthost), STRESS_TESTS
# (crash abuse fuzz), STRESS_KILLS (20), STRESS_SESSIONS (20), STRESS_PHASE_SECONDS (10),
# STRESS_CONNECTIONS (20000), STRESS_HUGE_MIB (1024), STRESS_FUZZ_SECONDS (30 per target),
# STRESS_SEED. Work files go to a temp directory kept when something fails.
set -uo pipefail
cd "$(dirname "$0")/../.."
BIN=${SMARTHOST_BIN:-.build/release/smarthost}
TESTS=${STRESS_TESTS:-crash abuse fuzz}
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

/usr/bin/python3 $HERE/report.py "$WORK"
if [[ $status -eq 0 ]]; then
  echo "stress: PASS"; rm -rf "$WORK"
else
  echo "stress: FAIL (work files kept in $WORK)"
fi
exit $status
