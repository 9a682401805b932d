#!/usr/bin/python3
"""Submits distinct messages from several threads until told to stop or the server goes
away, printing `ACK <token> <queue-id>` for every message that got a 250 — the list a crash
test checks against the spool after a SIGKILL."""
import smtplib
import sys
import threading
import time

port, threads, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
size = int(sys.argv[4]) if len(sys.argv) > 4 else 1024
deadline = time.time() + seconds
lock = threading.Lock()


def body(token):
    filler = ("x" * 76 + "\r\n") * max(1, size // 78)
    return ("From: load@acme.example\r\nTo: sink@example.com\r\nSubject: %s\r\n\r\n%s%s\r\n" %
            (token, filler, token)).encode()


def worker(n):
    seq = 0
    while time.time() < deadline:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as s:
                s.ehlo("load.test")
                while time.time() < deadline:
                    seq += 1
                    token = "tok-%d-%d" % (n, seq)
                    s.mail("load@acme.example")
                    s.rcpt("sink@example.com")
                    code, reply = s.data(body(token))
                    if code == 250:
                        with lock:
                            print("ACK %s %s" % (token, reply.decode().split()[-1]), flush=True)
        except Exception:
            time.sleep(0.05)


ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
