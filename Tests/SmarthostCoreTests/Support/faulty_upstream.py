#!/usr/bin/python3
"""An upstream that misbehaves in ways no real server does on demand, for delivery tests.

--fault cut-in-data: the first connection is cut after the client has sent part of the
message (after 354, before the final reply); later connections behave and record the
message to --outdir as <n>.eml.
--fault slow-data: every message is answered 0.3 s after its final dot, and the highest number
of connections open at once is kept in --outdir/max_connections (for the per-route cap).
--fault slow-quit: QUIT is answered 3 s late, so a relay's idle connection stays open after
its QUIT for a while (it must not be handed a message meanwhile). Every QUIT received is
a line in --outdir/quit.log.
Prints `READY port=N`; ends when stdin closes."""
import argparse
import os
import socket
import sys
import threading
import time

lock = threading.Lock()
stats = {"open": 0, "max": 0, "stored": 0}


def serve(conn, n, fault, outdir):
    f = conn.makefile("rwb", buffering=0)

    def reply(text):
        f.write((text + "\r\n").encode())

    reply("220 faulty.test ESMTP")
    data_mode = False
    body = b""
    try:
        while True:
            line = f.readline()
            if not line:
                return
            if data_mode:
                if fault == "cut-in-data" and n == 1 and len(body) > 10:
                    conn.shutdown(socket.SHUT_RDWR)
                    conn.close()
                    return
                if line == b".\r\n":
                    data_mode = False
                    if fault == "slow-data":
                        time.sleep(0.3)
                    with lock:
                        stats["stored"] += 1
                        count = stats["stored"]
                    # Written aside and renamed: the test polls for *.eml and must never
                    # read a file that is still empty.
                    path = os.path.join(outdir, "%06d.eml" % count)
                    with open(path + ".part", "wb") as out:
                        out.write(body)
                    os.rename(path + ".part", path)
                    body = b""
                    reply("250 2.0.0 stored")
                else:
                    body += line[1:] if line.startswith(b"..") else line
                continue
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                reply("250 faulty.test")
            elif verb == b"DATA":
                data_mode = True
                reply("354 go ahead")
            elif verb == b"QUIT":
                # One line per QUIT received, before any late answer: tests wait on it.
                with lock:
                    with open(os.path.join(outdir, "quit.log"), "a") as out:
                        out.write("quit\n")
                if fault == "slow-quit":
                    time.sleep(3)
                reply("221 bye")
                return
            else:
                reply("250 2.0.0 ok")
    except OSError:
        return


def serve_counted(conn, n, fault, outdir):
    with lock:
        stats["open"] += 1
        if stats["open"] > stats["max"]:
            stats["max"] = stats["open"]
            with open(os.path.join(outdir, "max_connections.part"), "w") as out:
                out.write(str(stats["max"]))
            os.rename(os.path.join(outdir, "max_connections.part"), os.path.join(outdir, "max_connections"))
    try:
        serve(conn, n, fault, outdir)
    finally:
        with lock:
            stats["open"] -= 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--fault", default="cut-in-data")
    p.add_argument("--outdir", required=True)
    a = p.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print("READY port=%d" % listener.getsockname()[1], flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    n = 0
    while True:
        conn, _ = listener.accept()
        n += 1
        threading.Thread(target=serve_counted, args=(conn, n, a.fault, a.outdir), daemon=True).start()


main()
