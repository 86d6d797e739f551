#!/usr/bin/env python3
"""A fake OAuth 2.0 identity provider for Synapse's legacy SSO (`oidc_providers`), on
loopback, for the tests: the authorization endpoint sends the browser straight back to
Synapse's callback with a code for whoever the test said logs in next (POST /_test/next
{"username": ...}); the token endpoint checks Synapse's client secret; userinfo names the
user. No id_token (Synapse is configured without the "openid" scope and reads userinfo).

Usage: fake-idp.py PORT CLIENT_SECRET
"""

import secrets
import sys
import threading
import urllib.parse
from http.server import ThreadingHTTPServer

from fake_http import JsonHandler

PORT, CLIENT_SECRET = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()
state = {"next": None}
codes = {}  # code -> username
tokens = {}  # access token -> username


class Handler(JsonHandler):
    def do_GET(self):
        path, q = self.query()
        if path == "/authorize":
            with lock:
                user, state["next"] = state["next"], None
                if not user or q.get("response_type") != "code":
                    return self.send(400, {"error": "access_denied"})
                code = secrets.token_urlsafe(16)
                codes[code] = user
            back = q["redirect_uri"] + ("&" if "?" in q["redirect_uri"] else "?") + urllib.parse.urlencode(
                {"code": code, "state": q.get("state", "")})
            return self.send(302, None, back)
        if path == "/userinfo":
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            with lock:
                user = tokens.get(token)
            if not user:
                return self.send(401, {"error": "invalid_token"})
            return self.send(200, {"sub": user, "preferred_username": user})
        self.send(404, {"error": "not_found"})

    def do_POST(self):
        path = urllib.parse.urlparse(self.path).path
        body = self.body()
        if path == "/_test/next":
            with lock:
                state["next"] = body["username"]
            return self.send(200, {})
        if path == "/token":
            with lock:
                user = codes.pop(body.get("code", ""), None)
                if user is None or body.get("client_secret") != CLIENT_SECRET:
                    return self.send(400, {"error": "invalid_grant"})
                token = secrets.token_urlsafe(24)
                tokens[token] = user
            return self.send(200, {"access_token": token, "token_type": "Bearer", "expires_in": 300})
        self.send(404, {"error": "not_found"})


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
