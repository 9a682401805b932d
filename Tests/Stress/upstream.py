#!/usr/bin/python3
"""Upstream-fault stress: the relay delivers to a fault-injecting upstream written here (no
real server injects these faults on demand). While N sessions submit M messages, each to a
few recipients, the upstream in turn goes away (port closed), answers 421 at connect, 451 /
454 at EHLO, MAIL, RCPT, DATA and after the body, cuts the connection in the middle of a
reply line, and stalls past the route's `timeout`; recipients whose local part starts with
`reject` always get 550 5.1.1. Then the upstream becomes healthy.
In its `throttle` step (issue 15) it takes at most THROTTLE_LIMIT messages per
THROTTLE_WINDOW seconds and answers MAIL past that as the providers do: Microsoft 365's
`421 4.4.2 … rate … exceeded` and a hang-up, or Amazon SES's `454 4.7.0 Throttling failure`.

Checks: every (message, deliverable recipient) that got 250 from the relay arrives at the
upstream at least once (lost = 0); every refused recipient of an accepted message ends in
`failed/` with the upstream's reply (`smarthost queue list --failed --json`); no message is
left queued; the relay stays up; nothing is dead-lettered for throttling, and when the
upstream throttled, the relay logged that it slowed the route down. Duplicates are counted
(only an absurd number fails).
Reported: accepted, delivered, failed with reason, duplicates, time to drain after recovery.

usage: upstream.py BINARY WORKDIR [--sessions 8] [--messages 15] [--seed N]"""
import argparse
import asyncio
import collections
import os
import random
import re
import smtplib
import threading
import time

import stresslib

ROUTE_TIMEOUT_S = 2          # route `timeout`: a stall lasts longer than this
RETRY_MIN, RETRY_MAX = 1, 4  # queue.retry_min / retry_max, seconds

# (mode, seconds): the upstream's behaviour in turn; then healthy for good. `throttle` comes
# early: a slowed route takes a while (10 s per step) to come back to full pace.
SCHEDULE = [("down", 5), ("throttle", 8), ("421", 4), ("errors", 7), ("cut", 7), ("stall", 8),
            ("down", 3), ("errors", 5), ("cut", 4)]

THROTTLE_LIMIT, THROTTLE_WINDOW = 4, 2.0   # messages per sliding window (seconds)
THROTTLING = [("421 4.4.2 Message submission rate for this client has exceeded the configured limit", True),
              ("454 4.7.0 Throttling failure: Maximum sending rate exceeded", False)]   # (reply, hang up)

TEMPORARY = ["451 4.3.0 fault: local error in processing (stress)",
             "454 4.7.0 fault: temporary authentication failure (stress)",
             "451 4.4.1 fault: no answer from next hop (stress)"]


class FaultUpstream:
    """An SMTP server on a fixed loopback port, in its own thread (asyncio). `mode` is read
    at every connection and command; `set_mode("down")` closes the listener and drops every
    connection, any other mode listens again on the same port."""

    PROBABILITY = {"errors": 0.18, "cut": 0.15, "stall": 0.15}

    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.mode = "healthy"
        self.received = collections.Counter()      # (token, recipient) -> times stored
        self.last_arrival = {}                     # (token, recipient) -> time of first arrival
        self.stored_while = collections.Counter()  # mode -> messages stored in that mode
        self.faults = collections.Counter()        # "cut@rcpt" -> times injected
        self.corrupt = []                          # tokens whose body did not end with the token
        self.unknown = 0                           # stored messages without a token
        self.notices = 0                           # the relay's failure notices (RFC 3464) to the sender
        self.connections = 0
        self.taken = []                            # throttle: when each counted MAIL was taken
        self.rcpt_replies = collections.defaultdict(list)   # address -> every reply (or fault) its RCPT got
        self.lock = threading.Lock()
        self.writers = set()
        self.server = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = 0
        self._call(self._listen())

    def _call(self, coroutine, timeout=10):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def _listen(self):
        for _ in range(50):
            try:
                self.server = await asyncio.start_server(self.handle, "127.0.0.1", self.port,
                                                         reuse_address=True)
                self.port = self.server.sockets[0].getsockname()[1]
                return
            except OSError:
                await asyncio.sleep(0.1)
        raise RuntimeError("could not listen again on 127.0.0.1:%d" % self.port)

    async def _down(self):
        if self.server is not None:
            self.server.close()
            self.server = None
        for w in list(self.writers):
            w.transport.abort()

    def set_mode(self, mode):
        if mode == "down":
            self._call(self._down())
        elif self.server is None:
            self._call(self._listen())
        self.mode = mode

    def stop(self):
        try:
            self._call(self._down())
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)

    # one connection

    async def handle(self, reader, writer):
        self.writers.add(writer)
        self.connections += 1
        try:
            await self.session(reader, writer)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            self.writers.discard(writer)
            writer.transport.abort()

    async def fault(self, stage, writer, normal, body=None):
        """Maybe injects the current mode's fault at `stage` instead of `normal`. Returns
        "closed" (the caller stops), "replied" (a temporary reply went out) or None."""
        mode = self.mode
        p = self.PROBABILITY.get(mode, 0)
        if not p or self.rng.random() >= p:
            return None
        if mode == "errors":
            if stage == "connect":
                return None
            writer.write((self.rng.choice(TEMPORARY) + "\r\n").encode())
            await writer.drain()
            self.faults["%s@%s" % (mode, stage)] += 1
            return "replied"
        if body is not None and self.rng.random() < 0.5:
            # The upstream took the message and only its reply is lost: a retry duplicates it.
            self.store(body, mode + "-stored")
            stage += "+stored"
        self.faults["%s@%s" % (mode, stage)] += 1
        if mode == "cut":
            line = normal.encode()
            writer.write(line[:max(1, len(line) // 2)])
            await writer.drain()
        else:   # stall past the route's timeout, then go away
            await asyncio.sleep(ROUTE_TIMEOUT_S * 2 + 1)
        return "closed"

    def over_limit(self):
        """Takes a slot in the throttle window, or says the limit is reached."""
        now = time.time()
        with self.lock:
            while self.taken and now - self.taken[0] >= THROTTLE_WINDOW:
                self.taken.pop(0)
            if len(self.taken) >= THROTTLE_LIMIT:
                return True
            self.taken.append(now)
            return False

    async def send(self, writer, text):
        writer.write((text + "\r\n").encode())
        await writer.drain()

    async def session(self, reader, writer):
        if self.mode == "421":
            self.faults["421@connect"] += 1
            await self.send(writer, "421 4.3.2 fault: service not available, closing (stress)")
            return
        greeting = "220 upstream.stress ESMTP fault injector"
        if await self.fault("connect", writer, greeting):
            return
        await self.send(writer, greeting)
        rcpts = []
        mail = False
        while True:
            line = await asyncio.wait_for(reader.readline(), 120)
            if not line:
                return
            text = line.decode(errors="replace").rstrip("\r\n")
            verb = text.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                normal = ("250-upstream.stress\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                          "250-ENHANCEDSTATUSCODES\r\n250 SIZE 104857600") if verb == "EHLO" else "250 upstream.stress"
                got = await self.fault("ehlo", writer, normal)
                if got == "closed":
                    return
                if not got:
                    await self.send(writer, normal)
            elif verb == "MAIL":
                if self.mode == "throttle" and self.over_limit():
                    reply, hang_up = self.rng.choice(THROTTLING)
                    self.faults["throttle@mail %s" % reply[:3]] += 1
                    await self.send(writer, reply)
                    if hang_up:
                        return
                    continue
                got = await self.fault("mail", writer, "250 2.1.0 Ok")
                if got == "closed":
                    return
                if not got:
                    mail, rcpts = True, []
                    await self.send(writer, "250 2.1.0 Ok")
            elif verb == "RCPT":
                m = re.search(r"<([^>]*)>", text)
                address = m.group(1) if m else ""
                if not mail:
                    await self.send(writer, "503 5.5.1 MAIL first")
                elif address.lower().startswith("reject"):
                    self.rcpt_replies[address.lower()].append("550")
                    await self.send(writer, "550 5.1.1 <%s>: recipient rejected (stress)" % address)
                else:
                    got = await self.fault("rcpt", writer, "250 2.1.5 Ok")
                    self.rcpt_replies[address.lower()].append(
                        {None: "250", "closed": "%s (closed)" % self.mode, "replied": "4xx"}[got])
                    if got == "closed":
                        return
                    if not got:
                        rcpts.append(address)
                        await self.send(writer, "250 2.1.5 Ok")
            elif verb == "DATA":
                if not rcpts:
                    await self.send(writer, "554 5.5.1 no valid recipients")
                    continue
                got = await self.fault("data", writer, "354 End data with <CR><LF>.<CR><LF>")
                if got == "closed":
                    return
                if got:
                    mail, rcpts = False, []
                    continue
                await self.send(writer, "354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while True:
                    chunk = await asyncio.wait_for(reader.readline(), 120)
                    if not chunk:
                        return
                    if chunk in (b".\r\n", b".\n"):
                        break
                    lines.append(chunk[1:] if chunk.startswith(b".") else chunk)
                body = (b"".join(lines), list(rcpts))
                mail, rcpts = False, []
                got = await self.fault("eod", writer, "250 2.0.0 Ok: queued", body=body)
                if got == "closed":
                    return
                if not got:
                    self.store(body, self.mode)
                    await self.send(writer, "250 2.0.0 Ok: queued")
            elif verb == "RSET":
                mail, rcpts = False, []
                await self.send(writer, "250 2.0.0 Ok")
            elif verb == "NOOP":
                await self.send(writer, "250 2.0.0 Ok")
            elif verb == "QUIT":
                await self.send(writer, "221 2.0.0 Bye")
                return
            else:
                await self.send(writer, "502 5.5.2 command not implemented")

    def store(self, body, mode):
        content, rcpts = body
        m = re.search(rb"^Subject: (\S+)\r?$", content[:65536], re.M)
        now = time.time()
        with self.lock:
            self.stored_while[mode] += 1
            # A dead letter (the `reject…` recipients) sends its sender a failure notice
            # through the same route: not one of the test's messages, and not corrupt.
            if re.search(rb"^Content-Type: multipart/report; report-type=delivery-status", content[:65536], re.M | re.I):
                self.notices += 1
                return
            if not m:
                self.unknown += 1
                return
            token = m.group(1).decode()
            if not content.rstrip(b"\r\n").endswith(token.encode()):
                self.corrupt.append(token)
            for r in rcpts:
                key = (token, r.lower())
                self.received[key] += 1
                self.last_arrival.setdefault(key, now)


def recipients_for(rng, token):
    """A few deliverable recipients; some messages add a `reject…` one, a few have only those."""
    pick = rng.random()
    if pick < 0.1:
        return ["reject-a-%s@example.com" % token, "reject-b-%s@example.net" % token]
    rcpts = ["%s-%s@example.%s" % (name, token, tld)
             for name, tld in rng.sample([("alice", "com"), ("bob", "net"), ("carol", "org"), ("dave", "com")],
                                         rng.randint(1, 3))]
    if pick < 0.45:
        rcpts.insert(rng.randrange(len(rcpts) + 1), "reject-%s@example.org" % token)
    return rcpts


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("workdir")
    p.add_argument("--sessions", type=int, default=8)
    p.add_argument("--messages", type=int, default=15, help="per session")
    p.add_argument("--drain", type=float, default=60)
    p.add_argument("--seed", type=int, default=int(time.time()))
    a = p.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.workdir, exist_ok=True)

    upstream = FaultUpstream(a.seed)
    relay = stresslib.Relay(a.binary, a.workdir, upstream.port, route_timeout="%ds" % ROUTE_TIMEOUT_S,
                            queue="  retry_min: %ds\n  retry_max: %ds\n  max_age: 1d\n" % (RETRY_MIN, RETRY_MAX))
    relay.start()

    fault_seconds = sum(s for _, s in SCHEDULE)
    acked = {}                  # token -> (queue id, recipients)
    errors = collections.Counter()
    lock = threading.Lock()

    def worker(n):
        wrng = random.Random(a.seed * 1000 + n)
        gap = fault_seconds * 0.9 / max(1, a.messages)
        time.sleep(wrng.uniform(0, gap))
        for seq in range(a.messages):
            token = "up-%d-%d" % (n, seq)
            rcpts = recipients_for(wrng, token)
            try:
                with smtplib.SMTP("127.0.0.1", relay.port, timeout=30) as s:
                    s.ehlo("stress.test")
                    s.mail("stress@acme.example")
                    for r in rcpts:
                        s.rcpt(r)
                    code, reply = s.data(stresslib.message(token, size=wrng.choice([600, 2048, 20000])))
                    if code == 250:
                        with lock:
                            acked[token] = (reply.decode().split()[-1], rcpts)
                    else:
                        errors["data %d" % code] += 1
            except Exception as e:
                with lock:
                    errors[type(e).__name__] += 1
            time.sleep(wrng.uniform(0.5, 1.5) * gap)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(a.sessions)]
    started = time.time()
    for t in threads:
        t.start()
    modes = []
    for mode, seconds in SCHEDULE:
        upstream.set_mode(mode)
        modes.append(mode)
        time.sleep(seconds)
    for t in threads:
        t.join(timeout=60)
    submitting = [t for t in threads if t.is_alive()]
    upstream.set_mode("healthy")
    recovered = time.time()
    fault_elapsed = recovered - started
    received_before_recovery = sum(upstream.received.values())

    with lock:
        accepted = dict(acked)
    deliverable = {(tok, r.lower()) for tok, (_, rcpts) in accepted.items() for r in rcpts
                   if not r.lower().startswith("reject")}
    refused_expected = {(tok, r.lower()) for tok, (_, rcpts) in accepted.items() for r in rcpts
                        if r.lower().startswith("reject")}

    # Drain: the relay retries on its own (retry_max is short); one `queue flush` if it lags.
    flushed = None
    drained = None
    queue_left = None
    deadline = recovered + a.drain
    while time.time() < deadline:
        with upstream.lock:
            missing = [k for k in deliverable if k not in upstream.received]
        queue_left = relay.queue_json()
        if queue_left == []:
            # Nothing left to try: whatever is missing now never comes.
            drained = time.time()
            break
        if flushed is None and time.time() - recovered > RETRY_MAX * 2 + ROUTE_TIMEOUT_S:
            flushed = relay.queue_cli("flush")[0:2]
            flushed = {"after_s": round(time.time() - recovered, 1), "exit": flushed[0],
                       "output": flushed[1].strip()[:200]}
        time.sleep(0.25)
    if drained is None:
        queue_left = relay.queue_json()
    time.sleep(0.5)
    failed_list = relay.queue_json(failed=True) or []
    relay_alive = relay.alive()
    status = relay.queue_cli("status")[1].strip()
    log = relay.log_text()
    relay.stop()
    upstream.stop()

    with upstream.lock:
        received = collections.Counter(upstream.received)
    failed_ids = {f.get("id"): f for f in failed_list}
    lost = sorted("%s <%s> (id %s): %s; the upstream answered its RCPT: %s" % (
        tok, r, accepted[tok][0],
        "in failed/ with reason %r" % (failed_ids[accepted[tok][0]].get("failure") or "")[:160]
        if accepted[tok][0] in failed_ids else "not in the spool at all",
        ", ".join(upstream.rcpt_replies.get(r, [])) or "never asked")
        for tok, r in deliverable if (tok, r) not in received)
    lost_dead_lettered = sum(1 for line in lost if "in failed/" in line)
    duplicates = sum(c - 1 for k, c in received.items() if k in deliverable and c > 1)
    delivered_pairs = sum(1 for k in deliverable if k in received)
    received_unacked = sorted({tok for tok, _ in received if tok not in accepted})

    # failed/: one dead letter per accepted message that had a refused recipient, naming
    # every refused recipient with the upstream's 550. Two ways to miss: no dead letter at all
    # (the refusal vanished), or a dead letter whose reason names another recipient only.
    by_id = {f.get("id"): f for f in failed_list}
    id_to_token = {qid: tok for tok, (qid, _) in accepted.items()}
    log_by_id = collections.defaultdict(list)
    for ln in log.splitlines():
        m = re.search(r" id=(\S+)", ln)
        if m:
            log_by_id[m.group(1)].append(ln)
    no_dead_letter, reason_missing = [], []
    refused_found = 0
    for tok, r in sorted(refused_expected):
        qid = accepted[tok][0]
        entry = by_id.get(qid)
        reason = (entry or {}).get("failure") or ""
        if entry is not None and r in reason.lower() and "550" in reason:
            refused_found += 1
        elif entry is None:
            last = log_by_id[qid][-1] if log_by_id[qid] else "(no log line)"
            no_dead_letter.append("%s <%s>: the upstream answered its RCPT %s; no dead letter, relay log "
                                  "mentions the address %d times; last log line for the id: %s"
                                  % (qid, r, ", ".join(upstream.rcpt_replies.get(r, [])) or "never",
                                     log.lower().count(r), last[:300]))
        else:
            reason_missing.append("%s <%s>: dead letter reason is %r" % (qid, r, reason[:200]))
    unexpected_failed = ["%s: %s" % (f.get("id"), (f.get("failure") or "")[:160]) for f in failed_list
                         if not any(tok == id_to_token.get(f.get("id")) for tok, _ in refused_expected)]
    throttle_replies = sum(c for k, c in upstream.faults.items() if k.startswith("throttle@"))
    throttle_dead = ["%s: %s" % (f.get("id"), (f.get("failure") or "")[:160]) for f in failed_list
                     if re.search(r"throttl|submission rate|sending rate", f.get("failure") or "", re.I)]
    reasons = collections.Counter(re.sub(r"<[^>]*>", "<…>", re.sub(r"reject\S*@\S*", "reject…", f.get("failure") or "?"))[:120]
                                  for f in failed_list)
    # What the relay itself logged about the faults.
    log_counts = {k: len(re.findall(pat, log, re.M)) for k, pat in [
        ("deferred", r"^<\d>deferred "), ("route_down", r"^<\d>route down "),
        ("possible_duplicate", r"possible_duplicate=yes"), ("delivered", r"^<\d>delivered "),
        ("failed", r"^<\d>failed "), ("spool_update_failed", r"spool update failed"),
        ("route_throttled", r"^<\d>route throttled: slowing down "), ("route_pace_up", r"^<\d>route pace up ")]}
    fatal = [ln for ln in log.splitlines() if re.search(r"Fatal error|Segmentation|Illegal instruction|^<[0-2]>", ln)]

    absurd = duplicates > max(10, len(deliverable) // 2)
    problems = []
    if lost:
        problems.append("%d accepted deliverable (message, recipient) pairs never reached the upstream "
                        "(%d of them dead-lettered without a permanent refusal)" % (len(lost), lost_dead_lettered))
    if no_dead_letter:
        problems.append("%d refused recipients have no dead letter (refusal dropped)" % len(no_dead_letter))
    if reason_missing:
        problems.append("%d refused recipients missing from their dead letter's reason" % len(reason_missing))
    if unexpected_failed:
        problems.append("%d unexpected dead letters" % len(unexpected_failed))
    if throttle_dead:
        problems.append("%d messages dead-lettered for throttling" % len(throttle_dead))
    if throttle_replies and not log_counts["route_throttled"]:
        problems.append("the upstream throttled %d times and the relay never slowed down" % throttle_replies)
    if queue_left:
        problems.append("%d messages still queued after the drain" % len(queue_left))
    if queue_left is None:
        problems.append("queue list failed")
    if not relay_alive:
        problems.append("relay died")
    if upstream.corrupt:
        problems.append("%d corrupted bodies" % len(upstream.corrupt))
    if absurd:
        problems.append("absurd duplicates")
    if submitting:
        problems.append("%d submitting sessions hung" % len(submitting))
    if not accepted:
        problems.append("nothing accepted")

    print("schedule: %s; then healthy" % ", ".join("%s %ss" % m for m in SCHEDULE), flush=True)
    print("faults injected: %s" % dict(sorted(upstream.faults.items())), flush=True)
    print("accepted %d messages; deliverable pairs %d, delivered %d, lost %d, duplicates %d; drain %s s after recovery%s"
          % (len(accepted), len(deliverable), delivered_pairs, len(lost), duplicates,
             round(drained - recovered, 1) if drained else "n/a", " (flush: %s)" % flushed if flushed else ""), flush=True)
    print("refused recipients %d: in failed/ with reason %d, no dead letter %d, reason missing %d; dead letters %d"
          % (len(refused_expected), refused_found, len(no_dead_letter), len(reason_missing), len(failed_list)), flush=True)
    print("throttling (%d per %gs): %d replies, %d slow-downs, %d pace-ups, %d dead letters for throttling"
          % (THROTTLE_LIMIT, THROTTLE_WINDOW, throttle_replies, log_counts["route_throttled"],
             log_counts["route_pace_up"], len(throttle_dead)), flush=True)
    print("relay log: %s" % log_counts, flush=True)
    for line in lost[:10]:
        print("LOST: " + line, flush=True)
    for line in no_dead_letter[:5]:
        print("NO DEAD LETTER: " + line, flush=True)
    for line in reason_missing[:5]:
        print("REASON MISSING: " + line, flush=True)
    for prob in problems:
        print("PROBLEM: " + prob, flush=True)
    result = {
        "test": "upstream", "seed": a.seed, "sessions": a.sessions, "messages_per_session": a.messages,
        "schedule": ["%s %ss" % m for m in SCHEDULE], "fault_s": round(fault_elapsed, 1),
        "accepted": len(accepted), "client_errors": dict(errors),
        "deliverable_pairs": len(deliverable), "delivered_pairs": delivered_pairs,
        "delivered_before_recovery": received_before_recovery,
        "lost": len(lost), "lost_dead_lettered": lost_dead_lettered, "lost_sample": lost[:10],
        "duplicates": duplicates, "received_without_250": len(received_unacked),
        "refused_expected": len(refused_expected), "refused_in_failed": refused_found,
        "refused_no_dead_letter": len(no_dead_letter), "refused_no_dead_letter_sample": no_dead_letter[:5],
        "refused_reason_missing": len(reason_missing), "refused_reason_missing_sample": reason_missing[:5],
        "dead_letters": len(failed_list), "failure_notices_received": upstream.notices, "dead_letter_reasons": dict(reasons.most_common(5)),
        "unexpected_failed": unexpected_failed[:10],
        "throttle": "%d per %gs" % (THROTTLE_LIMIT, THROTTLE_WINDOW), "throttle_replies": throttle_replies,
        "throttle_dead_letters": len(throttle_dead), "throttle_dead_letter_sample": throttle_dead[:5],
        "queue_left": len(queue_left) if queue_left is not None else None,
        "drain_s": round(drained - recovered, 1) if drained else None, "flush": flushed,
        "upstream_connections": upstream.connections, "faults_injected": dict(sorted(upstream.faults.items())),
        "stored_while": dict(upstream.stored_while), "relay_log": log_counts, "relay_status": status,
        "relay_fatal_lines": fatal[:5], "relay_alive_at_end": relay_alive,
        "problems": problems, "ok": not problems,
    }
    stresslib.emit(result)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
