#!/usr/bin/python3
"""Abuse stress: while one well-behaved client keeps submitting (its latency is measured),
other clients flood the relay in phases — connection floods, slowloris, clients that never
read replies, 10 000 RCPTs, a DATA far over the size limit, random bytes. The relay must
stay up, keep answering the good client, keep its memory bounded, and lose nothing.

usage: abuse.py BINARY WORKDIR [--phase-seconds 10] [--connections 20000] [--huge-mib 1024]"""
import argparse
import os
import random
import socket
import struct
import threading
import time

import stresslib

# The attackers come from another loopback address than the good client: the relay caps
# connections per client address (limits.max_connections_per_client), which is exactly what
# keeps one abusive client from starving the others, so an attacker sharing the good client's
# address would measure that cap rather than the relay's resilience.
ATTACKER_ADDRESS = "127.0.0.2"


def attacker_connection(port, timeout):
    return socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(ATTACKER_ADDRESS, 0))


class GoodClient(threading.Thread):
    """Submits one message per session, back to back, recording latency per phase."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.phase = "baseline"
        self.samples = {}
        self.failures = {}
        self.acked = set()
        self.stop = threading.Event()

    def run(self):
        seq = 0
        while not self.stop.is_set():
            seq += 1
            token = "good-%d" % seq
            phase = self.phase
            t0 = time.time()
            try:
                stresslib.submit_one(self.port, token, timeout=30)
                self.samples.setdefault(phase, []).append((time.time() - t0) * 1000)
                self.acked.add(token)
            except Exception as e:
                self.failures.setdefault(phase, []).append(type(e).__name__ + ": " + str(e)[:80])
                time.sleep(0.1)
            time.sleep(0.02)


def read_some(sock, limit=65536):
    try:
        return sock.recv(limit)
    except OSError:
        return b""


def connection_flood(port, total, seconds):
    """`total` connects as fast as they go: half read the greeting and QUIT, half reset."""
    done = [0, 0]   # attempts, refused/failed
    lock = threading.Lock()
    deadline = time.time() + seconds * 6

    def worker(n):
        while time.time() < deadline:
            with lock:
                if done[0] >= total:
                    return
                done[0] += 1
                i = done[0]
            try:
                s = attacker_connection(port, timeout=10)
                if i % 2:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:
                    read_some(s)
                    s.sendall(b"QUIT\r\n")
                s.close()
            except OSError:
                with lock:
                    done[1] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"attempts": done[0], "failed": done[1]}


def slowloris(port, clients, seconds):
    """Clients that send one byte a second and hold their connection."""
    script = b"EHLO slow.example\r\nMAIL FROM:<slow@example.com>\r\nRCPT TO:<x@example.com>\r\nDATA\r\n" + b"x" * 10000
    socks = []
    for _ in range(clients):
        try:
            socks.append(attacker_connection(port, timeout=5))
        except OSError:
            pass
    opened = len(socks)
    start = time.time()
    i = 0
    while time.time() - start < seconds:
        for s in list(socks):
            try:
                s.send(script[i:i + 1])
            except OSError:
                socks.remove(s)
        i += 1
        time.sleep(1.0)
    still_open = len(socks)
    for s in socks:
        s.close()
    return {"opened": opened, "open_after": still_open}


def non_readers(port, clients, seconds):
    """Clients that pipeline commands without end and never read a reply."""
    chunk = b"NOOP\r\n" * 10000
    sent = [0]
    lock = threading.Lock()

    def worker():
        try:
            s = attacker_connection(port, timeout=5)
            s.settimeout(2)
            deadline = time.time() + seconds
            while time.time() < deadline:
                try:
                    n = s.send(chunk)
                    with lock:
                        sent[0] += n
                except socket.timeout:
                    continue   # the relay stopped reading us: good
                except OSError:
                    break
            s.close()
        except OSError:
            pass

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"clients": clients, "mib_sent": round(sent[0] / 1048576, 1)}


MIN_PHASE_SECONDS = 1.5


def many_rcpts(port, count, max_recipients=100):
    """One transaction with `count` pipelined RCPTs; counts the replies by code. The relay
    takes max_recipients, refuses the next ones (452 4.5.3) and, well past the limit, ends
    the session with 421: a client that keeps sending then sees the connection closed,
    which is the expected end here, not a failure of the phase."""
    s = attacker_connection(port, timeout=30)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"EHLO many.example\r\n")
    while f.readline()[3:4] == b"-":
        pass
    s.sendall(b"MAIL FROM:<many@example.com>\r\n")
    f.readline()
    codes = {}
    sent = 0
    closed = None
    batch = 500
    try:
        for start in range(0, count, batch):
            n = min(batch, count - start)
            s.sendall(b"".join(b"RCPT TO:<r%d@example.com>\r\n" % (start + k) for k in range(n)))
            sent += n
            for _ in range(n):
                line = f.readline()
                if not line:
                    closed = "relay closed the connection"
                    break
                codes[line[:3].decode()] = codes.get(line[:3].decode(), 0) + 1
            if closed:
                break
        if not closed:
            s.sendall(b"QUIT\r\n")
    except OSError as e:
        closed = "%s after the relay's last reply" % type(e).__name__
    s.close()
    problems = []
    if codes.get("250", 0) > max_recipients:
        problems.append("%d RCPTs accepted, limit %d" % (codes["250"], max_recipients))
    if closed and "421" not in codes:
        problems.append("connection closed without a 421")
    if not closed and sent == count and codes.get("452", 0) + codes.get("250", 0) < count:
        problems.append("missing replies: %r for %d RCPTs" % (codes, count))
    return {"rcpts_sent": sent, "replies": codes, "closed": closed, "problems": problems}


def huge_data(port, mib):
    """A DATA of `mib` MiB, far over max_message_size: it must be read and refused with 552."""
    s = attacker_connection(port, timeout=120)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"EHLO huge.example\r\n")
    while f.readline()[3:4] == b"-":
        pass
    s.sendall(b"MAIL FROM:<huge@example.com>\r\nRCPT TO:<x@example.com>\r\nDATA\r\n")
    for _ in range(3):
        f.readline()
    line = (b"y" * 998 + b"\r\n")
    block = line * 1048
    sent = 0
    t0 = time.time()
    try:
        while sent < mib * 1048576:
            s.sendall(block)
            sent += len(block)
        s.sendall(b".\r\n")
        reply = f.readline().decode().strip()
    except OSError as e:
        reply = "connection error: %s" % e
    s.close()
    return {"mib_sent": round(sent / 1048576), "reply": reply[:60], "seconds": round(time.time() - t0, 1)}


def random_bytes(port, clients, seed):
    rng = random.Random(seed)
    replies = 0
    for _ in range(clients):
        try:
            s = attacker_connection(port, timeout=5)
            s.sendall(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 65536))))
            s.settimeout(1)
            if read_some(s):
                replies += 1
            s.close()
        except OSError:
            pass
    return {"clients": clients, "answered": replies}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("workdir")
    p.add_argument("--phase-seconds", type=float, default=10)
    p.add_argument("--connections", type=int, default=20000)
    p.add_argument("--slowloris", type=int, default=200)
    p.add_argument("--non-readers", type=int, default=50)
    p.add_argument("--rcpts", type=int, default=10000)
    p.add_argument("--huge-mib", type=int, default=1024)
    p.add_argument("--random-clients", type=int, default=200)
    p.add_argument("--seed", type=int, default=int(time.time()))
    a = p.parse_args()
    os.makedirs(a.workdir, exist_ok=True)

    sink = stresslib.Sink(os.path.join(a.workdir, "sink"))
    relay = stresslib.Relay(a.binary, a.workdir, sink.port,
                            limits="  max_message_size: 10MiB\n  max_recipients: 100\n"
                                   "  max_connections: 1000\n  idle_timeout: 30s\n  data_timeout: 60s\n")
    relay.start()
    good = GoodClient(relay.port)
    good.start()
    time.sleep(a.phase_seconds / 2)
    rss = {"start": relay.rss_kib()}
    peak = [rss["start"] or 0]
    sampling = threading.Event()

    def sample():
        while not sampling.is_set():
            value = relay.rss_kib()
            if value:
                peak[0] = max(peak[0], value)
            time.sleep(0.2)

    threading.Thread(target=sample, daemon=True).start()

    phases = [
        ("connection-flood", lambda: connection_flood(relay.port, a.connections, a.phase_seconds)),
        ("slowloris", lambda: slowloris(relay.port, a.slowloris, a.phase_seconds)),
        ("non-readers", lambda: non_readers(relay.port, a.non_readers, a.phase_seconds)),
        ("10k-rcpts", lambda: many_rcpts(relay.port, a.rcpts)),
        ("huge-data", lambda: huge_data(relay.port, a.huge_mib)),
        ("random-bytes", lambda: random_bytes(relay.port, a.random_clients, a.seed)),
    ]
    results = []
    for name, run in phases:
        good.phase = name
        peak_before = peak[0]
        peak[0] = relay.rss_kib() or 0
        t0 = time.time()
        try:
            detail = run()
        except Exception as e:
            detail = {"error": "%s: %s" % (type(e).__name__, e)}
        # A phase that is over in a moment is held open a little, so the good client's
        # latency right after it is measured (and "starved" means something).
        time.sleep(max(0.0, MIN_PHASE_SECONDS - (time.time() - t0)))
        lat = good.samples.get(name, [])
        results.append({"phase": name, "seconds": round(time.time() - t0, 1), "detail": detail,
                        "good_ok": len(lat), "good_failed": len(good.failures.get(name, [])),
                        "good_p50_ms": round(stresslib.percentile(lat, 50) or 0, 1),
                        "good_p99_ms": round(stresslib.percentile(lat, 99) or 0, 1),
                        "good_max_ms": round(max(lat), 1) if lat else None,
                        "rss_peak_kib": peak[0], "alive": relay.alive()})
        peak[0] = max(peak[0], peak_before)
        if not relay.alive():
            break
    good.phase = "after"
    time.sleep(a.phase_seconds / 2)
    good.stop.set()
    good.join(timeout=30)
    sampling.set()
    rss["end"] = relay.rss_kib()
    rss["peak"] = peak[0]
    baseline = good.samples.get("baseline", [])

    # Everything the good client got 250 for arrives.
    deadline = time.time() + 60
    while time.time() < deadline and not good.acked <= set(sink.tokens()):
        time.sleep(0.5)
    lost = len(good.acked - set(sink.tokens()))
    alive = relay.alive()
    relay.stop()
    sink.stop()
    result = {"test": "abuse", "seed": a.seed, "phases": results, "rss_kib": rss,
              "good_baseline_p50_ms": round(stresslib.percentile(baseline, 50) or 0, 1),
              "good_baseline_p99_ms": round(stresslib.percentile(baseline, 99) or 0, 1),
              "good_acked": len(good.acked), "good_lost": lost,
              "good_failures": {k: v[:3] for k, v in good.failures.items()},
              "relay_alive_at_end": alive,
              # "Stays responsive throughout": the good client got mail through in every phase.
              "starved_phases": [ph["phase"] for ph in results if ph["good_ok"] == 0],
              "phase_problems": {ph["phase"]: ph["detail"].get("problems") or ph["detail"].get("error")
                                 for ph in results
                                 if ph["detail"].get("problems") or ph["detail"].get("error")},
              "ok": alive and lost == 0 and all(ph["good_ok"] > 0 for ph in results)
                    and not any(ph["detail"].get("problems") or ph["detail"].get("error") for ph in results)}
    stresslib.emit(result)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
