#!/usr/bin/python3
"""Hold many idle SMTP client connections to a relay, for the memory phase of Tests/Bench/bench.sh.

  idleconns.py PORT N READY_FILE [SECS]

Opens N TCP connections to 127.0.0.1:PORT (at most 200 connecting at a time, so the listen
backlog never overflows), reads each one's banner line, and then just sits on them: no command
is sent. Once every connection has either shown a 220 banner or failed, it writes
"ok=K fail=F secs=S [why=first failure]" to READY_FILE and holds the connections until SIGTERM
(or SECS, default 600). Raises its own RLIMIT_NOFILE to the hard limit.
"""
import errno
import os
import resource
import selectors
import signal
import socket
import sys
import time


def main(argv):
    port, n, ready = int(argv[1]), int(argv[2]), argv[3]
    hold_secs = float(argv[4]) if len(argv) > 4 else 600
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    signal.signal(signal.SIGINT, lambda *_: stop.__setitem__(0, True))

    sel = selectors.DefaultSelector()
    held, pending = [], {}          # pending: socket -> bytes of banner read so far
    ok = fail = started = 0
    why = ""
    t0 = time.monotonic()
    deadline = t0 + 180

    def failed(s, reason):
        nonlocal fail, why
        fail += 1
        if not why:
            why = reason
        try:
            sel.unregister(s)
        except (KeyError, ValueError):
            pass
        pending.pop(s, None)
        s.close()

    while ok + fail < n and not stop[0] and time.monotonic() < deadline:
        while started < n and len(pending) < 200:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            started += 1
            try:
                err = s.connect_ex(("127.0.0.1", port))
            except OSError as e:
                err = e.errno
            if err not in (0, errno.EINPROGRESS):
                failed(s, f"connect: {os.strerror(err)}")
                continue
            pending[s] = b""
            sel.register(s, selectors.EVENT_READ)
        for key, _ in sel.select(timeout=1):
            s = key.fileobj
            try:
                data = s.recv(512)
            except OSError as e:
                failed(s, f"recv: {e.strerror}")
                continue
            if not data:
                failed(s, "closed before a banner" + (f": {pending[s][:80]!r}" if pending.get(s) else ""))
                continue
            buf = pending[s] + data
            if b"\n" not in buf:
                pending[s] = buf
                continue
            if buf.startswith(b"220"):
                ok += 1
                sel.unregister(s)
                del pending[s]
                held.append(s)
            else:
                failed(s, "banner " + buf.split(b"\r\n")[0][:100].decode(errors="replace"))
    if ok + fail < n:
        fail += n - ok - fail
        why = why or f"no banner within {deadline - t0:.0f}s"
        for s in list(pending):
            s.close()
    secs = time.monotonic() - t0
    line = f"ok={ok} fail={fail} secs={secs:.1f}" + (f" why={why.replace(' ', '_')}" if why else "")
    with open(ready + ".tmp", "w") as f:
        f.write(line + "\n")
    os.rename(ready + ".tmp", ready)
    end = time.monotonic() + hold_secs
    while not stop[0] and time.monotonic() < end:
        time.sleep(0.1)
    for s in held:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
