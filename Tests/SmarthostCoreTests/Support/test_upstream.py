#!/usr/bin/python3
"""A real upstream SMTP server for smarthost's end-to-end tests, built on Debian's aiosmtpd.

It listens on an ephemeral loopback port (printed as `READY port=N`), speaks plain SMTP,
STARTTLS or implicit TLS, optionally requires AUTH, and records what it received under
--outdir: one `<n>.eml` per message with a JSON envelope beside it, and `auth.log` with one
line per AUTH attempt noting whether TLS was up — so a test can prove that no credential
ever crossed the wire in clear text.

Faults a real server produces only on demand are flags: --data-reply "451 4.3.0 later:2"
answers the first 2 messages with that reply; --reject-rcpt addr=550 refuses one recipient.
"""
import argparse
import asyncio
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Recorder:
    def __init__(self, outdir, data_reply, data_reply_count, reject_rcpt):
        self.outdir = outdir
        self.count = 0
        self.data_reply = data_reply
        self.data_reply_left = data_reply_count
        self.reject_rcpt = reject_rcpt

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.reject_rcpt.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_reply and self.data_reply_left > 0:
            self.data_reply_left -= 1
            return self.data_reply
        self.count += 1
        base = os.path.join(self.outdir, "%06d" % self.count)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None,
            "auth_user": (session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword)
                          else None),
            "helo": session.host_name,
        }
        with open(base + ".json", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 2.0.0 OK: stored as %d" % self.count


class RecordingSMTP(SMTP):
    """Logs every AUTH attempt with the TLS state before aiosmtpd handles it."""

    def __init__(self, *args, authlog=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._authlog = authlog

    async def smtp_AUTH(self, arg):
        with open(self._authlog, "a") as f:
            f.write("tls=%d mechanism=%s\n" % (1 if self.session.ssl is not None else 0,
                                               (arg or "").split(" ")[0].upper()))
        return await super().smtp_AUTH(arg)


def make_authenticator(user, password):
    def authenticator(server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user \
                and auth_data.password.decode() == password:
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)
    return authenticator


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["plain", "starttls", "implicit"], default="plain")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--auth", help="user:password required from clients")
    p.add_argument("--mechanisms", default="PLAIN LOGIN", help="AUTH mechanisms to offer")
    p.add_argument("--outdir", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--data-reply", default="", help="'451 4.3.0 text:N' for the first N messages")
    p.add_argument("--reject-rcpt", action="append", default=[], help="addr=550 5.1.1 text")
    a = p.parse_args()
    os.makedirs(a.outdir, exist_ok=True)

    data_reply, count = "", 0
    if a.data_reply:
        data_reply, _, n = a.data_reply.rpartition(":")
        count = int(n)
    rejects = {}
    for item in a.reject_rcpt:
        addr, _, reply = item.partition("=")
        rejects[addr.lower()] = reply
    handler = Recorder(a.outdir, data_reply, count, rejects)

    context = None
    if a.mode != "plain":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(a.cert, a.key)

    kwargs = dict(hostname="upstream.test", authlog=os.path.join(a.outdir, "auth.log"))
    if a.auth:
        user, _, password = a.auth.partition(":")
        kwargs["authenticator"] = make_authenticator(user, password)
        kwargs["auth_required"] = True
        # aiosmtpd refuses AUTH before TLS itself when it can offer TLS; we still log any try.
        kwargs["auth_require_tls"] = a.mode == "starttls"
        excluded = {"PLAIN", "LOGIN"} - set(a.mechanisms.split())
        kwargs["auth_exclude_mechanism"] = list(excluded)
    else:
        kwargs["auth_require_tls"] = False
    if a.mode == "starttls":
        kwargs["tls_context"] = context
        kwargs["require_starttls"] = bool(a.auth)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: RecordingSMTP(handler, **kwargs), a.host, a.port,
                                      ssl=context if a.mode == "implicit" else None)
    port = server.sockets[0].getsockname()[1]
    print("READY port=%d" % port, flush=True)
    # End with the test: when stdin closes (the test process went away), stop.
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
