#!/usr/bin/python3
"""A real OAuth 2.0 token endpoint for smarthost's tests: HTTPS (http.server + ssl, with a
certificate the test generated), the three grants smarthost uses, and the checks a real
identity provider makes.

  client_credentials   client_secret, or a client assertion JWT (RFC 7523) whose PS256/RS256
                       signature is verified against --client-cert, with x5t#S256 matching it
  jwt-bearer           a service-account JWT (RS256) verified against --sa-cert; the token is
                       bound to its `sub`
  refresh_token        against the current refresh token; --rotate issues a new one each time
                       and retires the old one

Tokens live --lifetime seconds. Issued tokens go to STATE/tokens.json ({token: {exp, sub}})
for the upstream (test_upstream.py --oauth-state) to check; STATE/revoked.txt lists revoked
ones. Every request is one line of STATE/requests.log (`grant=… status=…`), never a secret.
Errors are RFC 6749 §5.2 JSON, worded like Entra ID's and Google's.
"""
import argparse
import base64
import hashlib
import json
import os
import secrets
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography import x509

LOCK = threading.Lock()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class State:
    def __init__(self, args):
        self.args = args
        self.dir = args.state
        self.client_cert = None
        if args.client_cert:
            with open(args.client_cert, "rb") as f:
                self.client_cert = x509.load_pem_x509_certificate(f.read())
        self.sa_key = None
        if args.sa_cert:
            with open(args.sa_cert, "rb") as f:
                self.sa_key = x509.load_pem_x509_certificate(f.read()).public_key()
        self.client_secret = None
        if args.client_secret_file:
            with open(args.client_secret_file) as f:
                self.client_secret = f.read().strip()
        self.refresh_token = args.refresh_token
        self.save_refresh()

    def tokens(self):
        try:
            with open(os.path.join(self.dir, "tokens.json")) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def issue(self, sub):
        # 1.5 KB, like Entra ID's: AUTH lines well past 512 octets.
        token = "tk-" + secrets.token_urlsafe(1100)
        tokens = self.tokens()
        tokens[token] = {"exp": time.time() + self.args.lifetime, "sub": sub}
        path = os.path.join(self.dir, "tokens.json")
        with open(path + ".tmp", "w") as f:
            json.dump(tokens, f)
        os.rename(path + ".tmp", path)
        return token

    def save_refresh(self):
        if self.refresh_token:
            with open(os.path.join(self.dir, "refresh_current.txt"), "w") as f:
                f.write(self.refresh_token)

    def log(self, line):
        with open(os.path.join(self.dir, "requests.log"), "a") as f:
            f.write(line + "\n")


class Handler(BaseHTTPRequestHandler):
    state = None

    def log_message(self, *args):
        pass

    def reply(self, status, body, grant):
        self.state.log("grant=%s status=%d error=%s" % (grant, status, body.get("error", "-")))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, error, description, grant):
        self.reply(status, {"error": error, "error_description": description}, grant)

    def token(self, grant, sub=None, extra=None):
        body = {"token_type": "Bearer", "expires_in": self.state.args.lifetime,
                "access_token": self.state.issue(sub)}
        body.update(extra or {})
        self.reply(200, body, grant)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
        field = lambda name: (form.get(name) or [None])[0]
        url = "https://%s%s" % (self.headers["Host"], self.path)
        grant = field("grant_type") or "-"
        with LOCK:
            if grant == "client_credentials":
                self.client_credentials(field, url)
            elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
                self.jwt_bearer(field, url)
            elif grant == "refresh_token":
                self.refresh(field)
            else:
                self.error(400, "unsupported_grant_type", "grant_type %s" % grant, grant)

    def client_credentials(self, field, url):
        a = self.state.args
        if field("client_id") != a.client_id:
            return self.error(400, "unauthorized_client",
                              "AADSTS700016: Application with identifier '%s' was not found in the directory."
                              % field("client_id"), "client_credentials")
        if field("scope") != a.scope:
            return self.error(400, "invalid_scope", "AADSTS70011: The provided value for scope is not valid.",
                              "client_credentials")
        assertion = field("client_assertion")
        if assertion is not None:
            if field("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
                return self.error(400, "invalid_request", "bad client_assertion_type", "client_assertion")
            try:
                header = jwt.get_unverified_header(assertion)
                der = self.state.client_cert.public_bytes(encoding=__import__(
                    "cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.DER)
                if header.get("x5t#S256") != b64url(hashlib.sha256(der).digest()):
                    raise ValueError("x5t#S256 does not match the registered certificate")
                claims = jwt.decode(assertion, self.state.client_cert.public_key(),
                                    algorithms=["PS256", "RS256"], audience=url,
                                    options={"require": ["exp", "iss", "sub", "aud", "jti"]})
                if claims["iss"] != a.client_id or claims["sub"] != a.client_id:
                    raise ValueError("iss/sub is not the client id")
            except Exception as e:
                return self.error(401, "invalid_client",
                                  "AADSTS700027: Client assertion failed signature validation. (%s)" % e,
                                  "client_assertion")
            return self.token("client_assertion")
        if self.state.client_secret is None or field("client_secret") != self.state.client_secret:
            return self.error(401, "invalid_client",
                              "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the "
                              "request is the client secret value, not the client secret ID.\r\n"
                              "Trace ID: 0000\r\nCorrelation ID: 1111", "client_credentials")
        self.token("client_credentials")

    def jwt_bearer(self, field, url):
        a = self.state.args
        try:
            claims = jwt.decode(field("assertion") or "", self.state.sa_key, algorithms=["RS256"], audience=url,
                                options={"require": ["exp", "iat", "iss", "aud", "sub"]})
        except Exception as e:
            return self.error(400, "invalid_grant", "Invalid JWT Signature. (%s)" % e, "jwt_bearer")
        if claims["iss"] != a.sa_email:
            return self.error(401, "invalid_client", "The OAuth client was not found.", "jwt_bearer")
        if claims.get("scope") != "https://mail.google.com/":
            return self.error(400, "invalid_scope", "scope", "jwt_bearer")
        if claims["exp"] - claims["iat"] > 3600:
            return self.error(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token", "jwt_bearer")
        self.token("jwt_bearer", sub=claims["sub"])

    def refresh(self, field):
        a = self.state.args
        if field("client_id") != a.client_id or (self.state.client_secret is not None
                                                 and field("client_secret") != self.state.client_secret):
            return self.error(401, "invalid_client", "Unauthorized", "refresh_token")
        if not self.state.refresh_token or field("refresh_token") != self.state.refresh_token:
            return self.error(400, "invalid_grant", "Token has been expired or revoked.", "refresh_token")
        extra = {}
        if a.rotate:
            self.state.refresh_token = "rt-" + secrets.token_urlsafe(24)
            self.state.save_refresh()
            extra["refresh_token"] = self.state.refresh_token
        self.token("refresh_token", extra=extra)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--state", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--lifetime", type=int, default=3600)
    p.add_argument("--client-id", default="app-1")
    p.add_argument("--client-secret-file")
    p.add_argument("--client-cert")
    p.add_argument("--scope", default="https://outlook.office365.com/.default")
    p.add_argument("--sa-cert")
    p.add_argument("--sa-email", default="relay@project.iam.gserviceaccount.com")
    p.add_argument("--refresh-token")
    p.add_argument("--rotate", action="store_true")
    a = p.parse_args()
    os.makedirs(a.state, exist_ok=True)
    Handler.state = State(a)
    ThreadingHTTPServer.allow_reuse_address = True
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
