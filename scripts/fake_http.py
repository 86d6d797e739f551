"""What the fake providers of the tests (fake-idp.py, fake-mas.py) share: a request handler
that answers JSON, reads JSON or form bodies and query strings, and logs nothing."""

import json
import urllib.parse
from http.server import BaseHTTPRequestHandler


class JsonHandler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, status, body=None, location=None):
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        if self.headers.get("Content-Type", "").startswith("application/json"):
            return json.loads(raw or "{}")
        return {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}

    def query(self):
        url = urllib.parse.urlparse(self.path)
        return url.path, {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
