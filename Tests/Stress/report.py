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
        "kills %d, acked %d, delivered %d (unique %d), **lost %d**, duplicates %d "
        "(bound: %s in queue/ at the kills, at most %s at one), "
        "delivered without 250 %d, left in spool %s, max restart %s ms, relay alive %s"
        % (r["restarts"], r["acked"], r["delivered_total"], r["delivered_unique"], r["lost"],
           r["duplicates"], r.get("in_flight_at_kills", "?"), r.get("in_flight_max_one_kill", "?"),
           r["delivered_without_250"], r["spool_left"], r["restart_ms_max"],
           r["relay_alive_at_end"]))
if "upstream" in results:
    r = results["upstream"]
    row("upstream (faulty upstream)", "PASS" if r["ok"] else "FAIL",
        "%d sessions × %d messages during %ss of faults (%s); accepted %d messages, %d deliverable "
        "(message, recipient) pairs: delivered %d (%d pair deliveries before recovery), **lost %d** (%d of them "
        "dead-lettered after a temporary refusal), duplicates %d; "
        "dead letters %d: refused recipients %d, in failed/ with reason %d, **no dead letter %d**, "
        "**reason missing %d**; unexpected dead letters %d; left queued %s; queue empty %s s after recovery%s; "
        "faults injected %d over %d upstream connections; relay alive %s"
        % (r["sessions"], r["messages_per_session"], r["fault_s"], ", ".join(r["schedule"]), r["accepted"],
           r["deliverable_pairs"], r["delivered_pairs"], r["delivered_before_recovery"], r["lost"],
           r.get("lost_dead_lettered", 0), r["duplicates"],
           r["dead_letters"], r["refused_expected"], r["refused_in_failed"], r["refused_no_dead_letter"],
           r["refused_reason_missing"], len(r["unexpected_failed"]), r["queue_left"], r["drain_s"],
           " (after `queue flush` at %ss)" % r["flush"]["after_s"] if r.get("flush") else "",
           sum(r["faults_injected"].values()), r["upstream_connections"], r["relay_alive_at_end"]))
    if "throttle_replies" in r:
        row("upstream: throttling step", "PASS" if not r["throttle_dead_letters"] and r["ok"] else "FAIL",
            "upstream allowed %s, answered %d throttling replies (421 4.4.2 / 454 4.7.0); relay slowed down %d times, "
            "paced back up %d times; **dead-lettered for throttling %d**"
            % (r["throttle"], r["throttle_replies"], r["relay_log"].get("route_throttled", 0),
               r["relay_log"].get("route_pace_up", 0), r["throttle_dead_letters"]))
    for problem in r["problems"]:
        row("upstream: problem", "FAIL", problem)
    for sample in r["lost_sample"][:2] + r["refused_no_dead_letter_sample"][:2] + r["refused_reason_missing_sample"][:2]:
        row("upstream: evidence", "", sample.replace("|", "/"))
if "disk" in results:
    r = results["disk"]
    row("disk (full / unwritable spool)", "PASS" if r["ok"] else "FAIL",
        "spool on %s, relay %s; accepted %d (probes and %d background sessions), delivered %d, **lost %d**, "
        "**never attempted while running %d**, damaged %d, delivered without 250 %d, duplicates %d; "
        "left after restart %s; relay alive %s; %ss"
        % ("tmpfs %s MiB" % r["tmpfs_mib"] if r["tmpfs"] else "the work directory (no tmpfs)",
           "without CAP_DAC_OVERRIDE" if r["relay_without_dac_override"] else "as root",
           r["accepted"], r["background_sessions"], r["delivered_unique"], r["lost"], r.get("stuck", 0), len(r["damaged"]),
           r["delivered_without_250"], r["duplicates"], r["spool_left_after_restart"], r["relay_alive_at_end"],
           r["seconds"]))
    for st in r["steps"]:
        bg = ", ".join("%s ×%d" % (k, v) for k, v in sorted(st.get("background", {}).items()))
        row("disk: " + st["step"], ("ok" if st["ok"] else "FAIL") if st["alive"] else "DIED",
            "%s; expect %s; probes %d/%d accepted, replies: %s%s; background: %s%s"
            % (st["note"], st["expect"], st["accepted"], st["probes"], "; ".join(st["replies"]) or "-",
               " (at %s)" % ", ".join(st["refused_at"]) if st.get("refused_at") else "", bg or "-",
               "; " + "; ".join(st["problems"]) if st["problems"] else ""))
    for problem in r["problems"]:
        row("disk: problem", "FAIL", problem)
    for ev in r.get("stuck_evidence", []):
        row("disk: evidence", "", "%s accepted in %s; log: %s; queue list: %s; delivered after `queue flush`: %s"
            % (ev["id"], ev["accepted_in_step"], " / ".join(ev["log"]), " / ".join(ev["queue_list"]),
               ev["delivered_after_queue_flush"]))
    for warning in r["warnings"]:
        row("disk: warning", "note", warning)
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
