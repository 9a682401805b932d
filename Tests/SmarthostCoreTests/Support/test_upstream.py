#!/usr/bin/python3
"""A real upstream SMTP server for smarthost's end-to-end tests, built on Debian's aiosmtpd.

It listens on an ephemeral loopback port (printed as `READY port=N`), speaks plain SMTP,
STARTTLS or implicit TLS, optionally requires AUTH, and records what it received under
--outdir: one `<n>.eml` per message with a JSON envelope beside it, and `auth.log` with one
line per AUTH attempt noting whether TLS was up — so a test can prove that no credential
ever crossed the wire in clear text.

With --oauth-state DIR it offers XOAUTH2 and OAUTHBEARER instead of PLAIN/LOGIN and accepts
only tokens oauth_endpoint.py issued into DIR (unexpired, not in DIR/revoked.txt, bound to the
user when the grant had a subject). A refused token gets --oauth-style google (a 334 base64
JSON challenge, then 535 5.7.8 after the client's reply) or microsoft (535 5.7.3 at once).
oauth.log has one line per attempt: mechanism, user, result, never the token.

With --accounts FILE it takes any `user:password` line of FILE, read again at every AUTH,
so a test revokes a key by rewriting the file (the next AUTH with it gets 535); each
message's JSON then names the session it came in (`session`, one number per connection) and
the password that session authenticated with, and sessions.log has `open N`/`close N` lines.

Faults a real server produces only on demand are flags: --data-reply "451 4.3.0 later:2"
answers the first 2 messages with that reply; --reject-rcpt addr=550 refuses one recipient.
"""
import argparse
import asyncio
import base64
import collections
import time
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def tls_active(server, session):
    """STARTTLS sets session.ssl; implicit TLS lives in the transport from the first byte."""
    if session.ssl is not None:
        return True
    transport = getattr(server, "transport", None)
    return transport is not None and transport.get_extra_info("ssl_object") is not None


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
            "tls": tls_active(server, session),
            "auth_user": (session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword)
                          else None),
            "helo": session.host_name,
            "session": getattr(server, "serial", None),
            "auth_password": (session.auth_data.password.decode() if isinstance(session.auth_data, LoginPassword)
                              else None),
        }
        with open(base + ".json", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 2.0.0 OK: stored as %d" % self.count


class RecordingSMTP(SMTP):
    """Logs every AUTH attempt with the TLS state before aiosmtpd handles it."""

    serials = 0

    def __init__(self, *args, authlog=None, sessionlog=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._authlog = authlog
        self._sessionlog = sessionlog
        RecordingSMTP.serials += 1
        self.serial = RecordingSMTP.serials

    def connection_made(self, transport):
        if self._sessionlog:
            with open(self._sessionlog, "a") as f:
                f.write("open %d\n" % self.serial)
        super().connection_made(transport)

    def connection_lost(self, exc):
        if self._sessionlog:
            with open(self._sessionlog, "a") as f:
                f.write("close %d\n" % self.serial)
        super().connection_lost(exc)

    async def smtp_AUTH(self, arg):
        with open(self._authlog, "a") as f:
            f.write("tls=%d mechanism=%s\n" % (1 if tls_active(self, self.session) else 0,
                                               (arg or "").split(" ")[0].upper()))
        return await super().smtp_AUTH(arg)


class OAuthSMTP(RecordingSMTP):
    """XOAUTH2 and OAUTHBEARER (RFC 7628) against the test token endpoint's state."""
    # Bearer tokens make AUTH lines of several KB (RFC 4954 allows 12 288 octets).
    line_length_limit = 16384
    command_size_limit = 16384
    command_size_limits = collections.defaultdict(lambda: 16384)

    def __init__(self, *args, oauth_state=None, oauth_style="google", **kwargs):
        super().__init__(*args, **kwargs)
        self._oauth_state = oauth_state
        self._oauth_style = oauth_style

    def connection_lost(self, exc):
        # Lets a test wait for the relay to drop an idle connection instead of sleeping.
        if self._oauth_state:
            with open(os.path.join(self._oauth_state, "connections.log"), "a") as f:
                f.write("closed\n")
        super().connection_lost(exc)

    def _log(self, mechanism, user, result):
        with open(os.path.join(self._oauth_state, "oauth.log"), "a") as f:
            f.write("mechanism=%s user=%s result=%s tls=%d\n"
                    % (mechanism, user, result, 1 if tls_active(self, self.session) else 0))

    def _valid(self, user, token):
        try:
            with open(os.path.join(self._oauth_state, "tokens.json")) as f:
                tokens = json.load(f)
        except FileNotFoundError:
            tokens = {}
        try:
            with open(os.path.join(self._oauth_state, "revoked.txt")) as f:
                revoked = set(f.read().split())
        except FileNotFoundError:
            revoked = set()
        entry = tokens.get(token)
        if entry is None or token in revoked:
            return "unknown-or-revoked"
        if entry["exp"] <= time.time():
            return "expired"
        if entry.get("sub") and entry["sub"] != user:
            return "wrong-user"
        return "ok"

    async def _finish(self, mechanism, user, token, ack):
        result = self._valid(user, token)
        self._log(mechanism, user, result)
        if result == "ok":
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        if self._oauth_style == "microsoft":
            return AuthResult(success=False, handled=False, message="535 5.7.3 Authentication unsuccessful")
        challenge = json.dumps({"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"})
        await self.push("334 " + base64.b64encode(challenge.encode()).decode())
        line = await self._reader.readline()
        if line.strip() != ack:
            self._log(mechanism, user, "bad-ack")
        return AuthResult(success=False, handled=False,
                          message="535 5.7.8 Username and Password not accepted. For more information, go to")

    async def auth_XOAUTH2(self, server, args):
        try:
            fields = base64.b64decode(args[1]).decode().split("\x01")
            user = fields[0][len("user="):]
            token = fields[1][len("auth=Bearer "):]
        except Exception:
            return AuthResult(success=False, handled=False, message="501 5.5.2 malformed XOAUTH2")
        return await self._finish("XOAUTH2", user, token, b"")

    async def auth_OAUTHBEARER(self, server, args):
        try:
            gs2, *pairs = base64.b64decode(args[1]).decode().split("\x01")
            assert gs2.startswith("n,a=") and gs2.endswith(",")
            user = gs2[4:-1].replace("=2C", ",").replace("=3D", "=")
            kv = dict(p.split("=", 1) for p in pairs if p)
            assert kv["host"] and kv["port"]
            token = kv["auth"][len("Bearer "):]
        except Exception:
            return AuthResult(success=False, handled=False, message="501 5.5.2 malformed OAUTHBEARER")
        return await self._finish("OAUTHBEARER", user, token, base64.b64encode(b"\x01"))


def make_accounts_authenticator(path):
    def authenticator(server, session, envelope, mechanism, auth_data):
        with open(path) as f:
            accounts = {line.strip() for line in f if line.strip()}
        if isinstance(auth_data, LoginPassword) and \
                "%s:%s" % (auth_data.login.decode(), auth_data.password.decode()) in accounts:
            return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)
    return authenticator


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
    p.add_argument("--accounts", help="file of user:password lines, any of them accepted, read at each AUTH")
    p.add_argument("--mechanisms", default="PLAIN LOGIN", help="AUTH mechanisms to offer")
    p.add_argument("--outdir", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--data-reply", default="", help="'451 4.3.0 text:N' for the first N messages")
    p.add_argument("--reject-rcpt", action="append", default=[], help="addr=550 5.1.1 text")
    p.add_argument("--oauth-state", help="token endpoint state directory: offer XOAUTH2/OAUTHBEARER")
    p.add_argument("--oauth-style", choices=["google", "microsoft"], default="google")
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
    factory = RecordingSMTP
    if a.oauth_state:
        factory = OAuthSMTP
        kwargs["oauth_state"] = a.oauth_state
        kwargs["oauth_style"] = a.oauth_style
        kwargs["auth_required"] = True
        kwargs["auth_require_tls"] = True
        kwargs["authenticator"] = lambda *args: AuthResult(success=False, handled=False)
        offered = set(a.mechanisms.split()) if a.mechanisms != "PLAIN LOGIN" else {"XOAUTH2", "OAUTHBEARER"}
        kwargs["auth_exclude_mechanism"] = list({"PLAIN", "LOGIN", "XOAUTH2", "OAUTHBEARER"} - offered)
    elif a.auth or a.accounts:
        if a.accounts:
            kwargs["authenticator"] = make_accounts_authenticator(a.accounts)
            kwargs["sessionlog"] = os.path.join(a.outdir, "sessions.log")
        else:
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
        kwargs["require_starttls"] = bool(a.auth or a.accounts or a.oauth_state)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: factory(handler, **kwargs), a.host, a.port,
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
