#!/usr/bin/python3
"""Per-message latency through a relay, for Tests/Bench/bench.sh.

  latency.py sink --port-file F --events F --notify SOCK
      A minimal asyncio SMTP sink on 127.0.0.1, on a port the kernel picks (written to
      --port-file once it listens). For every message it has received in full (the final dot,
      before its 250) it appends "TOKEN ARRIVAL_NS" to --events, ARRIVAL_NS being
      CLOCK_MONOTONIC in ns (the same clock in every process), and writes the same line to every
      client connected to the Unix stream socket --notify (the senders below). TOKEN is the local
      part of the Message-ID <TOKEN@latency.bench>. Runs until SIGTERM/SIGINT.

  latency.py send --relay-port P --notify SOCK --senders N --messages M [--size B] [--warmup W]
      N sender threads, each with smtplib: take the time, connect, EHLO, MAIL, RCPT, DATA, take
      the time of the 250, QUIT, then wait until the sink reports that message's arrival, and
      only then send the next (closed loop: at most N messages are inside the relay at once).
      M messages in all (split across the senders), after W warm-up messages that are not
      counted. Prints one line of key=value:
        n ack_p50 ack_p99 e2e_p50 e2e_p99 e2e_max (milliseconds) lost errors secs [error]
      ack = submit start (before connect) -> 250 after the data; e2e = submit start -> arrival
      at the sink. lost = 250 received but no arrival within --timeout seconds. up_conns =
      connections that carried mail to the sink during the run, up_peak = the most
      transactions in progress there at once (how the relay delivers: a connection per message
      or reused ones; how many in parallel).
      Percentiles are nearest-rank.
"""
import argparse
import math
import os
import re
import signal
import smtplib
import socket
import sys
import threading
import time

DOMAIN = "latency.bench"
TOKEN_RE = re.compile(rb"Message-ID:[ \t]*<([A-Za-z0-9._-]+)@" + re.escape(DOMAIN.encode()) + rb">", re.I)


# ------------------------------------------------------------------------------------ sink
def run_sink(args):
    import asyncio

    events = open(args.events, "ab", buffering=0)
    subscribers = set()
    received = [0]
    # since the last "reset" from a sender: connections that carried a message, the most
    # transactions (MAIL to the final dot) in progress at once, messages; "gen" counts resets
    conns = {"gen": 0, "used": 0, "txn": 0, "peak": 0, "messages": 0}

    def arrived(content, session):
        if session.gen != conns["gen"]:
            session.gen = conns["gen"]
            conns["used"] += 1
        t = time.monotonic_ns()
        m = TOKEN_RE.search(content, 0, 16384)
        token = m.group(1).decode() if m else "-"
        line = f"{token} {t}\n".encode()
        received[0] += 1
        conns["messages"] += 1
        events.write(line)
        for w in list(subscribers):
            if w.is_closing():
                subscribers.discard(w)
            else:
                w.write(line)

    class Session(asyncio.Protocol):
        """Just enough SMTP for a relay to deliver to (PIPELINING-safe: commands are handled
        in the order they arrive, whatever the packet boundaries)."""

        def connection_made(self, transport):
            self.t = transport
            self.buf = bytearray()
            self.in_data = False
            self.scan = 0
            self.gen = -1
            self.in_txn = False
            transport.write(b"220 latency-sink.bench ESMTP\r\n")

        def txn(self, on):
            if on and not self.in_txn:
                conns["txn"] += 1
                conns["peak"] = max(conns["peak"], conns["txn"])
            elif not on and self.in_txn:
                conns["txn"] -= 1
            self.in_txn = on

        def connection_lost(self, exc):
            self.txn(False)

        def data_received(self, data):
            self.buf += data
            out = []
            while True:
                if self.in_data:
                    if self.buf.startswith(b".\r\n"):
                        end, skip = 0, 3
                    else:
                        i = self.buf.find(b"\r\n.\r\n", max(0, self.scan - 4))
                        if i < 0:
                            self.scan = len(self.buf)
                            break
                        end, skip = i + 2, i + 5
                    arrived(bytes(self.buf[:end]), self)
                    self.txn(False)
                    del self.buf[:skip]
                    self.in_data, self.scan = False, 0
                    out.append(b"250 2.0.0 OK\r\n")
                    continue
                i = self.buf.find(b"\n")
                if i < 0:
                    break
                verb = bytes(self.buf[:4]).upper()
                del self.buf[:i + 1]
                if verb in (b"EHLO", b"HELO"):
                    out.append(b"250-latency-sink.bench\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                               b"250 SIZE 104857600\r\n" if verb == b"EHLO" else b"250 latency-sink.bench\r\n")
                elif verb == b"DATA":
                    self.in_data, self.scan = True, 0
                    out.append(b"354 go ahead\r\n")
                elif verb == b"MAIL":
                    self.txn(True)
                    out.append(b"250 2.0.0 OK\r\n")
                elif verb == b"RSET":
                    self.txn(False)
                    out.append(b"250 2.0.0 OK\r\n")
                elif verb == b"QUIT":
                    self.txn(False)
                    out.append(b"221 2.0.0 bye\r\n")
                    self.t.write(b"".join(out))
                    self.t.close()
                    return
                else:           # RCPT, NOOP, ...
                    out.append(b"250 2.0.0 OK\r\n")
            if out:
                self.t.write(b"".join(out))

    async def main():
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        async def subscriber(reader, writer):
            subscribers.add(writer)
            try:
                while line := await reader.readline():      # until the sender hangs up
                    if line.strip() == b"reset":
                        conns.update(gen=conns["gen"] + 1, used=0, peak=conns["txn"], messages=0)
                    elif line.strip() == b"stats":
                        writer.write(f"#stats {conns['used']} {conns['peak']} {conns['messages']}\n".encode())
            except OSError:
                pass
            finally:
                subscribers.discard(writer)
                writer.close()

        try:
            os.unlink(args.notify)
        except FileNotFoundError:
            pass
        await asyncio.start_unix_server(subscriber, path=args.notify)
        server = await loop.create_server(Session, "127.0.0.1", 0, backlog=1024)
        port = server.sockets[0].getsockname()[1]
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.rename(tmp, args.port_file)
        await stop.wait()
        server.close()

    asyncio.run(main())
    print(f"latency sink: {received[0]} messages", file=sys.stderr)
    return 0


# ------------------------------------------------------------------------------------ senders
class Arrivals:
    """Arrival times reported by the sink over its Unix stream socket, and waiters for them."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")
        self.lock = threading.Lock()
        self.times = {}             # token -> arrival ns
        self.waiting = {}           # token -> Event
        self.stats, self.stats_ready = None, threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            try:
                line = self.file.readline()
            except (OSError, ValueError):
                return
            if not line:
                return
            parts = line.decode(errors="replace").split()
            if parts and parts[0] == "#stats":
                self.stats = parts[1:]
                self.stats_ready.set()
                continue
            if len(parts) != 2:
                continue
            with self.lock:
                self.times[parts[0]] = int(parts[1])
                ev = self.waiting.get(parts[0])
            if ev:
                ev.set()

    def expect(self, token):
        ev = threading.Event()
        with self.lock:
            self.waiting[token] = ev
            if token in self.times:
                ev.set()
        return ev

    def arrival(self, token):
        with self.lock:
            self.waiting.pop(token, None)
            return self.times.get(token)

    def command(self, word):
        self.sock.sendall(word.encode() + b"\n")

    def upstream_stats(self):
        """(connections that carried mail, most transactions at once, messages) at the sink
        since the last reset."""
        self.stats_ready.clear()
        self.command("stats")
        return self.stats if self.stats_ready.wait(5) else None

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def message(token, size, sender, rcpt):
    head = (f"From: Latency bench <{sender}>\r\nTo: <{rcpt}>\r\nSubject: latency {token}\r\n"
            f"Message-ID: <{token}@{DOMAIN}>\r\n"
            f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime())}\r\n\r\n")
    body, line = [], "0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n"
    n = max(0, size - len(head))
    while n > 0:
        body.append(line[:n] if n < len(line) else line)
        n -= len(line)
    text = head + "".join(body)
    if not text.endswith("\r\n"):
        text += "\r\n"
    return text.encode()


def pct(sorted_ms, p):
    if not sorted_ms:
        return float("nan")
    k = max(1, math.ceil(p / 100 * len(sorted_ms)))
    return sorted_ms[k - 1]


def run_send(args):
    arrivals = Arrivals(args.notify)
    run = f"{os.getpid():x}{time.monotonic_ns() & 0xffffff:x}"
    lock = threading.Lock()
    acks, e2es, errors, lost = [], [], [], [0]
    missing = [0]                   # no arrival within --timeout, warm-up included

    def one(token, record):
        ev = arrivals.expect(token)
        data = message(token, args.size, args.sender, args.rcpt)
        t0 = time.monotonic_ns()
        try:
            s = smtplib.SMTP("127.0.0.1", args.relay_port, local_hostname="latency-client.bench",
                             timeout=args.timeout)
            try:
                s.sendmail(args.sender, [args.rcpt], data)
                t1 = time.monotonic_ns()
            finally:
                try:
                    s.quit()
                except (smtplib.SMTPException, OSError):
                    s.close()
        except (smtplib.SMTPException, OSError) as e:
            arrivals.arrival(token)
            with lock:
                errors.append(f"{type(e).__name__}: {e}"[:200])
            return
        got = ev.wait(args.timeout)
        t2 = arrivals.arrival(token)
        if not got or t2 is None:
            with lock:
                missing[0] += 1
        if not record:
            return
        with lock:
            acks.append((t1 - t0) / 1e6)
            if got and t2 is not None:
                e2es.append((t2 - t0) / 1e6)
            else:
                lost[0] += 1

    def sender(idx, count, record, prefix):
        for i in range(count):
            one(f"{run}-{prefix}{idx}-{i}", record)
            if len(errors) > 20 or missing[0] > 5:
                return          # the relay is not delivering: do not wait --timeout per message

    def batch(total, record, prefix):
        n = args.senders
        per = [total // n + (1 if i < total % n else 0) for i in range(n)]
        threads = [threading.Thread(target=sender, args=(i, per[i], record, prefix)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    if args.warmup:
        batch(args.warmup, False, "w")
    errors.clear()
    arrivals.command("reset")
    t0 = time.monotonic()
    batch(args.messages, True, "m")
    secs = time.monotonic() - t0
    stats = arrivals.upstream_stats() or ["?", "?", "?"]
    arrivals.close()
    acks.sort()
    e2es.sort()
    out = {
        "n": len(acks),
        "ack_p50": f"{pct(acks, 50):.2f}", "ack_p99": f"{pct(acks, 99):.2f}",
        "e2e_p50": f"{pct(e2es, 50):.2f}", "e2e_p99": f"{pct(e2es, 99):.2f}",
        "e2e_max": f"{e2es[-1]:.2f}" if e2es else "nan",
        "lost": lost[0], "errors": len(errors), "secs": f"{secs:.1f}",
        "up_conns": stats[0], "up_peak": stats[1],
    }
    line = " ".join(f"{k}={v}" for k, v in out.items())
    if errors:
        line += " error=" + errors[0].replace(" ", "_")
    print(line)
    return 0 if not errors and lost[0] == 0 and acks else 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sink")
    s.add_argument("--port-file", required=True)
    s.add_argument("--events", required=True)
    s.add_argument("--notify", required=True)
    c = sub.add_parser("send")
    c.add_argument("--relay-port", type=int, required=True)
    c.add_argument("--notify", required=True)
    c.add_argument("--senders", type=int, default=1)
    c.add_argument("--messages", type=int, default=500)
    c.add_argument("--warmup", type=int, default=20)
    c.add_argument("--size", type=int, default=1024)
    c.add_argument("--timeout", type=float, default=30)
    c.add_argument("--sender", default=f"app@{DOMAIN}")
    c.add_argument("--rcpt", default=f"someone@{DOMAIN}")
    args = p.parse_args()
    return run_sink(args) if args.cmd == "sink" else run_send(args)


if __name__ == "__main__":
    sys.exit(main())
