#!/usr/bin/python3
"""fake_influx: a scripted HTTP server that stands in for InfluxDB in the writer's tests.

A fake is used here only because Debian's InfluxDB 1.6 has no v2 API (/api/v2/write, Authorization:
Token) and never answers 413 or 429; everything that real InfluxDB 1.6 can show (writes, 400 partial
writes, outages, a frozen server) is tested against the real one in the integration tests.

usage: fake_influx.py PORT SCRIPT.json LOG.jsonl
  PORT       port on 127.0.0.1; 0 picks a free one
  SCRIPT     {"responses": [R, ...], "default": R} where R is
             {"status": 204, "headers": {"Retry-After": "1"}, "body": "...", "delay_s": 0}
             responses are used in order, one per request, then the default (204 when absent)
  LOG        one JSON object per request, written (and flushed) when the request arrives:
             {"n": 1, "t": <monotonic s>, "method": "POST", "path": "/write?db=x", "headers": {...},
              "gzip": true, "raw_len": 123, "body": "<gunzipped text>"}
Prints "ready PORT" on stdout once it accepts connections. Pure standard library.
"""
import gzip
import http.server
import json
import sys
import threading
import time


class Script:
    def __init__(self, path, log_path):
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
        self.responses = list(spec.get("responses", []))
        self.default = spec.get("default", {"status": 204})
        self.log = open(log_path, "a", encoding="utf-8")
        self.count = 0
        self.lock = threading.Lock()

    def next(self, record):
        """Logs a request and returns its scripted response."""
        with self.lock:
            self.count += 1
            record["n"] = self.count
            self.log.write(json.dumps(record) + "\n")
            self.log.flush()
            return self.responses.pop(0) if self.responses else self.default


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as InfluxDB; libcurl reuses the connection

    def log_message(self, fmt, *args):  # quiet: the test reads the JSONL log instead
        pass

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        is_gzip = (self.headers.get("Content-Encoding") or "").lower() == "gzip"
        try:
            data = gzip.decompress(raw) if is_gzip else raw
        except (OSError, EOFError) as e:
            data = f"<bad gzip: {e}>".encode()
        return raw, data, is_gzip

    def _serve(self):
        t = time.monotonic()
        raw, data, is_gzip = self._read_body()
        record = {"t": t, "method": self.command, "path": self.path,
                  "headers": {k: v for k, v in self.headers.items()},
                  "gzip": is_gzip, "raw_len": len(raw),
                  "body": data.decode("utf-8", errors="replace")}
        resp = self.server.script.next(record)
        if resp.get("delay_s"):
            time.sleep(float(resp["delay_s"]))
        status = int(resp.get("status", 204))
        body = resp.get("body", "").encode()
        try:
            self.send_response(status)
            for k, v in resp.get("headers", {}).items():
                self.send_header(k, str(v))
            if status != 204:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body) if status != 204 else 0))
            self.end_headers()
            if status != 204:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (timeout test)

    do_POST = _serve
    do_GET = _serve
    do_PUT = _serve


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    port = int(sys.argv[1])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.script = Script(sys.argv[2], sys.argv[3])
    sys.stdout.write(f"ready {server.server_address[1]}\n")  # one write: the reader may stop at the newline
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
