#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The release feed of test-update.sh: update-feed.py ADDRESS PORT DIR RUNNING_VERSION.

Serves /feed.json (README, "Update check") as DIR/mode says, read at every request so that the test
switches it between two checks, and the binaries DIR/tapotund-VERSION with their .sha256 files beside
them. Every request is appended to DIR/requests.log as "PATH inm=If-None-Match ims=If-Modified-Since ->
STATUS", the status written before the answer is sent.

Modes: same (the running version), new (0.2.0), 404, slow (no answer for SLOW_SECONDS), badsum
(0.3.0, its .sha256 file wrong), install (0.3.0 with its sha256 inline, behind a redirect).
"""
import hashlib
import http.server
import json
import os
import sys
import time

ADDRESS, PORT, DIR, RUNNING = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
SLOW_SECONDS = 8
LAST_MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT"


def read(name):
    with open(os.path.join(DIR, name), "rb") as f:
        return f.read()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def note(self, status):
        with open(os.path.join(DIR, "requests.log"), "a") as f:
            f.write("%s inm=%s ims=%s -> %s\n" % (self.path, self.headers.get("If-None-Match", "-"),
                                                  self.headers.get("If-Modified-Since", "-"), status))

    def answer(self, status, body=b"", headers=()):
        self.note(status)
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def feed(self, mode):
        if mode == "same":
            return {"version": RUNNING}
        if mode == "new":
            return {"version": "0.2.0", "url": "tapotund-0.2.0"}
        if mode == "badsum":
            return {"version": "0.3.0", "url": "tapotund-0.3.0"}
        return {"version": "0.3.0", "url": "tapotund-0.3.0", "sha256": sha256(read("tapotund-0.3.0"))}

    def do_GET(self):
        mode = read("mode").decode().strip()
        name = os.path.basename(self.path)
        try:
            if self.path == "/ready":
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif self.path == "/feed.json" and mode == "install":
                self.answer(302, headers=[("Location", "/r/feed.json")])
            elif name == "feed.json":
                if mode == "404":
                    self.answer(404, b"<html>Not Found</html>\n")
                    return
                if mode == "slow":
                    # Longer than the daemon's timeout; it has given up by then, so no answer at all.
                    self.note("slow")
                    time.sleep(SLOW_SECONDS)
                    self.close_connection = True
                    return
                body = json.dumps(self.feed(mode)).encode()
                etag = '"%s"' % sha256(body)[:16]
                if self.headers.get("If-None-Match") == etag:
                    self.answer(304, headers=[("ETag", etag)])
                    return
                self.answer(200, body, [("Content-Type", "application/json"), ("ETag", etag),
                                        ("Last-Modified", LAST_MODIFIED)])
            elif name.endswith(".sha256") and os.path.exists(os.path.join(DIR, name[:-7])):
                data = read(name[:-7])
                if mode == "badsum":
                    data += b"tampered"
                self.answer(200, ("%s  %s\n" % (sha256(data), name[:-7])).encode())
            elif name.startswith("tapotund-") and os.path.exists(os.path.join(DIR, name)):
                self.answer(200, read(name), [("Content-Type", "application/octet-stream")])
            else:
                self.answer(404, b"<html>Not Found</html>\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon went away first


http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer((ADDRESS, PORT), Handler).serve_forever()
