"""A fault-injecting HTTP/1.1 file server for the http source's tests.

Serves a directory (stdlib only, one thread per connection, keep-alive) with
nginx-style JSON listings, ETag/Last-Modified, Range and If-Range, and breaks
the rules on purpose when told to. Faults are set at run time:

    PUT /__control?fail_every=5      one response in 5 is a 503 or a reset (alternating)
    PUT /__control?short=1           ranged bodies stop half way (connection closed)
    PUT /__control?ignore_range=1    200 and the whole file to every ranged GET
    PUT /__control?wrong_range=1     206 with a Content-Range (and bytes) one byte off
    PUT /__control?etag_change_after=N  after N ranged GETs the file's ETag changes
    PUT /__control?hang=1            GETs of files never answer (listings and HEAD do)
    PUT /__control?drip=BYTES        bodies go out BYTES at a time, 50 ms apart
    PUT /__control?auth=Basic%20...  every request must carry this Authorization
    PUT /__control?redirect=ORIGIN   redir-NAME answers 302 to ORIGIN/NAME (default: this server)
    PUT /__control?reset_all=1       back to a well-behaved server
    GET /__stats                     {"requests": .., "bytes": .., "faults": .., ...}

A directory named "hostile" gets an HTML listing full of links that must
never become entries (parent paths, other hosts, encoded slashes and dots,
control characters), next to a few valid ones.

Run: python3 http_fault_server.py ROOT PORT   (prints "READY" when listening)
"""
import email.utils
import http.server
import json
import os
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse

CONTROL_KEYS = ("fail_every", "short", "ignore_range", "wrong_range", "etag_change_after", "hang", "drip")


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()
        self.requests = 0
        self.bytes = 0
        self.faults = 0
        self.ranged_gets = 0
        self.full_gets = 0
        self.etag_gen = 0
        self.log = []

    def reset(self):
        for k in CONTROL_KEYS:
            setattr(self, k, 0)
        self.counter = 0
        self.redirect = ""  # origin of the Location of redir-NAME files ("": this server)
        self.auth = ""  # "Basic ..." or "Bearer ...": the Authorization every request must carry


STATE = State()
ROOT = "."
HANG = threading.Event()  # set at shutdown to free hung handlers


def hostile_listing(dirpath):
    long = "x" * 300
    links = [
        "../", "../../../etc/passwd", "..%2F..%2Fsecret.txt", "%2e%2e/", "%2e%2e%2fsecret.txt", "a%2Fb",
        "nul%00byte", "ctl%0Aname", "tab&#9;name", "http://evil.example/x", "//evil.example/secret.txt",
        "/secret.txt", "/elsewhere/", "sub/deeper", "?C=N;O=D", "good.txt?x=1", "#top", "javascript:alert(1)",
        long, "%252e%252e",
    ]
    rows = [f'<a href="{h}">{h[:40]}</a>' for h in links]
    for name in sorted(os.listdir(dirpath)):
        if os.path.isdir(os.path.join(dirpath, name)):
            rows.append(f'<a href="{urllib.parse.quote(name)}/">{name}/</a>                      01-Jan-2024 00:00   -')
        else:
            rows.append(f'<a href="{urllib.parse.quote(name)}">{name}</a>                       01-Jan-2024 00:00   '
                        f'{os.path.getsize(os.path.join(dirpath, name))}')
    return ("<html><head><title>Index of hostile</title></head><body><h1>Index of hostile</h1><hr><pre>\n"
            + "\n".join(rows) + "\n</pre><hr></body></html>\n").encode()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cachefuse-fault/1"

    def log_message(self, fmt, *args):
        pass

    # -- helpers ---------------------------------------------------------
    def reset_connection(self):
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True

    def send_body(self, data, drip=0):
        if drip:
            for i in range(0, len(data), drip):
                self.wfile.write(data[i:i + drip])
                self.wfile.flush()
                time.sleep(0.05)
        else:
            self.wfile.write(data)
        with STATE.lock:
            STATE.bytes += len(data)

    def plain(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.send_body(body)

    def fault(self):
        """Decides whether this response is a fault; True if it was handled."""
        with STATE.lock:
            if not STATE.fail_every:
                return False
            STATE.counter += 1
            if STATE.counter % STATE.fail_every:
                return False
            STATE.faults += 1
            kind = (STATE.counter // STATE.fail_every) % 2
        if kind == 0:
            self.plain(503, "try again later\n")
        else:
            self.reset_connection()
        return True

    # -- methods ---------------------------------------------------------
    def do_PUT(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path != "/__control":
            return self.plain(405, "read-only\n")
        q = urllib.parse.parse_qs(u.query)
        with STATE.lock:
            if "reset_all" in q:
                STATE.reset()
            for k in CONTROL_KEYS:
                if k in q:
                    setattr(STATE, k, int(q[k][0]))
            if "auth" in q:
                STATE.auth = q["auth"][0]
            if "redirect" in q:
                STATE.redirect = q["redirect"][0]
        self.plain(200, "ok\n")

    def do_HEAD(self):
        self.serve()

    def do_GET(self):
        if self.path == "/__stats":
            with STATE.lock:
                s = {"requests": STATE.requests, "bytes": STATE.bytes, "faults": STATE.faults,
                     "ranged_gets": STATE.ranged_gets, "full_gets": STATE.full_gets, "log": STATE.log[-2000:]}
            return self.plain(200, json.dumps(s))
        self.serve()

    def serve(self):
        with STATE.lock:
            STATE.requests += 1
            STATE.log.append(f"{self.command} {self.path} {self.headers.get('Range', '-')}")
        if self.fault():
            return
        with STATE.lock:
            auth = STATE.auth
        if auth and self.headers.get("Authorization") != auth:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        u = urllib.parse.urlsplit(self.path)
        rel = urllib.parse.unquote(u.path)
        parts = [p for p in rel.split("/") if p]
        if any(p in (".", "..") for p in parts):
            return self.plain(400, "bad path\n")
        fs = os.path.join(ROOT, *parts)
        if os.path.isdir(fs):
            if not u.path.endswith("/"):
                self.send_response(301)
                self.send_header("Location", u.path + "/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            return self.listing(fs, parts)
        if parts and parts[-1].startswith("redir-"):
            # 302 to the file named after "redir-", on the origin "redirect" names (or this one).
            with STATE.lock:
                origin = STATE.redirect
            target = "/".join([""] + parts[:-1] + [parts[-1][len("redir-"):]])
            self.send_response(302)
            self.send_header("Location", (origin or "") + urllib.parse.quote(target))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if not os.path.isfile(fs):
            return self.plain(404, "not found\n")
        self.file(fs)

    def listing(self, fs, parts):
        if parts and parts[-1] == "hostile":
            body, ctype = hostile_listing(fs), "text/html"
        else:
            items = []
            for name in sorted(os.listdir(fs)):
                p = os.path.join(fs, name)
                st = os.stat(p)
                item = {"name": name, "type": "directory" if os.path.isdir(p) else "file",
                        "mtime": email.utils.formatdate(st.st_mtime, usegmt=True)}
                if not os.path.isdir(p):
                    item["size"] = st.st_size
                items.append(item)
            body, ctype = json.dumps(items).encode(), "application/json"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.send_body(body)

    def file(self, fs):
        st = os.stat(fs)
        size = st.st_size
        with STATE.lock:
            gen = STATE.etag_gen
        etag = f'"{int(st.st_mtime)}-{size}-{gen}"'
        lastmod = email.utils.formatdate(st.st_mtime, usegmt=True)
        rng = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        first, last = 0, size - 1
        ranged = False
        if rng and rng.startswith("bytes=") and "," not in rng and self.command == "GET":
            a, _, b = rng[6:].partition("-")
            if a:
                first = int(a)
                last = min(int(b), size - 1) if b else size - 1
                ranged = True
                if first >= size:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
        with STATE.lock:
            if ranged:
                STATE.ranged_gets += 1
                if STATE.etag_change_after and STATE.ranged_gets == STATE.etag_change_after + 1:
                    STATE.etag_gen += 1
                    gen = STATE.etag_gen
                    etag = f'"{int(st.st_mtime)}-{size}-{gen}"'
            elif self.command == "GET":
                STATE.full_gets += 1
            hang, short, ignore, wrong, drip = (STATE.hang, STATE.short, STATE.ignore_range, STATE.wrong_range,
                                                STATE.drip)
        if self.command == "GET" and hang:
            HANG.wait(3600)
            self.reset_connection()
            return
        if ranged and if_range is not None and if_range != etag and if_range != lastmod:
            ranged = False  # If-Range failed: the whole (new) file
        if ranged and ignore:
            ranged = False
        if not ranged:
            first, last = 0, size - 1
        code = 206 if ranged else 200
        if ranged and wrong and last + 1 < size:
            first, last = first + 1, last + 1
        length = max(0, last - first + 1)
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", lastmod)
        self.send_header("Accept-Ranges", "none" if ignore else "bytes")
        self.send_header("Content-Length", str(length))
        if code == 206:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.end_headers()
        if self.command == "HEAD":
            return
        with open(fs, "rb") as f:
            f.seek(first)
            left = length
            if ranged and short:
                left = length // 2
            while left > 0:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    break
                self.send_body(chunk, drip)
                left -= len(chunk)
        if ranged and short:
            self.reset_connection()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global ROOT
    ROOT = os.path.abspath(sys.argv[1])
    port = int(sys.argv[2])
    srv = Server(("127.0.0.1", port), Handler)
    print("READY", flush=True)
    try:
        srv.serve_forever()
    finally:
        HANG.set()


if __name__ == "__main__":
    main()
