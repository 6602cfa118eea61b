"""A small Flask application for the reverse-proxy tests, served by gunicorn (sync workers):
gunicorn --chdir tests/integration/targets flask_app:app --bind 127.0.0.1:0 (or unix:PATH), and by
uWSGI: uwsgi --plugin python3 --http-socket 127.0.0.1:0 --chdir tests/integration/targets --module flask_app:app

/hello         13 bytes with Content-Length
/echo          POST: the body back, and the forwarding headers the proxy sent
/chunked?n=K   K pieces from a generator: no Content-Length, so gunicorn sends it chunked
/slow?ms=N     waits N ms, then answers
/big?bytes=N   N bytes in 64 KiB pieces: a sync worker blocks writing them to a slow client
               (&pause_ms=P: P ms after each piece, a worker still writing when its client leaves;
               &stream=1: X-Accel-Buffering: no)
               (&stream=1: with X-Accel-Buffering: no, which asks a proxy to pass it through unbuffered)
/upload        POST: reads the body in 64 KiB pieces as it comes, answers its length
/die           starts a 1 MiB response, then the worker process exits in the middle of it
/events?gate=F server-sent events: one, then another once the file F exists
/headers       the request's header fields as the application sees them, one "Name: value" a line
/wait_for_departure?admin=HOST:PORT
               polls unbroken's GET /requests/{X-Request-Id} every 50 ms until the client has left
               (410), then prints "departure seen for ID" (at most 20 s)
"""
import os
import time
import urllib.error
import urllib.request

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
    pause = int(request.args.get("pause_ms", "0")) / 1000.0
    piece = b"x" * 65536

    def pieces():
        left = total
        while left > 0:
            n = min(left, len(piece))
            yield piece[:n]
            left -= n
            if pause:
                time.sleep(pause)

    headers = {"Content-Length": str(total)}
    if request.args.get("stream") == "1":
        headers["X-Accel-Buffering"] = "no"
    return Response(pieces(), mimetype="application/octet-stream", headers=headers)


@app.route("/upload", methods=["POST"])
def upload():
    total = 0
    while True:
        piece = request.stream.read(65536)
        if not piece:
            break
        total += len(piece)
    return Response("%d\n" % total, mimetype="text/plain")


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


@app.route("/headers")
def headers():
    lines = "".join("%s: %s\n" % (k, v) for k, v in request.headers.items())
    return Response(lines, mimetype="text/plain")


# The departure signal, as docs/request-id.md shows it (the test checks that the two are the same).
def client_gone(request_id, admin):
    try:
        urllib.request.urlopen(f"http://{admin}/requests/{request_id}", timeout=2).close()
    except urllib.error.HTTPError as e:
        return e.code == 410  # departed; 404: not (or no longer) known to unbroken
    return False  # 200: the client is still waiting


@app.route("/wait_for_departure")
def wait_for_departure():
    request_id = request.headers.get("X-Request-Id", "")
    admin = request.args["admin"]
    print("polling for %s" % request_id, flush=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if client_gone(request_id, admin):
            print("departure seen for %s" % request_id, flush=True)
            return Response("stopped early\n", mimetype="text/plain")
        time.sleep(0.05)
    print("departure never seen for %s" % request_id, flush=True)
    return Response("done\n", mimetype="text/plain")
