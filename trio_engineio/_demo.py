"""The built-in demo that ``trio-engineio serve`` runs when given no app: an echo server and page.

The page uses the official JavaScript ``engine.io-client``, whose browser bundle
ships inside the package (``_static/engine.io.min.js``, MIT, its license beside
it), so the demo needs no network, no CDN and no npm.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from trio_engineio._http import Receive, Scope, Send
from trio_engineio.asgi import ASGIApp
from trio_engineio.server import AsyncServer

__all__ = ["app", "eio"]

CLIENT_VERSION = "6.6.8"
"""The version of the packaged ``engine.io-client`` bundle (its header says ``Engine.IO v6.6.8``)."""

CLIENT_BUNDLE = resources.files("trio_engineio") / "_static" / "engine.io.min.js"
"""The official ``engine.io-client`` browser bundle, package data; it defines the global ``eio``."""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>trio_engineio demo</title><link rel="icon" href="data:,">
</head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto">
<h1>trio_engineio echo demo</h1>
<p>Transport: <strong id="transport">connecting…</strong></p>
<form id="form"><input id="input" autocomplete="off" autofocus placeholder="Type and press Enter">
<button>Send</button></form>
<pre id="log"></pre>
<script src="/engine.io.min.js"></script>
<script>
  const log = (line) => { document.getElementById("log").textContent += line + "\\n"; };
  const socket = eio(location.origin);
  const show = () => { document.getElementById("transport").textContent = socket.transport.name; };
  socket.on("open", () => { show(); log("connected"); });
  socket.on("upgrade", show);
  socket.on("message", (data) => log("echo: " + data));
  socket.on("close", (reason) => log("closed: " + reason));
  document.getElementById("form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("input");
    if (input.value) { socket.send(input.value); input.value = ""; }
  });
</script></body></html>
"""

eio = AsyncServer(async_mode="asgi")


@eio.on("message")
async def _echo(sid: str, data: Any) -> None:
    await eio.send(sid, data)


async def _page(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/engine.io.min.js":
        body, content_type = CLIENT_BUNDLE.read_bytes(), b"application/javascript"
    elif scope["path"] == "/":
        body, content_type = PAGE.encode(), b"text/html; charset=utf-8"
    else:
        body, content_type, status = b"Not Found", b"text/plain", 404
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]})
        await send({"type": "http.response.body", "body": body})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})


app = ASGIApp(eio, other_asgi_app=_page)
