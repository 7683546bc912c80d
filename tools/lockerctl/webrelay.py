"""`lockerctl sim web`: the phone web app (tools/webapp, built into build/webapp) and a
WebSocket relay to the simulator's radio socket, on one loopback HTTP port.

The relay carries the same fragments as BLE (docs/protocol.md section 2): the browser opens
ws://HOST:PORT/relay; the relay connects to the simulator, asks for the largest link payload
(244) and sends the agreed one to the browser as a first 1-byte message; after that each
WebSocket binary message is one fragment, both ways (the relay adds and strips the
simulator's length byte). `relay.json` tells the app that a relay is there; a static host
without it leaves the app on Web Bluetooth."""
import asyncio
import contextlib
import mimetypes
import os

from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.http11 import Response

MAX_LINK_PAYLOAD = 244
TYPES = {".js": "text/javascript", ".webmanifest": "application/manifest+json",
         ".svg": "image/svg+xml", ".css": "text/css", ".html": "text/html; charset=utf-8",
         ".json": "application/json"}


class WebAppMissing(Exception):
    pass


def _response(status, reason, body, ctype):
    return Response(status, reason, Headers([("Content-Type", ctype),
                                             ("Content-Length", str(len(body))),
                                             ("Cache-Control", "no-cache")]), body)


def static_response(app_dir, path):
    """The file for an HTTP path inside app_dir (index.html for a folder), else a 404.
    Nothing outside app_dir is ever served."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    if path == "/relay.json":
        return _response(200, "OK", b'{"relay": "relay"}', "application/json")
    rel = path.lstrip("/") or "index.html"
    full = os.path.realpath(os.path.join(app_dir, rel))
    root = os.path.realpath(app_dir)
    if os.path.isdir(full):
        full = os.path.join(full, "index.html")
    if not full.startswith(root + os.sep) or not os.path.isfile(full):
        return _response(404, "Not Found", b"not found\n", "text/plain")
    ext = os.path.splitext(full)[1]
    ctype = TYPES.get(ext) or mimetypes.guess_type(full)[0] or "application/octet-stream"
    with open(full, "rb") as f:
        return _response(200, "OK", f.read(), ctype)


async def _relay(ws, sim_port):
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", sim_port)
    except OSError:
        await ws.close(1011, "the simulator is not running: `lockerctl sim start`")
        return
    try:
        writer.write(bytes((MAX_LINK_PAYLOAD,)))
        await writer.drain()
        link = (await reader.readexactly(1))[0]
        await ws.send(bytes((link,)))

        async def up():
            async for msg in ws:
                if not isinstance(msg, bytes) or not 1 <= len(msg) <= link:
                    await ws.close(1003, "one fragment of 1..%d bytes per message" % link)
                    return
                writer.write(bytes((len(msg),)) + msg)
                await writer.drain()

        async def down():
            while True:
                n = (await reader.readexactly(1))[0]
                await ws.send(await reader.readexactly(n))

        tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in tasks:
            t.cancel()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await ws.close()


async def serve_web(app_dir, sim_port, host="127.0.0.1", port=8080, ready=None):
    """Serve app_dir and /relay until cancelled. ready(port) is called once listening."""
    if not os.path.isfile(os.path.join(app_dir, "index.html")):
        raise WebAppMissing("no web app in %s: build it with `make webapp`" % app_dir)

    def process_request(connection, request):
        if request.path.split("?", 1)[0] == "/relay":
            return None                      # the WebSocket handshake goes on
        return static_response(app_dir, request.path)

    async def handler(ws):
        await _relay(ws, sim_port)

    async with serve(handler, host, port, process_request=process_request,
                     max_size=4096) as server:
        bound = server.sockets[0].getsockname()[1]
        if ready:
            ready(bound)
        await asyncio.get_running_loop().create_future()
