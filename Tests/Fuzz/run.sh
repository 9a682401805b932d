#!/usr/bin/env bash
# Builds the libFuzzer harness (swiftc -sanitize=fuzzer,address, straight from the
# pure protocol sources) into .build-fuzz/ and runs every target for a bounded time.
#
#   Tests/Fuzz/run.sh                 # every target, FUZZ_SECONDS each (default 60)
#   Tests/Fuzz/run.sh session data    # only these targets
#   FUZZ_SECONDS=600 Tests/Fuzz/run.sh
#   Tests/Fuzz/run.sh --replay data .build-fuzz/crashes/data/crash-…   # reproduce one input
#
# New inputs go to .build-fuzz/corpus/<target> (the seed corpus in Tests/Fuzz/corpus is
# only read); crashes to .build-fuzz/crashes/<target>/. Exit status 1 when any target crashed.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=$ROOT/.build-fuzz
BIN=$OUT/smarthost-fuzz
SECONDS_EACH=${FUZZ_SECONDS:-60}
SWIFTC=${SWIFTC:-swiftc}
TARGETS=(command data session reply)

# The pure protocol code only: no sockets, no OpenSSL, no systemd.
SOURCES=(
  Sources/SmarthostCore/SMTP/*.swift
  Sources/SmarthostCore/Inbound/{InboundSession,InboundSession+Tenancy,InboundCommandTable,InboundRefusal,CommandParser,DataDecoder,LineFramer}.swift
  Sources/SmarthostCore/System/Clocks.swift
  Sources/SmarthostCore/Upstream/UpstreamReplyParser.swift
  Sources/SmarthostCore/Upstream/UpstreamDataEncoder.swift
  Tests/Fuzz/Harness/*.swift
)

build() {
  mkdir -p "$OUT"
  local newest
  newest=$(ls -t "${SOURCES[@]}" "$0" | head -1)
  if [[ -x $BIN && $BIN -nt $newest ]]; then return; fi
  echo "building $BIN"
  "$SWIFTC" -O -parse-as-library -sanitize=fuzzer,address -module-name SmarthostFuzz \
    "${SOURCES[@]}" -o "$BIN" 2> >(grep -v "Cannot export local symbol" >&2)
}

build
if [[ ${1:-} == --replay ]]; then
  SWIFT_BACKTRACE=enable=no SMARTHOST_FUZZ_TARGET=$2 exec "$BIN" "${@:3}"
fi
[[ $# -gt 0 ]] && TARGETS=("$@")

status=0
printf '\n%-8s %12s %10s %8s %8s\n' target executions exec/s corpus crashes > "$OUT/summary.txt"
for target in "${TARGETS[@]}"; do
  mkdir -p "$OUT/corpus/$target" "$OUT/crashes/$target"
  log=$OUT/$target.log
  echo "fuzzing $target for ${SECONDS_EACH}s (log: $log)"
  set +e
  SWIFT_BACKTRACE=enable=no SMARTHOST_FUZZ_TARGET=$target "$BIN" -max_total_time="$SECONDS_EACH" -max_len=8192 \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$OUT/crashes/$target/" \
    "$OUT/corpus/$target" "Tests/Fuzz/corpus/$target" >"$log" 2>&1
  rc=$?
  set -e
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  crashes=$(find "$OUT/crashes/$target" -type f | wc -l)
  corpus=$(find "$OUT/corpus/$target" -type f | wc -l)
  printf '%-8s %12s %10s %8s %8s\n' "$target" "${runs:-?}" "${rate:-?}" "$corpus" "$crashes" >> "$OUT/summary.txt"
  if [[ $rc -ne 0 ]]; then
    status=1
    echo "  $target: exit $rc — see $log"; grep -m3 -E 'INVARIANT|ERROR|Fatal error' "$log" | sed 's/^/    /' || true
  fi
done
cat "$OUT/summary.txt"
exit $status
