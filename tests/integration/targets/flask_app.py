"""A small Flask application for the reverse-proxy tests, served by gunicorn (sync workers):
gunicorn --chdir tests/integration/targets flask_app:app --bind 127.0.0.1:0 (or unix:PATH).

/hello         13 bytes with Content-Length
/echo          POST: the body back, and the forwarding headers the proxy sent
/chunked?n=K   K pieces from a generator: no Content-Length, so gunicorn sends it chunked
/slow?ms=N     waits N ms, then answers
/big?bytes=N   N bytes in 64 KiB pieces: a sync worker blocks writing them to a slow client
/die           starts a 1 MiB response, then the worker process exits in the middle of it
/events?gate=F server-sent events: one, then another once the file F exists
"""
import os
import time

from flask import Flask, Response, request

app = Flask(__name__)


@app.route("/hello")
def hello():
    return Response("hello, proxy\n", mimetype="text/plain")


@app.route("/echo", methods=["POST", "PUT"])
def echo():
    body = request.get_data()
    resp = Response(body, mimetype="application/octet-stream")
    resp.headers["X-Seen-Forwarded-For"] = request.headers.get("X-Forwarded-For", "")
    resp.headers["X-Seen-Via"] = request.headers.get("Via", "")
    resp.headers["X-Seen-Connection"] = request.headers.get("Connection", "")
    resp.headers["X-Seen-Secret"] = request.headers.get("X-Secret", "")
    return resp


@app.route("/chunked")
def chunked():
    n = int(request.args.get("n", "5"))

    def pieces():
        for i in range(n):
            yield "piece %d\n" % i

    return Response(pieces(), mimetype="text/plain")


@app.route("/slow")
def slow():
    time.sleep(int(request.args.get("ms", "1000")) / 1000.0)
    return Response("slow\n", mimetype="text/plain")


@app.route("/big")
def big():
    total = int(request.args.get("bytes", str(4 << 20)))
    piece = b"x" * 65536

    def pieces():
        left = total
        while left > 0:
            n = min(left, len(piece))
            yield piece[:n]
            left -= n

    return Response(pieces(), mimetype="application/octet-stream", headers={"Content-Length": str(total)})


@app.route("/die")
def die():
    def pieces():
        yield b"y" * 65536
        os._exit(1)

    return Response(pieces(), mimetype="application/octet-stream", headers={"Content-Length": str(1 << 20)})


@app.route("/events")
def events():
    """Server-sent events: one event, then (once the file `gate` exists) a second one."""
    gate = request.args["gate"]

    def stream():
        yield "data: first\n\n"
        while not os.path.exists(gate):
            time.sleep(0.01)
        yield "data: second\n\n"

    return Response(stream(), mimetype="text/event-stream")
