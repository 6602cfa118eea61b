#!/usr/bin/env python3
"""A chaos target from Python's standard library: `single` is http.server.HTTPServer (one request at
a time), `threading` is ThreadingHTTPServer (a thread per connection). Binds port 0 on 127.0.0.1,
prints "port N" on stdout, and answers every GET with 13 bytes; or, given a directory, serves its
files (SimpleHTTPRequestHandler)."""
import functools
import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello, chaos\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    cls = http.server.ThreadingHTTPServer if sys.argv[1] == "threading" else http.server.HTTPServer
    handler = Handler
    if len(sys.argv) > 2:

        class Files(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

        handler = functools.partial(Files, directory=sys.argv[2])
    server = cls(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
