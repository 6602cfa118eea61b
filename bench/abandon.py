#!/usr/bin/env python3
"""Abandoning clients for the abort-storm row of bench/run.

Each of N threads repeatedly requests PATH, reads a random part of the response (64 KiB up to the
whole), and leaves: half of them with FIN, half with RST. Each reads at most --kib-per-s (a mobile
client's pace, 2 MiB/s by default; 0 reads as fast as loopback allows, which turns the storm into a
bandwidth hog). Runs until killed (SIGTERM) or for --seconds, then prints
"abandoned=<count> bytes=<bytes read>".

Usage: abandon.py PORT PATH [--clients N] [--seconds S] [--kib-per-s K] [--seed N]
"""
import argparse
import random
import signal
import socket
import struct
import sys
import threading
import time


def client(port, path, size, kib_per_s, rng, stop, totals, lock):
    buf = bytearray(256 * 1024 if kib_per_s == 0 else 64 * 1024)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    while not stop.is_set():
        want = rng.randint(64 * 1024, size)
        got = 0
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(request)
            start = time.monotonic()
            while got < want and not stop.is_set():
                n = s.recv_into(buf, min(len(buf), want - got))
                if n == 0:
                    break
                got += n
                if kib_per_s > 0:
                    # Pace: never ahead of kib_per_s since the request went out.
                    ahead = got / (kib_per_s * 1024) - (time.monotonic() - start)
                    if ahead > 0:
                        time.sleep(ahead)
            if rng.random() < 0.5:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        except OSError:
            time.sleep(0.01)
            continue
        with lock:
            totals[0] += 1
            totals[1] += got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("path")
    ap.add_argument("--clients", type=int, default=28)
    ap.add_argument("--seconds", type=float, default=3600)
    ap.add_argument("--size", type=int, default=10 * 1024 * 1024)
    ap.add_argument("--kib-per-s", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    totals, lock = [0, 0], threading.Lock()
    threads = [
        threading.Thread(target=client,
                         args=(a.port, a.path, a.size, a.kib_per_s, random.Random(a.seed + i), stop, totals, lock),
                         daemon=True)
        for i in range(a.clients)
    ]
    for t in threads:
        t.start()
    stop.wait(a.seconds)
    stop.set()
    for t in threads:
        t.join(timeout=6)
    print(f"abandoned={totals[0]} bytes={totals[1]}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
