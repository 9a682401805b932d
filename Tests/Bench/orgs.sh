#!/usr/bin/env bash
# Config at scale (issue 13): a generated configuration of N orgs, one file per org under
# orgs.d/ (half of them with senders patterns: exact addresses, *@domain and a few globs),
# measured with the release binary at 10, 1 000 and 10 000 orgs:
#   check-config wall time and peak RSS, the relay's RSS after start, `smarthost reload` time,
#   and the cost of classifying one message by its sender (`routes --repeat`, the daemon's
#   own classifier, on a sender that matches the last org's pattern and one that matches none).
#   Tests/Bench/orgs.sh            (SMARTHOST_BIN, ORG_COUNTS="10 1000 10000")
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${SMARTHOST_BIN:-.build/release/smarthost}
counts=${ORG_COUNTS:-10 1000 10000}
work=$(mktemp -d) && trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ms() { python3 -c 'import sys,time,subprocess; t=time.perf_counter(); subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL,check=True); print(round((time.perf_counter()-t)*1000,1))' "$@"; }

printf '%-7s %-18s %-16s %-14s %-12s %-22s\n' orgs "check-config ms" "check-config RSS" "serve RSS" "reload ms" "classify ns (hit/miss)"
for n in $counts; do
    dir=$work/$n && mkdir -p "$dir/orgs.d"
    python3 - "$dir" "$n" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    lines = [f"orgs:", f"  org{i:05d}:"]
    if i % 2 == 0:
        kind = i % 6
        pattern = {0: f'"alerts@org{i}.example"', 2: f'"*@org{i}.example"', 4: f'"robot-*@org{i}.example"'}[kind]
        lines += ["    use: default", f"    senders: [{pattern}]"]
    else:
        lines += [f"    host: smtp.org{i}.example", "    port: 587", "    tls: starttls"]
    open(os.path.join(d, "orgs.d", f"{i:05d}.yaml"), "w").write("\n".join(lines) + "\n")
open(os.path.join(d, "smarthost.yaml"), "w").write(f"""listen: ["127.0.0.1:0"]
spool: {d}/spool
default: {{ host: 127.0.0.1, port: 9, tls: none }}
include: ["orgs.d/*.yaml"]
""")
PY
    config=$dir/smarthost.yaml
    check=$(for _ in 1 2 3; do ms "$bin" check-config --config "$config"; done | median)
    rss=$( { /usr/bin/time -f '%M' "$bin" check-config --config "$config" >/dev/null; } 2>&1 | tail -1)
    "$bin" serve --config "$config" 2>"$dir/log" & pid=$!
    for _ in $(seq 1 200); do grep -q started "$dir/log" && break; sleep 0.05; done
    serve_rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
    reload=$(for _ in 1 2 3; do ms "$bin" reload --config "$config"; done | median)
    kill $pid; wait $pid 2>/dev/null || true
    last=$(( (n - 1) / 2 * 2 ))   # the last org with a pattern
    case $(( last % 6 )) in 0) hit="alerts@org$last.example" ;; 2) hit="x@org$last.example" ;; *) hit="robot-7@org$last.example" ;; esac
    hit_ns=$("$bin" routes --config "$config" --sender "$hit" --repeat 200000 | sed -n 's/.* \([0-9]*\) ns per message.*/\1/p')
    miss_ns=$("$bin" routes --config "$config" --sender "nobody@nowhere.example" --repeat 200000 | sed -n 's/.* \([0-9]*\) ns per message.*/\1/p')
    printf '%-7s %-18s %-16s %-14s %-12s %-22s\n' "$n" "$check" "${rss} KiB" "${serve_rss} KiB" "$reload" "$hit_ns / $miss_ns"
done
