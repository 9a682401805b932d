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

    def __init__(self, binary, workdir, sink_port, limits="", queue=None, route_timeout="10s",
                 min_free_space="1MiB", wrapper=()):
        self.binary = binary
        self.wrapper = list(wrapper)    # e.g. setpriv … so that root's file permissions apply
        self.port = free_port()
        self.spool = os.path.join(workdir, "spool")
        self.config = os.path.join(workdir, "smarthost.yaml")
        self.logpath = os.path.join(workdir, "relay.log")
        self.proc = None
        self.starts = 0
        queue = queue or "  retry_min: 1s\n  retry_max: 2s\n  max_age: 1d\n"
        with open(self.config, "w") as f:
            f.write("hostname: relay.stress\nlisten: [\"127.0.0.1:%d\"]\nspool: %s\n" % (self.port, self.spool))
            f.write("limits:\n  min_free_space: %s\n%s" % (min_free_space, limits))
            f.write("queue:\n%s" % queue)
            f.write("default:\n  host: 127.0.0.1\n  port: %d\n  tls: none\n  timeout: %s\nhost:\n  use: default\n"
                    % (sink_port, route_timeout))

    def start(self, timeout=30):
        self.starts += 1
        log = open(self.logpath, "ab")
        mark = os.path.getsize(self.logpath)
        self.proc = subprocess.Popen(self.wrapper + [self.binary, "serve", "--config", self.config],
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

    def queue_cli(self, *args, timeout=30):
        """`smarthost queue ARGS --config …`; returns (exit status, stdout, stderr)."""
        try:
            done = subprocess.run([self.binary, "queue", *args, "--config", self.config],
                                  capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, "", "timed out after %ss" % timeout
        return done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")

    def queue_json(self, failed=False):
        """`queue list [--failed] --json` as a list of dicts, or None when the command fails."""
        code, out, _ = self.queue_cli("list", *(["--failed"] if failed else []), "--json")
        if code != 0:
            return None
        try:
            return json.loads(out)
        except ValueError:
            return None

    def log_text(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode(errors="replace")


class Dialogue:
    """A raw SMTP client that records every command and the exact reply it got, so a phase
    can show what the relay said at each step. Never raises for an SMTP reply; a broken
    connection is recorded as the reply `<closed: …>` (code None)."""

    def __init__(self, port, timeout=20, transcript=None):
        self.transcript = transcript if transcript is not None else []
        self.sock = None
        self.buf = b""
        self.timeout = timeout
        try:
            self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
            self.greeting = self._reply("<connect>")
        except OSError as e:
            self.greeting = self._record("<connect>", None, "<closed: %s>" % e)

    def _record(self, command, code, text):
        self.transcript.append((command, code, text))
        return code, text

    def _reply(self, command):
        lines = []
        try:
            while True:
                while b"\r\n" not in self.buf:
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        raise OSError("connection closed by the relay")
                    self.buf += chunk
                line, self.buf = self.buf.split(b"\r\n", 1)
                lines.append(line.decode(errors="replace"))
                if len(line) < 4 or line[3:4] != b"-":
                    break
        except OSError as e:
            self.close()
            return self._record(command, None, " / ".join(lines + ["<closed: %s>" % e]))
        code = int(lines[-1][:3]) if lines[-1][:3].isdigit() else None
        return self._record(command, code, " / ".join(lines))

    def command(self, line):
        if self.sock is None:
            return self._record(line, None, "<closed>")
        try:
            self.sock.sendall(line.encode() + b"\r\n")
        except OSError as e:
            self.close()
            return self._record(line, None, "<closed: %s>" % e)
        return self._reply(line)

    def data(self, content):
        """Sends dot-stuffed `content` (CRLF lines) and the end marker; the reply to it."""
        if self.sock is None:
            return self._record("<end of data>", None, "<closed>")
        body = content.replace(b"\r\n.", b"\r\n..")
        if body.startswith(b"."):
            body = b"." + body
        try:
            self.sock.sendall(body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n")
        except OSError as e:
            self.close()
            return self._record("<end of data, %d bytes>" % len(content), None, "<closed: %s>" % e)
        return self._reply("<end of data, %d bytes>" % len(content))

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None


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
