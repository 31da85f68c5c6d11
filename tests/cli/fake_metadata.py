#!/usr/bin/env python3
"""fake_metadata.py — a local fake of the AWS and GCP instance metadata services
for preemption-notice tests (tests/cli/notice.sh).

    python3 fake_metadata.py --control FILE [--log FILE] [--imdsv1]

Listens on 127.0.0.1, port chosen by the OS, and prints the port on stdout (one
line, flushed) once it is ready. Point tokenmill at it with
TOKENMILL_AWS_METADATA_URL / TOKENMILL_GCP_METADATA_URL=http://127.0.0.1:PORT.

AWS (IMDSv2):
  PUT /latest/api/token with X-aws-ec2-metadata-token-ttl-seconds -> a token
  GET /latest/meta-data/spot/instance-action with X-aws-ec2-metadata-token
      -> 404 while FILE does not exist; then 200
         {"action": "terminate", "time": "<FILE's mtime + its content in seconds, ISO-8601 UTC>"}
      A GET without a valid token is 401 (unless --imdsv1, which also makes the
      token PUT answer 403, as an instance with IMDSv2 disabled would).
GCP:
  GET /computeMetadata/v1/instance/preempted with Metadata-Flavor: Google
      -> FALSE while FILE does not exist, TRUE after; 403 without the header.
Anything else is 404. Each request is appended to --log as one line
"METHOD PATH STATUS".
"""
import argparse
import datetime
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "fake-imds-token-0123456789"


def termination_time(control):
    """(exists, unix time of termination) from the control file."""
    try:
        st = os.stat(control)
        with open(control) as f:
            text = f.read().strip()
    except FileNotFoundError:
        return False, 0.0
    try:
        secs = float(text) if text else 120.0
    except ValueError:
        secs = 120.0
    return True, st.st_mtime + secs


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-metadata/1"

    def log_message(self, fmt, *args):  # quiet on stderr
        pass

    def reply(self, code, body=b"", ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)
        cfg = self.server.cfg
        if cfg.log:
            with cfg.lock, open(cfg.log, "a") as f:
                f.write(f"{self.command} {self.path} {code}\n")

    def do_PUT(self):
        cfg = self.server.cfg
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(min(n, 65536))
        if self.path != "/latest/api/token":
            return self.reply(404)
        if cfg.imdsv1:
            return self.reply(403)
        if not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self.reply(400)
        self.reply(200, TOKEN.encode())

    def do_GET(self):
        cfg = self.server.cfg
        if self.path == "/latest/meta-data/spot/instance-action":
            if not cfg.imdsv1 and self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
                return self.reply(401)
            exists, when = termination_time(cfg.control)
            if not exists:
                return self.reply(404, b"<?xml version=\"1.0\"?><html>404 - Not Found</html>", "text/html")
            t = datetime.datetime.fromtimestamp(int(when), tz=datetime.timezone.utc)
            body = '{"action": "terminate", "time": "%s"}' % t.strftime("%Y-%m-%dT%H:%M:%SZ")
            return self.reply(200, body.encode(), "application/json")
        if self.path == "/computeMetadata/v1/instance/preempted":
            if self.headers.get("Metadata-Flavor") != "Google":
                return self.reply(403)
            exists, _ = termination_time(cfg.control)
            return self.reply(200, b"TRUE" if exists else b"FALSE")
        self.reply(404)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--control", required=True, help="file whose existence flips the answers")
    ap.add_argument("--log", help="append one line per request here")
    ap.add_argument("--imdsv1", action="store_true", help="refuse IMDSv2 tokens (IMDSv1 only)")
    cfg = ap.parse_args()
    cfg.lock = threading.Lock()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.cfg = cfg
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
