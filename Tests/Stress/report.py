#!/usr/bin/python3
"""Prints the stress results table from the RESULT lines under WORKDIR/*.out."""
import glob
import json
import os
import sys

work = sys.argv[1]
results = {}
for path in glob.glob(os.path.join(work, "*.out")):
    with open(path) as f:
        for line in f:
            if line.startswith("RESULT "):
                r = json.loads(line[7:])
                results[r["test"]] = r


def row(*cells):
    print("| " + " | ".join(str(c) for c in cells) + " |")


print("\n### stress results\n")
row("test", "result", "figures")
row("---", "---", "---")
if "crash" in results:
    r = results["crash"]
    row("crash (SIGKILL + restart)", "PASS" if r["ok"] else "FAIL",
        "kills %d, acked %d, delivered %d (unique %d), **lost %d**, duplicates %d, "
        "delivered without 250 %d, left in spool %s, max restart %s ms, relay alive %s"
        % (r["restarts"], r["acked"], r["delivered_total"], r["delivered_unique"], r["lost"],
           r["duplicates"], r["delivered_without_250"], r["spool_left"], r["restart_ms_max"],
           r["relay_alive_at_end"]))
if "abuse" in results:
    r = results["abuse"]
    rss = r["rss_kib"]
    row("abuse (overall)", "PASS" if r["ok"] else "FAIL",
        "relay RSS start %s KiB, peak %s KiB, end %s KiB; good client baseline p50 %s ms p99 %s ms, "
        "acked %d, lost %d, alive %s"
        % (rss.get("start"), rss.get("peak"), rss.get("end"), r["good_baseline_p50_ms"],
           r["good_baseline_p99_ms"], r["good_acked"], r["good_lost"], r["relay_alive_at_end"]))
    for ph in r["phases"]:
        row("abuse: " + ph["phase"], ("alive" if ph["good_ok"] else "STARVED") if ph["alive"] else "DIED",
            "%ss; good client %d ok / %d failed, p50 %s ms, p99 %s ms, max %s ms; RSS peak %s KiB; %s"
            % (ph["seconds"], ph["good_ok"], ph["good_failed"], ph["good_p50_ms"], ph["good_p99_ms"],
               ph["good_max_ms"], ph["rss_peak_kib"], json.dumps(ph["detail"])))
fuzz = os.path.join(work, "fuzz.out")
if os.path.exists(fuzz):
    with open(fuzz) as f:
        lines = f.read().splitlines()
    for line in lines:
        parts = line.split()
        if len(parts) == 5 and parts[0] in ("command", "data", "session", "reply"):
            row("fuzz: " + parts[0], "PASS" if parts[4] == "0" else "CRASH",
                "%s executions (%s/s), corpus %s, crashes %s" % tuple(parts[1:]))
