#!/usr/bin/python3
"""Disk stress: the spool on a small tmpfs (8 MiB, `limits.min_free_space: 1MiB`) that is
filled and made unwritable while clients submit; every reply is recorded.

Steps (each: set the condition, submit probes with a raw SMTP client, check the relay still
answers a new connection — greeting, EHLO, NOOP — and is alive, undo the condition):
  baseline          plenty of space: 250
  below_floor       a filler file leaves less than min_free_space: 452 4.3.1
  declared_too_big  MAIL … SIZE= over what is free above the floor: 452 4.3.1
  enospc_mid_data   free is above the floor but smaller than the message (no SIZE=): the
                    write fails with ENOSPC in the middle of DATA: 4xx 4.3.x after the dot
  enospc_parallel   several sessions at once, together larger than what is free: each gets
                    250 or 4xx 4.3.x, and every 250 must be delivered intact
  disk_full         the filesystem completely full (0 bytes free): 4xx 4.3.x
  space_back        filler removed: 250 again
  queue_unwritable  chmod 000 spool/queue (the relay runs without CAP_DAC_OVERRIDE, so the
                    permission applies to root): 4xx 4.3.x; chmod back: 250
  tmp_unwritable    chmod 000 spool/tmp and spool/spare (where new messages are written: a new
                    file, or a delivered one's reused): 4xx 4.3.x; chmod back: 250
  read_only         a read-only bind mount over the spool (`mount -o remount,bind,ro`;
                    a plain `remount,ro` of the tmpfs is refused while the relay holds
                    files open for writing): 4xx 4.3.x; unmounted: 250
Never a 250 for what could not be stored; at the end every 250 reaches the sink intact, no
message is left queued, no partial file is left in tmp/.
Without permission to mount, the fill steps use min_free_space above what is free instead.

usage: disk.py BINARY WORKDIR [--size-mib 8] [--seed N]"""
import argparse
import collections
import itertools
import os
import random
import re
import stat
import subprocess
import threading
import time

import stresslib

MIB = 1 << 20
NO_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]


def run(*cmd):
    done = subprocess.run(list(cmd), capture_output=True, text=True)
    return done.returncode, (done.stdout + done.stderr).strip()


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class Filler:
    """A file in the spool's filesystem that leaves about `target` bytes free."""

    def __init__(self, spool):
        self.path = os.path.join(spool, "stress-filler")

    def leave(self, target):
        self.remove()
        room = free_bytes(os.path.dirname(self.path)) - target
        chunk = b"\0" * MIB
        written = 0
        try:
            with open(self.path, "wb") as f:
                while written < room:
                    written += f.write(chunk[:min(MIB, room - written)])
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            pass        # ENOSPC: as full as it gets
        return free_bytes(os.path.dirname(self.path))

    def fill(self):
        return self.leave(0)

    def remove(self):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def enhanced(text):
    m = re.match(r"\d{3}[ -](\d\.\d{1,3}\.\d{1,3})", text or "")
    return m.group(1) if m else None


def short(transcript):
    """`MAIL 250 2.1.0 | … | <end of data> 452 4.3.1 Insufficient system storage`"""
    out = []
    for cmd, code, text in transcript:
        name = cmd.split(" ", 1)[0].split(":", 1)[0] if not cmd.startswith("<") else cmd
        last = text.split(" / ")[-1]
        out.append("%s → %s" % (name, last[:90]))
    return " | ".join(out)


class Probe:
    """One transaction through a raw SMTP client, every reply recorded."""

    def __init__(self, port, token, size, declare=False, rcpts=1):
        self.token, self.size = token, size
        self.transcript = []
        self.content = stresslib.message(token, size)
        d = stresslib.Dialogue(port, timeout=30, transcript=self.transcript)
        d.command("EHLO probe.stress")
        d.command("MAIL FROM:<stress@acme.example>" + (" SIZE=%d" % len(self.content) if declare else ""))
        for i in range(rcpts):
            d.command("RCPT TO:<sink%d@example.com>" % i)
        code, _ = d.command("DATA")
        if code == 354:
            d.data(self.content)
        d.command("QUIT")
        d.close()
        self.final = None
        for cmd, code, text in self.transcript:
            if cmd.startswith("<end of data"):
                self.final = (code, text)
        self.accepted = self.final is not None and self.final[0] == 250
        self.queue_id = self.final[1].split()[-1] if self.accepted else None
        # The first reply that stopped the transaction (not 2xx/3xx), QUIT aside.
        stop = next(((cmd, code, text) for cmd, code, text in self.transcript
                     if cmd != "QUIT" and (code is None or code >= 400)), None)
        self.refusal = stop[1:] if stop else None
        self.refused_at = (stop[0].split(" ", 1)[0].split(":", 1)[0] if not stop[0].startswith("<")
                           else stop[0].split(",")[0].strip("<>")) if stop else None

    @property
    def refused_43x(self):
        if self.accepted or self.refusal is None or self.refusal[0] is None:
            return False
        code, text = self.refusal
        return 400 <= code < 500 and (enhanced(text) or "").startswith("4.3.")

    def summary(self):
        return {"token": self.token, "size": len(self.content), "accepted": self.accepted,
                "refusal": "%s" % (self.refusal[1] if self.refusal else None), "refused_at": self.refused_at,
                "replies": short(self.transcript)}


def liveness(relay):
    t = []
    d = stresslib.Dialogue(relay.port, timeout=15, transcript=t)
    d.command("EHLO live.stress")
    d.command("NOOP")
    d.command("QUIT")
    d.close()
    codes = [c for _, c, _ in t]
    ok = len(codes) == 4 and codes[0] == 220 and codes[1] == 250 and codes[2] == 250 and relay.alive()
    return ok, short(t)


def partial_tmp_files(spool):
    """Non-empty files in tmp/ (the relay's file pool keeps empty ones there on purpose)."""
    tmp = os.path.join(spool, "tmp")
    found = {}
    try:
        for n in os.listdir(tmp):
            try:
                size = os.path.getsize(os.path.join(tmp, n))
            except OSError:
                continue
            if size > 0:
                found[n] = size
    except OSError:
        pass
    return found


_seen = {}


def sink_tokens(sink):
    """Subject token of every stored message, reading each file once."""
    for path in sink.messages():
        if path not in _seen:
            with open(path, "rb") as f:
                m = re.search(rb"^Subject: (\S+)\r?$", f.read(65536), re.M)
            _seen[path] = m.group(1).decode() if m else None
    return [t for t in _seen.values() if t]


def wait_drained(relay, sink, tokens, timeout=30, queue_empty=True):
    deadline = time.time() + timeout
    while time.time() < deadline:
        have = set(sink_tokens(sink))
        if all(t in have for t in tokens) and (not queue_empty or relay.spooled()["queue"] == 0):
            return True
        time.sleep(0.2)
    return False


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("workdir")
    p.add_argument("--size-mib", type=int, default=8)
    p.add_argument("--drain", type=float, default=30)
    p.add_argument("--hold", type=float, default=3, help="seconds each condition lasts")
    p.add_argument("--sessions", type=int, default=3, help="background sessions submitting throughout")
    p.add_argument("--seed", type=int, default=int(time.time()))
    a = p.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.workdir, exist_ok=True)
    spool = os.path.join(a.workdir, "spool")
    os.makedirs(spool, exist_ok=True)

    rc, out = run("mount", "-t", "tmpfs", "-o", "size=%dm,mode=0700" % a.size_mib, "tmpfs", spool)
    mounted = rc == 0
    no_dac = run(*NO_DAC, "true")[0] == 0
    sink = stresslib.Sink(os.path.join(a.workdir, "sink"))
    relay = None
    bind_mounted = False
    steps = []
    accepted = {}               # token -> (queue id, step, content)
    started = time.time()
    filler = Filler(spool)
    seq = itertools.count(1)
    lock = threading.Lock()

    def token(prefix="disk"):
        return "%s-%d" % (prefix, next(seq))

    # Background load: sessions that keep submitting through every step. Their messages may
    # straddle a change of condition, so each may get 250 or a 4xx 4.3.x — never anything else —
    # and every 250 must be delivered intact.
    current = ["setup"]
    background = collections.defaultdict(collections.Counter)   # step -> reply -> count
    background_bad = []
    bg_stop = threading.Event()
    bg_pause = threading.Event()
    bg_active = [0]

    def bg_worker(n):
        wrng = random.Random(a.seed * 100 + n)
        while not bg_stop.is_set():
            with lock:
                paused = bg_pause.is_set()
                if not paused:
                    bg_active[0] += 1
            if paused:
                time.sleep(0.05)
                continue
            name = current[0]
            try:
                pr = Probe(relay.port, token("bg%d" % n), wrng.choice([2, 40, 150, 400]) * 1024)
            finally:
                with lock:
                    bg_active[0] -= 1
            with lock:
                if pr.accepted:
                    accepted[pr.token] = (pr.queue_id, name, pr.content)
                    background[name]["250"] += 1
                else:
                    reply = pr.refusal[1] if pr.refusal else "?"
                    background[name]["%s at %s" % (reply.split(" / ")[-1][:60], pr.refused_at)] += 1
                    if not pr.refused_43x:
                        background_bad.append("%s (step %s): %s" % (pr.token, name, short(pr.transcript)))
            time.sleep(wrng.uniform(0.02, 0.1))

    def quiesce():
        """Background paused and the queue empty, so the free space set next only shrinks:
        what the step's sessions get accepted is delivered again before the next step."""
        bg_pause.set()
        deadline = time.time() + 30
        while time.time() < deadline:
            if not bg_active[0]:
                if relay.spooled()["queue"] == 0:
                    break
                # a delivered message the relay could not remove stays in queue/: do not wait for it
                have = set(sink_tokens(sink))
                with lock:
                    if all(t in have for t in accepted):
                        break
            time.sleep(0.05)

    def resume():
        bg_pause.clear()

    def step(name, expect, probes_fn, note="", tmp_writable=True):
        """Runs probes under the current condition, which holds for `--hold` seconds; expect is
        "accept", "refuse" or "either"."""
        before = partial_tmp_files(spool)
        t0 = time.time()
        current[0] = name
        probes = probes_fn()
        time.sleep(max(0.2, a.hold - (time.time() - t0)))   # the background load meets the condition too
        problems = []
        for pr in probes:
            if pr.accepted:
                accepted[pr.token] = (pr.queue_id, name, pr.content)
            if expect == "accept" and not pr.accepted:
                problems.append("%s not accepted: %s" % (pr.token, pr.refusal))
            if expect == "refuse" and pr.accepted:
                problems.append("%s got 250 (%s) although the spool could not take it" % (pr.token, pr.final[1]))
            if expect in ("refuse", "either") and not pr.accepted and not pr.refused_43x:
                problems.append("%s refused without a 4xx 4.3.x: %s" % (pr.token, pr.refusal))
        live, live_replies = liveness(relay)
        if not live:
            problems.append("relay does not answer a new session / is not alive: %s" % live_replies)
        # Partial files that appeared in tmp/ during the step; those still there at the end were
        # left behind by refused messages (a background message in flight is there for a moment).
        left = {n: b for n, b in partial_tmp_files(spool).items() if n not in before}
        entry = {"step": name, "expect": expect, "note": note, "free_bytes": free_bytes(spool),
                 "tmp_left": left, "tmp_writable": tmp_writable, "refused_at": sorted({p.refused_at for p in probes if p.refused_at}),
                 "probes": [pr.summary() for pr in probes], "liveness": live_replies, "alive": relay.alive(),
                 "problems": problems, "ok": not problems}
        steps.append(entry)
        print("-- %s (expect %s; %s; %d bytes free)" % (name, expect, note, entry["free_bytes"]), flush=True)
        for pr in probes:
            print("   %s %dB: %s" % (pr.token, len(pr.content), short(pr.transcript)), flush=True)
        print("   liveness: %s%s" % (live_replies, "" if live else "  ** NOT ALIVE **"), flush=True)
        if left:
            print("   partial files in tmp/ at the end of the step: %d (%d bytes)" % (len(left), sum(left.values())), flush=True)
        for prob in problems:
            print("   PROBLEM: " + prob, flush=True)
        return entry

    try:
        relay = stresslib.Relay(a.binary, a.workdir, sink.port, min_free_space="1MiB",
                                wrapper=NO_DAC if no_dac else ())
        relay.start()
        floor = 1 * MIB
        print("spool %s: %s; relay %s" % (spool, "tmpfs %d MiB" % a.size_mib if mounted else "NOT mounted (%s)" % out,
                                          "without CAP_DAC_OVERRIDE" if no_dac else "as plain root"), flush=True)

        bg_threads = [threading.Thread(target=bg_worker, args=(i,), daemon=True) for i in range(a.sessions)]
        for t in bg_threads:
            t.start()
        step("baseline", "accept", lambda: [Probe(relay.port, token(), 4096), Probe(relay.port, token(), 300 * 1024)],
             "free space plenty")
        wait_drained(relay, sink, [t for t in list(accepted) if t.startswith("disk-")], queue_empty=False)

        if mounted:
            quiesce()
            left = filler.leave(floor // 2)
            resume()
            step("below_floor", "refuse", lambda: [Probe(relay.port, token(), 1024), Probe(relay.port, token(), 1024)],
                 "filler leaves %d KiB, floor 1024 KiB" % (left // 1024))
            quiesce()
            left = filler.leave(floor + 512 * 1024)
            resume()
            step("declared_too_big", "refuse", lambda: [Probe(relay.port, token(), 2 * MIB, declare=True)],
                 "%d KiB free, MAIL SIZE= 2 MiB" % (left // 1024))
            quiesce()
            left = filler.leave(floor + 512 * 1024)
            resume()
            step("enospc_mid_data", "refuse",
                 lambda: [Probe(relay.port, token(), 3 * MIB), Probe(relay.port, token(), 2 * MIB, rcpts=3)],
                 "%d KiB free (above the floor), 2-3 MiB messages without SIZE=" % (left // 1024))
            quiesce()
            left = filler.leave(floor + 1536 * 1024)
            resume()

            def parallel():
                out = [None] * 6
                def one(i):
                    out[i] = Probe(relay.port, token(), rng.choice([300, 500, 700]) * 1024)
                ts = [threading.Thread(target=one, args=(i,)) for i in range(6)]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join()
                return out
            step("enospc_parallel", "either", parallel,
                 "%d KiB free, 6 sessions × 300-700 KiB at once" % (left // 1024))
            quiesce()
            left = filler.fill()
            resume()
            step("disk_full", "refuse", lambda: [Probe(relay.port, token(), 1024), Probe(relay.port, token(), 200 * 1024)],
                 "filesystem full, %d bytes free" % left)
            filler.remove()
        else:
            # No tmpfs: the floor above what is free stands in for a full disk.
            quiesce()
            relay.stop()
            relay = stresslib.Relay(a.binary, a.workdir, sink.port,
                                    min_free_space="%dMiB" % (free_bytes(spool) // MIB + 1024),
                                    wrapper=NO_DAC if no_dac else ())
            relay.start()
            resume()
            step("below_floor", "refuse", lambda: [Probe(relay.port, token(), 1024)],
                 "no tmpfs: min_free_space set above the free space")
            quiesce()
            relay.stop()
            relay = stresslib.Relay(a.binary, a.workdir, sink.port, min_free_space="1MiB",
                                    wrapper=NO_DAC if no_dac else ())
            relay.start()
            resume()
        step("space_back", "accept", lambda: [Probe(relay.port, token(), 1024), Probe(relay.port, token(), 1 * MIB)],
             "filler removed, %d KiB free" % (free_bytes(spool) // 1024))
        wait_drained(relay, sink, [t for t in list(accepted) if t.startswith("disk-")], queue_empty=False)

        for area, directories in (("queue", ["queue"]), ("tmp", ["tmp", "spare"])):
            paths = [os.path.join(spool, d) for d in directories]
            names = " and ".join("spool/" + d for d in directories)
            for path in paths:
                os.chmod(path, 0)
            try:
                step("%s_unwritable" % area, "refuse" if no_dac else "either",
                     lambda: [Probe(relay.port, token(), 1024), Probe(relay.port, token(), 64 * 1024)],
                     "chmod 000 %s%s" % (names, "" if no_dac else " (relay has CAP_DAC_OVERRIDE: no effect expected)"),
                     tmp_writable=area != "tmp")
            finally:
                for path in paths:
                    os.chmod(path, 0o700)
            step("%s_writable_again" % area, "accept", lambda: [Probe(relay.port, token(), 1024)],
                 "chmod 700 %s" % names)
            wait_drained(relay, sink, [t for t in list(accepted) if t.startswith("disk-")], queue_empty=False)

        # Remounting read-only fails (EBUSY) while a file is open for writing through the new
        # mount: pause the background load first, and retry.
        quiesce()
        for _ in range(10):
            rc1, out1 = run("mount", "--bind", spool, spool)
            rc2, out2 = run("mount", "-o", "remount,bind,ro", spool) if rc1 == 0 else (1, "")
            bind_mounted = rc1 == 0
            if rc2 == 0 or rc1 != 0:
                break
            run("umount", spool)
            bind_mounted = False
            time.sleep(0.3)
        resume()
        if rc2 == 0:
            try:
                step("read_only", "refuse", lambda: [Probe(relay.port, token(), 1024), Probe(relay.port, token(), 64 * 1024)],
                     "read-only bind mount over the spool", tmp_writable=False)
            finally:
                rc3, out3 = run("umount", spool)
                if rc3 != 0:
                    run("umount", "-l", spool)
                bind_mounted = False
            step("read_write_again", "accept", lambda: [Probe(relay.port, token(), 1024)], "bind mount removed")
        else:
            steps.append({"step": "read_only", "expect": "refuse", "note": "skipped: %s %s" % (out1, out2),
                          "probes": [], "problems": [], "ok": True, "alive": relay.alive(), "liveness": "", "free_bytes": 0})
            if bind_mounted:
                run("umount", spool)
                bind_mounted = False

        current[0] = "end"
        bg_stop.set()
        for t in bg_threads:
            t.join(timeout=60)
        drained = wait_drained(relay, sink, list(accepted), timeout=a.drain, queue_empty=False)
        wait_drained(relay, sink, [], timeout=5)
        # What is still in queue/ now is either delivered but not recorded (a spool update failed,
        # e.g. markDelivered while queue/ was unwritable: delivered again after a restart), or a
        # message that got 250 and was never delivered by the running relay ("stuck").
        at_sink = set(sink_tokens(sink))
        token_of = {q: t for t, (q, _, _) in accepted.items()}
        stale = sorted(n for n in os.listdir(os.path.join(spool, "queue")) if not n.startswith(".") and "." not in n)
        stuck = [i for i in stale if token_of.get(i) not in at_sink]
        unrecorded = [i for i in stale if i not in stuck]
        log = relay.log_text()
        stuck_evidence = []
        if stuck:
            listing = relay.queue_cli("list")[1]
            flush = relay.queue_cli("flush")
            time.sleep(3)
            after_flush = set(sink_tokens(sink))
            for i in stuck:
                step_of = accepted.get(token_of.get(i), (None, "?"))[1]
                stuck_evidence.append({
                    "id": i, "token": token_of.get(i), "accepted_in_step": step_of,
                    "log": [ln[:220] for ln in log.splitlines() if i in ln],
                    "queue_list": [ln for ln in listing.splitlines() if ln.startswith(i)],
                    "delivered_after_queue_flush": token_of.get(i) in after_flush,
                    "flush_output": (flush[1] + flush[2]).strip()[:120]})
            for ev in stuck_evidence:
                print("STUCK: %s" % ev, flush=True)
        relay_alive = relay.alive()
        tmp_before_restart = partial_tmp_files(spool)
        # A restart on the same spool: recovery must clear what the faults left in tmp/, and
        # whatever was left in queue/ is delivered (again).
        relay.stop()
        relay.start()
        restart_live, restart_replies = liveness(relay)
        wait_drained(relay, sink, [], timeout=15)
        spooled = relay.spooled()
        tmp_partial = partial_tmp_files(spool)
        relay_alive = relay_alive and relay.alive()
        log = relay.log_text()
        print("-- end: queue/ held %d delivered-but-unrecorded messages %s and %d never-delivered ones %s; "
              "tmp/ held %d partial files (%d bytes) before a restart, %d after; after the restart: %s"
              % (len(unrecorded), unrecorded[:5], len(stuck), stuck[:5], len(tmp_before_restart),
                 sum(tmp_before_restart.values()), len(tmp_partial), restart_replies), flush=True)
    finally:
        bg_stop.set()
        filler.remove()
        if relay is not None:
            relay.stop()
        sink.stop()
        if bind_mounted:
            run("umount", "-l", spool)
        if mounted:
            if run("umount", spool)[0] != 0:
                run("umount", "-l", spool)

    # Every 250 delivered, intact.
    delivered = collections.Counter(sink.tokens())
    lost = sorted("%s (id %s, step %s)" % (t, q, s) for t, (q, s, _) in accepted.items() if t not in delivered)
    damaged = []
    bodies = {}
    for path in sink.messages():
        with open(path, "rb") as f:
            data = f.read()
        m = re.search(rb"^Subject: (\S+)\r?$", data[:65536], re.M)
        if m:
            bodies[m.group(1).decode()] = data
    for t, (q, s, content) in accepted.items():
        data = bodies.get(t)
        if data is not None and not data.endswith(content.split(b"\r\n\r\n", 1)[1]):
            damaged.append("%s (id %s, step %s): %d bytes at the sink" % (t, q, s, len(data)))
    delivered_unacked = sorted(t for t in delivered if t not in accepted)
    duplicates = sum(c - 1 for c in delivered.values() if c > 1)
    spool_errors = [ln for ln in log.splitlines() if re.search(r"spool update failed|quarantin|^<[0-2]>", ln)
                    and "quarantined=0" not in ln]

    print("-- background sessions, replies per step:", flush=True)
    for s_ in steps:
        print("   %-22s %s" % (s_["step"], dict(background.get(s_["step"], {}))), flush=True)
    problems = ["%s: %s" % (s["step"], pr) for s in steps for pr in s["problems"]]
    if lost:
        problems.append("lost %d messages that got 250" % len(lost))
    if damaged:
        problems.append("%d messages damaged" % len(damaged))
    if delivered_unacked:
        problems.append("%d messages delivered that never got 250" % len(delivered_unacked))
    if not drained or spooled["queue"]:
        problems.append("not drained: spool %s" % spooled)
    # Not the phase's assertions, but worth an operator's attention: shown as warnings.
    if stuck:
        problems.append("%d messages got 250 but the running relay never tried to deliver them (no log line after "
                        "`accepted`; `queue flush` delivered %d of them; the rest only after a restart): %s"
                        % (len(stuck), sum(e["delivered_after_queue_flush"] for e in stuck_evidence),
                           ", ".join("%s (step %s)" % (e["id"], e["accepted_in_step"]) for e in stuck_evidence[:5])))
    for s_ in steps:
        leaked = {n: b for n, b in s_.get("tmp_left", {}).items() if n in tmp_before_restart}
        s_["tmp_leaked"] = len(leaked)
        if leaked and s_.get("tmp_writable", True):
            problems.append("%s: %d partial files left in tmp/ although tmp/ was writable (%d bytes)"
                            % (s_["step"], len(leaked), sum(leaked.values())))
    warnings = []
    if unrecorded:
        warnings.append("%d delivered messages stayed in queue/ until a restart (spool update failed), "
                        "then were delivered again" % len(unrecorded))
    if tmp_before_restart:
        after_fix = sum(v for s_ in steps if s_["step"] in ("tmp_writable_again", "read_write_again")
                        for k, v in background.get(s_["step"], {}).items() if k != "250")
        warnings.append("%d refused messages' partial files (%d KiB of the %s MiB spool) stayed in tmp/ until a "
                        "restart; after the faults were undone %d background messages were still refused"
                        % (len(tmp_before_restart), sum(tmp_before_restart.values()) // 1024, a.size_mib, after_fix))
    refused_late = sorted({"%s: %s" % (s_["step"], at) for s_ in steps for at in s_.get("refused_at", [])
                           if at == "end of data" and s_["step"] in ("below_floor", "declared_too_big", "disk_full")})
    if refused_late:
        warnings.append("452 only after the whole DATA was sent, even with SIZE= declared / the floor already "
                        "crossed at MAIL (RFC 1870 allows 452 at MAIL): " + ", ".join(refused_late))
    for w in warnings:
        print("WARNING: " + w, flush=True)
    if background_bad:
        problems.append("%d background messages refused without a 4xx 4.3.x: %s" % (len(background_bad), background_bad[:3]))
    if tmp_partial:
        problems.append("%d partial files still in tmp/ after a restart (%d bytes)" % (len(tmp_partial), sum(tmp_partial.values())))
    if not restart_live:
        problems.append("relay did not come back after a restart: %s" % restart_replies)
    if not relay_alive:
        problems.append("relay died")
    for pr in problems:
        print("PROBLEM: " + pr, flush=True)

    result = {
        "test": "disk", "seed": a.seed, "tmpfs": mounted, "tmpfs_mib": a.size_mib if mounted else None,
        "relay_without_dac_override": no_dac,
        "steps": [{k: s[k] for k in ("step", "expect", "note", "ok", "alive", "problems")}
                  | {"replies": sorted({p["refusal"] if not p["accepted"] else "250" for p in s["probes"]}),
                     "refused_at": s.get("refused_at", []), "tmp_leaked": s.get("tmp_leaked", 0),
                     "accepted": sum(p["accepted"] for p in s["probes"]), "probes": len(s["probes"]),
                     "liveness": s["liveness"], "background": dict(background.get(s["step"], {}))} for s in steps],
        "background_sessions": a.sessions, "background_bad": background_bad[:10],
        "accepted": len(accepted), "delivered_unique": len(delivered), "lost": len(lost), "lost_sample": lost[:10],
        "damaged": damaged[:10], "delivered_without_250": len(delivered_unacked), "duplicates": duplicates,
        "spool_left_after_restart": spooled, "tmp_partial_before_restart": len(tmp_before_restart),
        "tmp_partial_bytes_before_restart": sum(tmp_before_restart.values()),
        "tmp_partial_after_restart": len(tmp_partial), "relay_error_lines": spool_errors[:8],
        "seconds": round(time.time() - started, 1), "relay_alive_at_end": relay_alive,
        "unrecorded_in_queue": len(unrecorded), "stuck": len(stuck), "stuck_evidence": stuck_evidence[:5],
        "warnings": warnings,
        "problems": problems, "ok": not problems,
    }
    stresslib.emit(result)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
