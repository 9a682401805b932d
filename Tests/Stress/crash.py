#!/usr/bin/python3
"""Crash stress: 20 sessions submit while the relay delivers to a recording sink; the relay is
SIGKILLed at random moments (>= 20 times) and restarted on the same spool each time.
At the end every message that ever got 250 must have reached the sink (lost = 0);
duplicates (delivered, killed before the spool forgot it, delivered again) are counted, and
must not exceed the messages in flight at the kills (those still in queue/ right after each
SIGKILL: only they can be delivered twice).

usage: crash.py BINARY WORKDIR [--kills 20] [--sessions 20] [--drain 120] [--seed N]"""
import argparse
import collections
import os
import random
import threading
import time

import stresslib


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("workdir")
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--min-gap", type=float, default=0.2)
    p.add_argument("--max-gap", type=float, default=2.0)
    p.add_argument("--drain", type=float, default=120)
    p.add_argument("--seed", type=int, default=int(time.time()))
    a = p.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.workdir, exist_ok=True)

    sink = stresslib.Sink(os.path.join(a.workdir, "sink"))
    relay = stresslib.Relay(a.binary, a.workdir, sink.port)
    relay.start()

    acked = {}                 # token -> queue id
    attempted = set()
    errors = collections.Counter()
    lock = threading.Lock()
    stop = threading.Event()

    def worker(n):
        seq = 0
        while not stop.is_set():
            seq += 1
            token = "crash-%d-%d" % (n, seq)
            with lock:
                attempted.add(token)
            try:
                reply = stresslib.submit_one(relay.port, token, timeout=15)
                with lock:
                    acked[token] = reply.split()[-1]
            except Exception as e:
                with lock:
                    errors[type(e).__name__] += 1
                time.sleep(0.02)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(a.sessions)]
    for t in threads:
        t.start()

    started = time.time()
    restart_ms = []
    in_flight_at_kills = []
    queue_dir = os.path.join(relay.spool, "queue")
    for _ in range(a.kills):
        time.sleep(rng.uniform(a.min_gap, a.max_gap))
        relay.kill9()
        in_flight_at_kills.append(len([n for n in os.listdir(queue_dir) if not n.endswith(".state")]))
        t0 = time.time()
        relay.start()
        restart_ms.append((time.time() - t0) * 1000)
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    submit_seconds = time.time() - started

    # Drain: everything acknowledged must reach the sink.
    deadline = time.time() + a.drain
    while time.time() < deadline:
        delivered = collections.Counter(sink.tokens())
        if all(t in delivered for t in acked):
            break
        time.sleep(0.5)
    drain_seconds = time.time() - started - submit_seconds
    delivered = collections.Counter(sink.tokens())
    spooled = relay.spooled()
    relay_alive = relay.alive()
    relay.stop()
    sink.stop()

    lost = sorted(t for t in acked if t not in delivered)
    duplicates = sum(c - 1 for c in delivered.values() if c > 1)
    unacked_delivered = sum(1 for t in delivered if t not in acked)
    result = {
        "test": "crash", "seed": a.seed, "kills": a.kills, "restarts": relay.starts - 1,
        "sessions": a.sessions, "acked": len(acked), "attempted": len(attempted),
        "delivered_unique": len(delivered), "delivered_total": sum(delivered.values()),
        "lost": len(lost), "lost_sample": lost[:10], "duplicates": duplicates,
        "delivered_without_250": unacked_delivered,
        "in_flight_at_kills": sum(in_flight_at_kills),
        "in_flight_max_one_kill": max(in_flight_at_kills) if in_flight_at_kills else 0,
        "duplicates_within_in_flight": duplicates <= sum(in_flight_at_kills),
        "client_errors": dict(errors), "spool_left": spooled,
        "restart_ms_max": round(max(restart_ms), 1) if restart_ms else None,
        "submit_s": round(submit_seconds, 1), "drain_s": round(drain_seconds, 1),
        "relay_alive_at_end": relay_alive,
        "ok": not lost and relay_alive and relay.starts - 1 >= a.kills and duplicates <= sum(in_flight_at_kills),
    }
    stresslib.emit(result)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
