"""Engine.IO beside a Quart-Trio app: one ASGI application, served on Trio.

Run it from the repository root (``make install`` first, for the JavaScript client)::

    trio-engineio serve examples.quart_trio_app:app
    # or: hypercorn --worker-class trio examples.quart_trio_app:app

`Quart-Trio <https://github.com/pgjones/quart-trio>`_ is Quart (Flask's API,
async) on Trio. ``ASGIApp(eio, other_asgi_app=quart_app)`` sends ``/engine.io/``
to the Engine.IO server and everything else to Quart, lifespan included (so
``before_serving`` and ``after_serving`` run). Quart's routes:

* ``GET /``: the echo page (the official JavaScript client; type to get an echo);
* ``GET /api/clients``: ``{"started": true, "clients": [sid, ...]}``;
* ``POST /api/broadcast``: sends the request body, as text, to every connected client;
  try ``curl -d 'hello everyone' http://127.0.0.1:8000/api/broadcast``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from quart import Response, jsonify, request, send_file
from quart_trio import QuartTrio

import trio_engineio
from examples.common import CLIENT_BUNDLE

__all__ = ["app", "eio", "quart_app"]

PAGE = Path(__file__).resolve().parent / "echo" / "index.html"

eio = trio_engineio.AsyncServer(async_mode="asgi")
connected: set[str] = set()
quart_app = QuartTrio(__name__)
quart_app.config["STARTED"] = False


@eio.on("connect")
async def connect(sid: str, environ: dict[str, Any]) -> None:
    connected.add(sid)


@eio.on("message")
async def message(sid: str, data: Any) -> None:
    await eio.send(sid, data)


@eio.on("disconnect")
async def disconnect(sid: str, reason: str) -> None:
    connected.discard(sid)


@quart_app.before_serving
async def startup() -> None:
    # ASGIApp relays lifespan events to Quart: this runs at startup.
    quart_app.config["STARTED"] = True


@quart_app.after_serving
async def shutdown() -> None:
    quart_app.config["STARTED"] = False


@quart_app.route("/")
async def index() -> Response:
    return await send_file(PAGE, mimetype="text/html")


@quart_app.route("/engine.io.min.js")
async def client_bundle() -> Response:
    return await send_file(CLIENT_BUNDLE, mimetype="application/javascript")


@quart_app.route("/api/clients")
async def clients() -> Response:
    return jsonify(started=quart_app.config["STARTED"], clients=sorted(connected))


@quart_app.route("/api/broadcast", methods=["POST"])
async def broadcast() -> Response:
    """An HTTP endpoint that talks to Engine.IO clients: the server's API works from any task."""
    text = (await request.get_data(as_text=True)) or ""
    recipients = sorted(connected)
    for sid in recipients:
        await eio.send(sid, text)
    return jsonify(sent=len(recipients))


# The ignore: Quart types its ``__call__`` with hypercorn's TypedDict scopes, not the plain
# ``MutableMapping`` ones ASGI apps are usually typed with (and ASGIApp accepts).
app = trio_engineio.ASGIApp(eio, other_asgi_app=quart_app)  # type: ignore[arg-type]
