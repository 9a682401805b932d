#!/usr/bin/python3
"""Runs `smarthost serve` against a fake journald, inside a private mount namespace
(`unshare -m --propagation private`): a tmpfs over /run holds the journal's native socket
/run/systemd/journal/socket, and the relay's stderr is a file whose st_dev:st_ino is passed as
$JOURNAL_STREAM, as systemd does for a service. Makes one refusal, submits one message,
stops the relay, and prints every record the "journal" received as one JSON object per line, then
`STDERR <json string>` with what the relay wrote to stderr.

usage: fake_journal.py SMARTHOST CONFIG
"""
import json
import os
import signal
import smtplib
import socket
import struct
import subprocess
import sys
import tempfile
import time

binary, config = sys.argv[1], sys.argv[2]
subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run"], check=True)
os.makedirs("/run/systemd/journal")
journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
journal.bind("/run/systemd/journal/socket")
journal.settimeout(0.2)


def parse(datagram):
    """The native protocol: `KEY=value\\n`, or `KEY\\n<le64 length><value>\\n` for binary values."""
    fields, i = {}, 0
    while i < len(datagram):
        nl = datagram.index(b"\n", i)
        line = datagram[i:nl]
        if b"=" in line:
            key, _, value = line.partition(b"=")
            i = nl + 1
        else:
            key = line
            (length,) = struct.unpack("<Q", datagram[nl + 1:nl + 9])
            value = datagram[nl + 9:nl + 9 + length]
            i = nl + 9 + length + 1
        fields[key.decode()] = value.decode(errors="replace")
    return fields


records = []


def drain(until=None, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            records.append(parse(journal.recv(65536)))
        except socket.timeout:
            pass
        if until and any(until(r) for r in records):
            return True
    return False


stderr = tempfile.TemporaryFile()
st = os.fstat(stderr.fileno())
env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID")}
env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
relay = subprocess.Popen([binary, "serve", "--config", config], stderr=stderr, stdout=stderr, env=env)
try:
    if not drain(lambda r: r.get("SMARTHOST_EVENT") == "listening"):
        sys.exit("relay never reported listening")
    address = next(r["SMARTHOST_ADDRESS"] for r in records if r.get("SMARTHOST_EVENT") == "listening")
    port = int(address.rsplit(":", 1)[1])
    with smtplib.SMTP("127.0.0.1", port, local_hostname="app.test") as s:
        s.ehlo()
        s.docmd("RCPT", "TO:<early@example.com>")   # 503: a refusal record
        s.sendmail("robot@acme.example", ["ops@example.com"], b"Subject: journal\r\nX-Smarthost-Org: acme\r\n\r\nhi\r\n")
    drain(lambda r: r.get("SMARTHOST_EVENT") == "deferred")
finally:
    relay.send_signal(signal.SIGTERM)
    relay.wait(20)
drain(lambda r: r.get("SMARTHOST_EVENT") == "stopped", timeout=3)
for r in records:
    print(json.dumps(r))
stderr.seek(0)
print("STDERR " + json.dumps(stderr.read().decode(errors="replace")))
