#!/usr/bin/python3
"""An upstream that misbehaves in ways no real server does on demand, for delivery tests.

--fault cut-in-data: the first connection is cut after the client has sent part of the
message (after 354, before the final reply); later connections behave and record the
message to --outdir as <n>.eml.
--fault slow-data: every message is answered 0.3 s (--data-delay S) after its final dot, and the
highest number of connections open at once is kept in --outdir/max_connections (for the per-route
cap). Each final dot is a line of dots.log the moment it arrives (a test can act while the
relay waits for the reply).
--fault slow-quit: QUIT is answered 3 s late, so a relay's idle connection stays open after
its QUIT for a while (it must not be handed a message meanwhile). Every QUIT received is
a line in --outdir/quit.log.
--fault none: a well-behaved server (the primary that comes back, in failover tests).

Provider limits (issue 15), as the providers word them:
--fault rate-limit --limit N --window W [--at mail|data] [--reply TEXT] [--close]: past N
messages accepted in any W seconds (a sliding window), the next one is answered TEXT at MAIL
FROM or after its final dot; --close hangs up after that reply (Microsoft 365's `421 4.4.2`).
The check and the count happen under one lock, so the server never accepts more than N per
window, however many connections race.
--fault rcpt-cap --max-rcpt K: the K+1st RCPT of a transaction gets `452 4.5.3 Too many
recipients` (Gmail, SES).
--fault stall-greeting: accepts and never says a word. --fault stall-data: greets and takes
the envelope, then never answers DATA.

Every stored message is <n>.eml with <n>.json beside it (mail_from, rcpt_tos, received_at);
every transaction that reached MAIL FROM is a line of transactions.log
(`<time> rcpts=<accepted RCPTs> result=<final code> tried=<RCPTs sent>`), every limit reply a line of
throttled.log (`<time> <stage>`), every accepted connection a line of connections.log.
Prints `READY port=N`; ends when stdin closes."""
import argparse
import json
import os
import socket
import sys
import threading
import time

lock = threading.Lock()
stats = {"open": 0, "max": 0, "stored": 0}
accepted_at = []  # rate-limit: when each counted message was accepted


def log_line(outdir, name, text):
    with lock:
        with open(os.path.join(outdir, name), "a") as out:
            out.write(text + "\n")


def over_limit(a):
    """Takes a slot in the window, or says the limit is reached (one lock: no race)."""
    now = time.time()
    with lock:
        while accepted_at and now - accepted_at[0] >= a.window:
            accepted_at.pop(0)
        if len(accepted_at) >= a.limit:
            return True
        accepted_at.append(now)
        return False


def store(outdir, body, mail_from, rcpts):
    with lock:
        stats["stored"] += 1
        count = stats["stored"]
    # Written aside and renamed: the test polls for *.eml and must never read a file
    # that is still empty.
    path = os.path.join(outdir, "%06d" % count)
    with open(path + ".json", "w") as out:
        json.dump({"mail_from": mail_from, "rcpt_tos": rcpts, "received_at": time.time()}, out)
    with open(path + ".eml.part", "wb") as out:
        out.write(body)
    os.rename(path + ".eml.part", path + ".eml")


def serve(conn, n, a):
    fault, outdir = a.fault, a.outdir
    log_line(outdir, "connections.log", "%f open" % time.time())
    if fault == "stall-greeting":
        conn.recv(1)  # until the client gives up
        return
    f = conn.makefile("rwb", buffering=0)

    def reply(text):
        f.write((text + "\r\n").encode())

    def throttle(stage):
        log_line(outdir, "throttled.log", "%f %s" % (time.time(), stage))
        reply(a.reply)
        if a.close:
            conn.shutdown(socket.SHUT_RDWR)
            conn.close()
            return True
        return False

    reply("220 faulty.test ESMTP")
    data_mode = False
    body = b""
    mail_from, rcpts, tried = None, [], 0

    def end_transaction(result):
        nonlocal mail_from, rcpts, tried
        if mail_from is not None:
            log_line(outdir, "transactions.log", "%f rcpts=%d result=%s tried=%d" % (time.time(), len(rcpts), result, tried))
        mail_from, rcpts, tried = None, [], 0

    try:
        while True:
            line = f.readline()
            if not line:
                end_transaction("lost")
                return
            if data_mode:
                if fault == "cut-in-data" and n == 1 and len(body) > 10:
                    conn.shutdown(socket.SHUT_RDWR)
                    conn.close()
                    return
                if line == b".\r\n":
                    data_mode = False
                    if fault == "slow-data":
                        log_line(outdir, "dots.log", "%f" % time.time())
                        time.sleep(a.data_delay)
                    if fault == "rate-limit" and a.at == "data" and over_limit(a):
                        end_transaction(a.reply[:3])
                        body = b""
                        if throttle("data"):
                            return
                        continue
                    store(outdir, body, mail_from, rcpts)
                    end_transaction("250")
                    body = b""
                    reply("250 2.0.0 stored")
                else:
                    body += line[1:] if line.startswith(b"..") else line
                continue
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                reply("250 faulty.test")
            elif verb == b"MAIL":
                if fault == "rate-limit" and a.at == "mail" and over_limit(a):
                    log_line(outdir, "transactions.log", "%f rcpts=0 result=%s tried=0" % (time.time(), a.reply[:3]))
                    if throttle("mail"):
                        return
                    continue
                mail_from = line[10:].strip().decode(errors="replace").strip("<>").split(">")[0]
                rcpts, tried = [], 0
                reply("250 2.1.0 ok")
            elif verb == b"RCPT":
                tried += 1
                if fault == "rcpt-cap" and len(rcpts) >= a.max_rcpt:
                    reply("452 4.5.3 Too many recipients")
                    continue
                rcpts.append(line[8:].strip().decode(errors="replace").strip("<>").split(">")[0])
                reply("250 2.1.5 ok")
            elif verb == b"DATA":
                if fault == "stall-data":
                    conn.recv(1)  # until the client gives up
                    return
                data_mode = True
                reply("354 go ahead")
            elif verb == b"RSET":
                end_transaction("rset")
                reply("250 2.0.0 ok")
            elif verb == b"QUIT":
                # One line per QUIT received, before any late answer: tests wait on it.
                log_line(outdir, "quit.log", "quit")
                if fault == "slow-quit":
                    time.sleep(3)
                reply("221 bye")
                return
            else:
                reply("250 2.0.0 ok")
    except OSError:
        return


def serve_counted(conn, n, a):
    with lock:
        stats["open"] += 1
        if stats["open"] > stats["max"]:
            stats["max"] = stats["open"]
            with open(os.path.join(a.outdir, "max_connections.part"), "w") as out:
                out.write(str(stats["max"]))
            os.rename(os.path.join(a.outdir, "max_connections.part"), os.path.join(a.outdir, "max_connections"))
    try:
        serve(conn, n, a)
    finally:
        with lock:
            stats["open"] -= 1
        try:
            conn.close()
        except OSError:
            pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--fault", default="cut-in-data")
    p.add_argument("--outdir", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--limit", type=int, default=30, help="rate-limit: messages per window")
    p.add_argument("--window", type=float, default=60, help="rate-limit: window in seconds")
    p.add_argument("--at", choices=["mail", "data"], default="mail", help="rate-limit: where the limit bites")
    p.add_argument("--reply", default="421 4.4.2 Message submission rate for this client has exceeded the configured limit")
    p.add_argument("--close", action="store_true", help="rate-limit: hang up after the limit reply")
    p.add_argument("--data-delay", type=float, default=0.3, help="slow-data: seconds before the reply to the final dot")
    p.add_argument("--max-rcpt", type=int, default=100, help="rcpt-cap: recipients per transaction")
    a = p.parse_args()
    os.makedirs(a.outdir, exist_ok=True)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((a.host, a.port))
    listener.listen(64)
    print("READY port=%d" % listener.getsockname()[1], flush=True)
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    n = 0
    while True:
        conn, _ = listener.accept()
        n += 1
        threading.Thread(target=serve_counted, args=(conn, n, a), daemon=True).start()


main()
