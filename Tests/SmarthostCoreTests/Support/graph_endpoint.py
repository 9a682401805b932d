#!/usr/bin/python3
"""A Microsoft Graph `sendMail` endpoint for smarthost's tests: HTTPS (http.server + ssl,
with a certificate the test generated), POST /v1.0/users/{mailbox}/sendMail with the MIME
message base64-encoded as a text/plain body, and the checks Graph makes.

  --tenant MAILBOX=STATE   the mailbox belongs to the tenant whose token endpoint
                           (oauth_endpoint.py) keeps STATE/tokens.json: only a bearer token
                           issued there, unexpired and not revoked, may send as it (401
                           InvalidAuthenticationToken otherwise); a mailbox no tenant has is 404

What each message gets is scripted by a header in it, `X-Graph-Script: 429:7,202` (one step
per attempt of that Message-ID, the last repeating): 202, 400 (ErrorInvalidRecipients), 401,
403 (ErrorAccessDenied), 404 (ErrorInvalidUser), 413, 429:N / 503:N / 504:N (Retry-After N),
500. Without it: 202. More than --concurrency requests at once for one mailbox is a 429
(ApplicationThrottled), as Graph does past 4.

Every request is one line of STATE/requests.log (`mailbox=… status=… msgid=… tenant=…`),
never a token; each accepted message is STATE/messages/NNNNN.eml, the MIME as decoded.
"""
import argparse
import base64
import binascii
import json
import os
import re
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
ERRORS = {
    400: ("ErrorInvalidRecipients", "At least one recipient isn't valid., A message can't be sent because it contains no recipients."),
    401: ("InvalidAuthenticationToken", "Access token validation failure. Invalid audience."),
    403: ("ErrorAccessDenied", "Access is denied. Check credentials and try again."),
    404: ("ErrorInvalidUser", "The requested user '%s' is invalid."),
    413: ("ErrorRequestEntityTooLarge", "The maximum request length supported is 4MB."),
    429: ("ApplicationThrottled", "Application is over its MailboxConcurrency limit."),
    500: ("ErrorInternalServerError", "An internal server error occurred. The operation failed."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable."),
    504: ("GatewayTimeout", "The gateway did not receive a response in time."),
}


class State:
    def __init__(self, args):
        self.dir = args.state
        self.tenants = dict(t.split("=", 1) for t in args.tenant)
        self.concurrency = args.concurrency
        self.active = {}
        self.attempts = {}
        self.accepted = 0
        self.max_active = 0
        os.makedirs(os.path.join(self.dir, "messages"), exist_ok=True)

    def token_ok(self, mailbox, token):
        tenant_state = self.tenants.get(mailbox)
        if tenant_state is None or not token:
            return False
        try:
            with open(os.path.join(tenant_state, "tokens.json")) as f:
                tokens = json.load(f)
        except FileNotFoundError:
            return False
        revoked = set()
        try:
            with open(os.path.join(tenant_state, "revoked.txt")) as f:
                revoked = set(f.read().split())
        except FileNotFoundError:
            pass
        entry = tokens.get(token)
        return entry is not None and entry["exp"] > time.time() and token not in revoked

    def log(self, line):
        with LOCK:
            with open(os.path.join(self.dir, "requests.log"), "a") as f:
                f.write(line + "\n")


def header(mime, name):
    head = mime.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    m = re.search(r"(?im)^%s:[ \t]*(.*(?:\r\n[ \t].*)*)" % re.escape(name), head)
    return re.sub(r"\r\n[ \t]+", " ", m.group(1)).strip() if m else None


class Handler(BaseHTTPRequestHandler):
    state = None
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, mailbox, msgid, retry_after=None, code=None, message=None):
        self.state.log("mailbox=%s status=%d msgid=%s retry_after=%s t=%.3f" %
                       (mailbox, status, msgid, retry_after or "-", time.time()))
        data = b""
        if status != 202:
            c, m = ERRORS.get(status, ("UnknownError", "Unknown error."))
            code, message = code or c, message or (m % mailbox if "%s" in m else m)
            data = json.dumps({"error": {"code": code, "message": message,
                                         "innerError": {"request-id": "0000", "date": "2026-12-07T21:00:00"}}}).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        if retry_after is not None:
            self.send_header("Retry-After", str(retry_after))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        m = re.fullmatch(r"/v1\.0/users/([^/]+)/sendMail", self.path)
        if not m:
            return self.reply(400, "-", "-", code="BadRequest", message="Unsupported path %s" % self.path)
        mailbox = urllib.parse.unquote(m.group(1))
        if mailbox not in self.state.tenants:
            return self.reply(404, mailbox, "-")
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        if not self.state.token_ok(mailbox, token):
            return self.reply(401, mailbox, "-")
        if self.headers.get("Content-Type", "") != "text/plain":
            return self.reply(400, mailbox, "-", code="ErrorMimeContentInvalid", message="Content-Type must be text/plain")
        try:
            mime = base64.b64decode(body, validate=True)
        except binascii.Error:
            return self.reply(400, mailbox, "-", code="ErrorMimeContentInvalidBase64String", message="Invalid base64 string for MIME content.")
        msgid = header(mime, "Message-ID") or "-"
        with LOCK:
            active = self.state.active.get(mailbox, 0) + 1
            self.state.active[mailbox] = active
            self.state.max_active = max(self.state.max_active, active)
            attempt = self.state.attempts.get(msgid, 0)
            self.state.attempts[msgid] = attempt + 1
        try:
            if active > self.state.concurrency:
                return self.reply(429, mailbox, msgid, retry_after=1,
                                  message="Application is over its MailboxConcurrency limit.")
            time.sleep(self.state.delay)
            script = (header(mime, "X-Graph-Script") or "202").split(",")
            step = script[min(attempt, len(script) - 1)].strip()
            status, _, retry = step.partition(":")
            status = int(status)
            if status == 202:
                with LOCK:
                    self.state.accepted += 1
                    n = self.state.accepted
                with open(os.path.join(self.state.dir, "messages", "%05d.eml" % n), "wb") as f:
                    f.write(mime)
            self.reply(status, mailbox, msgid, retry_after=retry or None)
        finally:
            with LOCK:
                self.state.active[mailbox] -= 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--state", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--tenant", action="append", default=[])
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--delay", type=float, default=0.0, help="seconds each request takes")
    a = p.parse_args()
    os.makedirs(a.state, exist_ok=True)
    Handler.state = State(a)
    Handler.state.delay = a.delay
    ThreadingHTTPServer.allow_reuse_address = True
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(a.cert, a.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print("READY port=%d" % server.server_address[1], flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()   # ends with the test
    server.shutdown()


if __name__ == "__main__":
    main()
