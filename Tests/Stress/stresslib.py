"""Shared pieces of the stress suite: a recording sink (test_upstream.py), a relay process
on a fixed loopback port and its own spool, a submitting client, RSS sampling."""
import json
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
UPSTREAM = os.path.join(HERE, "..", "SmarthostCoreTests", "Support", "test_upstream.py")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """test_upstream.py: stores every message as <outdir>/NNNNNN.eml."""

    def __init__(self, outdir, extra=()):
        self.outdir = outdir
        self.proc = subprocess.Popen(["/usr/bin/python3", UPSTREAM, "--outdir", outdir, *extra],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        m = re.match(r"READY port=(\d+)", line)
        if not m:
            raise RuntimeError("sink did not start: %r" % line)
        self.port = int(m.group(1))

    def messages(self):
        return [os.path.join(self.outdir, n) for n in os.listdir(self.outdir) if n.endswith(".eml")]

    def tokens(self):
        """Subject token of every stored message (a token may appear more than once)."""
        found = []
        for path in self.messages():
            with open(path, "rb") as f:
                m = re.search(rb"^Subject: (\S+)\r?$", f.read(65536), re.M)
            if m:
                found.append(m.group(1).decode())
        return found

    def stop(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except Exception:
            self.proc.kill()


class Relay:
    """`smarthost serve` on a fixed port, spool and config under `workdir`, log appended."""

    def __init__(self, binary, workdir, sink_port, limits="", queue=None):
        self.binary = binary
        self.port = free_port()
        self.spool = os.path.join(workdir, "spool")
        self.config = os.path.join(workdir, "smarthost.yaml")
        self.logpath = os.path.join(workdir, "relay.log")
        self.proc = None
        self.starts = 0
        queue = queue or "  retry_min: 1s\n  retry_max: 2s\n  max_age: 1d\n"
        with open(self.config, "w") as f:
            f.write("hostname: relay.stress\nlisten: [\"127.0.0.1:%d\"]\nspool: %s\n" % (self.port, self.spool))
            f.write("limits:\n  min_free_space: 1MiB\n%s" % limits)
            f.write("queue:\n%s" % queue)
            f.write("default:\n  host: 127.0.0.1\n  port: %d\n  tls: none\n  timeout: 10s\nhost:\n  use: default\n" % sink_port)

    def start(self, timeout=30):
        self.starts += 1
        log = open(self.logpath, "ab")
        mark = os.path.getsize(self.logpath)
        self.proc = subprocess.Popen([self.binary, "serve", "--config", self.config],
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(self.logpath, "rb") as f:
                f.seek(mark)
                if b"listening" in f.read():
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError("relay did not start; see %s" % self.logpath)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def rss_kib(self):
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            return None
        return None

    def spooled(self):
        """Entries in queue/, failed/ and quarantine/ (spool layout of Spool.swift)."""
        counts = {}
        for name in ("queue", "failed", "quarantine"):
            path = os.path.join(self.spool, name)
            counts[name] = len([n for n in os.listdir(path) if not n.startswith(".")]) if os.path.isdir(path) else 0
        return counts

def message(token, size=1024):
    filler = ("x" * 76 + "\r\n") * max(1, size // 78)
    return ("From: stress@acme.example\r\nTo: sink@example.com\r\nSubject: %s\r\n\r\n%s%s\r\n"
            % (token, filler, token)).encode()


def submit_one(port, token, timeout=30):
    """One whole session for one message; returns the 250 reply text or raises."""
    with smtplib.SMTP("127.0.0.1", port, timeout=timeout) as s:
        s.ehlo("stress.test")
        s.mail("stress@acme.example")
        s.rcpt("sink@example.com")
        code, reply = s.data(message(token))
        if code != 250:
            raise smtplib.SMTPResponseException(code, reply)
        return reply.decode()


def percentile(values, p):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100.0 * (len(ordered) - 1))))]


def emit(result):
    """One JSON line on stdout for stress.sh's table."""
    print("RESULT " + json.dumps(result), flush=True)
