#!/usr/bin/python3
"""A WebSocket echo server (Debian python3-websockets, the asyncio API of websockets 10): binds port 0
on 127.0.0.1, prints "port N" on stdout, and echoes every message. The message "close" makes it
close the connection itself (close frame 1000, then TCP FIN), so a test can watch the upstream's
side end a tunnel. Each connection's end is printed ("closed CODE"), for the test to wait on."""

import asyncio
import sys

import websockets


async def echo(ws, path=None):
    try:
        async for message in ws:
            if message == "close":
                await ws.close(1000, "asked to")
                break
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass
    print(f"closed {ws.close_code}", flush=True)


async def main():
    async with websockets.serve(echo, "127.0.0.1", 0, close_timeout=2) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"port {port}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
