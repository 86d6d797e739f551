#!/usr/bin/env python3
"""A fake Matrix Authentication Service (OAuth 2.0 provider) for the tests, on loopback.

Synapse delegates authentication to it (`matrix_authentication_service`); matrix-transplant
logs in through it as a native app. It does what the tests need of a real MAS and nothing
more: discovery, dynamic client registration (RFC 7591), the authorization code flow with
PKCE S256 (the "browser" is the test: it says who logs in next through /_test/next, then
follows the URL the tool prints, and is sent straight back to the tool's loopback listener),
the device authorization grant (RFC 8628: the "phone" is the test too, which says who logs
in next, then opens the verification address with the code; the tool polls meanwhile),
the token endpoint (codes, device codes, rotating refresh tokens), revocation (RFC 7009, which deletes the
device in Synapse, as MAS does), and introspection for Synapse. Users and devices are
provisioned in Synapse through its /_synapse/mas/ API.

Usage: fake-mas.py PORT SYNAPSE_URL SECRET ACCESS_TOKEN_SECONDS
Test-only endpoints: POST /_test/next {"localpart": ...}, GET /_test/stats.
The device grant's verification address: GET /link?code=USER_CODE&localpart=L approves it
as L (without localpart: as the user named by /_test/next); &deny=1 refuses it.
"""

import base64
import hashlib
import json
import secrets
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import ThreadingHTTPServer

from fake_http import JsonHandler

PORT, SYNAPSE, SECRET, LIFETIME = int(sys.argv[1]), sys.argv[2].rstrip("/"), sys.argv[3], int(sys.argv[4])
BASE = f"http://127.0.0.1:{PORT}/"
lock = threading.Lock()
clients = {}  # client_id -> registration
codes = {}  # code -> {client_id, redirect_uri, challenge, localpart, device}
access = {}  # token -> {localpart, device, scope, expires, session}
refresh = {}  # token -> session id
sessions = {}  # session id -> {localpart, device, scope, client_id, alive}
grants = {}  # device code -> {client_id, scope, device, user_code, localpart, denied, expires, last_poll}
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
INTERVAL = 1  # seconds between polls, as the grant tells the client
state = {"next": None, "refreshes": 0, "revocations": 0, "refused_refreshes": 0,
         "device_polls": 0, "slow_downs": 0}


def synapse(path, body):
    req = urllib.request.Request(
        f"{SYNAPSE}/_synapse/mas/{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()


def issue(session_id):
    s = sessions[session_id]
    token, rt = "mat_" + secrets.token_urlsafe(24), "mar_" + secrets.token_urlsafe(24)
    access[token] = {**s, "expires": time.time() + LIFETIME, "session": session_id}
    refresh[rt] = session_id
    return {"access_token": token, "refresh_token": rt, "token_type": "Bearer",
            "expires_in": LIFETIME, "scope": s["scope"]}


def end_session(session_id):
    s = sessions.get(session_id)
    if not s or not s["alive"]:
        return
    s["alive"] = False
    for t in [t for t, a in access.items() if a["session"] == session_id]:
        del access[t]
    for t in [t for t, sid in refresh.items() if sid == session_id]:
        del refresh[t]
    synapse("delete_device", {"localpart": s["localpart"], "device_id": s["device"]})


class Handler(JsonHandler):
    def do_GET(self):
        path, q = self.query()
        if path == "/.well-known/openid-configuration":
            return self.send(200, {
                "issuer": BASE,
                "authorization_endpoint": BASE + "authorize",
                "token_endpoint": BASE + "oauth2/token",
                "registration_endpoint": BASE + "oauth2/registration",
                "revocation_endpoint": BASE + "oauth2/revoke",
                "introspection_endpoint": BASE + "oauth2/introspect",
                "jwks_uri": BASE + "oauth2/keys.json",
                "account_management_uri": BASE + "account/",
                "response_types_supported": ["code"],
                "device_authorization_endpoint": BASE + "oauth2/device",
                "grant_types_supported": ["authorization_code", "refresh_token", DEVICE_GRANT],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["none"],
                "prompt_values_supported": ["create"],
            })
        if path == "/authorize":
            with lock:
                c = clients.get(q.get("client_id"))
                redirect = urllib.parse.urlparse(q.get("redirect_uri", ""))
                ok = (c and q.get("response_type") == "code" and q.get("code_challenge_method") == "S256"
                      and redirect.scheme == "http" and redirect.hostname == "127.0.0.1"
                      and redirect.path == "/callback" and state["next"])
                scopes = q.get("scope", "").split()
                devices = [s.rsplit(":", 1)[1] for s in scopes if s.startswith("urn:matrix:client:device:")]
                if not ok or "urn:matrix:client:api:*" not in scopes or len(devices) != 1:
                    return self.send(400, {"error": "invalid_request"})
                localpart, state["next"] = state["next"], None
                code = secrets.token_urlsafe(16)
                codes[code] = {"client_id": q["client_id"], "redirect_uri": q["redirect_uri"],
                               "challenge": q.get("code_challenge"), "localpart": localpart,
                               "device": devices[0], "scope": " ".join(scopes)}
            back = q["redirect_uri"] + "?" + urllib.parse.urlencode({"code": code, "state": q.get("state", "")})
            return self.send(302, None, back)
        if path == "/link":
            # Who approves: the one logged in on the phone (localpart=…), else /_test/next's.
            if q.get("localpart"):
                synapse("provision_user", {"localpart": q["localpart"]})
            with lock:
                g = next((g for g in grants.values() if g["user_code"] == q.get("code")), None)
                who = q.get("localpart") or state["next"]
                if not g or g["expires"] <= time.time() or not (who or q.get("deny")):
                    return self.send(400, {"error": "invalid_request"})
                if q.get("deny"):
                    g["denied"] = True
                else:
                    g["localpart"] = who
                    if not q.get("localpart"):
                        state["next"] = None
            return self.send(200, {"approved": not q.get("deny")})
        if path == "/_test/stats":
            with lock:
                live = sum(1 for s in sessions.values() if s["alive"])
                return self.send(200, {**{k: v for k, v in state.items() if k != "next"}, "live_sessions": live})
        self.send(404, {"error": "not_found"})

    def do_POST(self):
        path = urllib.parse.urlparse(self.path).path
        body = self.body()
        if path == "/_test/next":
            synapse("provision_user", {"localpart": body["localpart"]})
            with lock:
                state["next"] = body["localpart"]
            return self.send(200, {})
        if path == "/oauth2/registration":
            if body.get("application_type") != "native" or body.get("token_endpoint_auth_method") != "none":
                return self.send(400, {"error": "invalid_client_metadata"})
            with lock:
                cid = "client_" + secrets.token_hex(8)
                clients[cid] = body
            return self.send(201, {"client_id": cid, **body})
        if path == "/oauth2/device":
            with lock:
                scopes = body.get("scope", "").split()
                devices = [s.rsplit(":", 1)[1] for s in scopes if s.startswith("urn:matrix:client:device:")]
                c = clients.get(body.get("client_id"))
                if not c or DEVICE_GRANT not in c.get("grant_types", []) or len(devices) != 1 \
                        or "urn:matrix:client:api:*" not in scopes:
                    return self.send(400, {"error": "invalid_request"})
                code, user_code = secrets.token_urlsafe(24), secrets.token_hex(3).upper()
                grants[code] = {"client_id": body["client_id"], "scope": " ".join(scopes), "device": devices[0],
                                "user_code": user_code, "localpart": None, "denied": False,
                                "expires": time.time() + 120, "last_poll": 0.0}
            return self.send(200, {"device_code": code, "user_code": user_code,
                                   "verification_uri": BASE + "link",
                                   "verification_uri_complete": BASE + "link?code=" + user_code,
                                   "expires_in": 120, "interval": INTERVAL})
        if path == "/oauth2/token":
            with lock:
                if body.get("grant_type") == DEVICE_GRANT:
                    g = grants.get(body.get("device_code", ""))
                    if not g or g["client_id"] != body.get("client_id"):
                        return self.send(400, {"error": "invalid_grant"})
                    now, state["device_polls"] = time.time(), state["device_polls"] + 1
                    if now >= g["expires"]:
                        return self.send(400, {"error": "expired_token"})
                    if g["denied"]:
                        del grants[body["device_code"]]
                        return self.send(400, {"error": "access_denied"})
                    # Polled faster than the interval (with some slack for timers): slow down.
                    too_soon, g["last_poll"] = now - g["last_poll"] < INTERVAL * 0.8, now
                    if too_soon:
                        state["slow_downs"] += 1
                        return self.send(400, {"error": "slow_down"})
                    if g["localpart"] is None:
                        return self.send(400, {"error": "authorization_pending"})
                    del grants[body["device_code"]]
                    synapse("upsert_device", {"localpart": g["localpart"], "device_id": g["device"]})
                    sid = secrets.token_hex(8)
                    sessions[sid] = {"localpart": g["localpart"], "device": g["device"], "scope": g["scope"],
                                     "client_id": g["client_id"], "alive": True}
                    return self.send(200, issue(sid))
                if body.get("grant_type") == "authorization_code":
                    c = codes.pop(body.get("code", ""), None)
                    verifier = body.get("code_verifier", "").encode()
                    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
                    if (not c or c["client_id"] != body.get("client_id") or c["redirect_uri"] != body.get("redirect_uri")
                            or c["challenge"] != challenge):
                        return self.send(400, {"error": "invalid_grant"})
                    synapse("upsert_device", {"localpart": c["localpart"], "device_id": c["device"]})
                    sid = secrets.token_hex(8)
                    sessions[sid] = {"localpart": c["localpart"], "device": c["device"], "scope": c["scope"],
                                     "client_id": c["client_id"], "alive": True}
                    return self.send(200, issue(sid))
                if body.get("grant_type") == "refresh_token":
                    sid = refresh.pop(body.get("refresh_token", ""), None)
                    if sid is None or not sessions[sid]["alive"] or sessions[sid]["client_id"] != body.get("client_id"):
                        state["refused_refreshes"] += 1
                        return self.send(400, {"error": "invalid_grant"})
                    state["refreshes"] += 1
                    return self.send(200, issue(sid))
            return self.send(400, {"error": "unsupported_grant_type"})
        if path == "/oauth2/revoke":
            with lock:
                token = body.get("token", "")
                sid = access.get(token, {}).get("session") or refresh.get(token)
                if sid:
                    state["revocations"] += 1
                    end_session(sid)
            return self.send(200, {})
        if path == "/oauth2/introspect":
            if self.headers.get("Authorization") != f"Bearer {SECRET}":
                return self.send(401, {"error": "unauthorized"})
            with lock:
                a = access.get(body.get("token", ""))
                if not a or a["expires"] <= time.time():
                    return self.send(200, {"active": False})
                return self.send(200, {"active": True, "scope": a["scope"], "username": a["localpart"],
                                       "sub": a["localpart"], "client_id": a["client_id"],
                                       "expires_in": max(1, int(a["expires"] - time.time()))})
        self.send(404, {"error": "not_found"})


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
