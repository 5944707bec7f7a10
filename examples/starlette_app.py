"""Engine.IO beside a Starlette app: one ASGI application, served on Trio.

Run it from the repository root (``make install`` first, for the JavaScript client)::

    trio-engineio serve examples.starlette_app:app
    # or: hypercorn --worker-class trio examples.starlette_app:app

Starlette runs on Trio through AnyIO. ``ASGIApp(eio, other_asgi_app=starlette_app)``
sends ``/engine.io/`` to the Engine.IO server and everything else to Starlette,
lifespan included (so Starlette's ``lifespan`` runs, beside the Engine.IO
server's nursery). Starlette's routes:

* ``GET /``: the echo page (the official JavaScript client; type to get an echo);
* ``GET /api/clients``: ``{"started": true, "clients": [sid, ...]}``;
* ``POST /api/broadcast``: sends the request body, as text, to every connected client;
  try ``curl -d 'hello everyone' http://127.0.0.1:8000/api/broadcast``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

import trio_engineio
from examples.common import CLIENT_BUNDLE

__all__ = ["app", "eio", "starlette_app"]

PAGE = Path(__file__).resolve().parent / "echo" / "index.html"

eio = trio_engineio.AsyncServer(async_mode="asgi")
connected: set[str] = set()


@eio.on("connect")
async def connect(sid: str, environ: dict[str, Any]) -> None:
    connected.add(sid)


@eio.on("message")
async def message(sid: str, data: Any) -> None:
    await eio.send(sid, data)


@eio.on("disconnect")
async def disconnect(sid: str, reason: str) -> None:
    connected.discard(sid)


async def index(request: Request) -> Response:
    return FileResponse(PAGE, media_type="text/html")


async def client_bundle(request: Request) -> Response:
    return FileResponse(CLIENT_BUNDLE, media_type="application/javascript")


async def clients(request: Request) -> Response:
    return JSONResponse({"started": request.app.state.started, "clients": sorted(connected)})


async def broadcast(request: Request) -> Response:
    """An HTTP endpoint that talks to Engine.IO clients: the server's API works from any task."""
    text = (await request.body()).decode("utf-8", "replace")
    recipients = sorted(connected)
    for sid in recipients:
        await eio.send(sid, text)
    return JSONResponse({"sent": len(recipients)})


@contextlib.asynccontextmanager
async def lifespan(starlette: Starlette) -> AsyncIterator[None]:
    # ASGIApp relays lifespan events to Starlette: this runs at startup and shutdown.
    starlette.state.started = True
    yield
    starlette.state.started = False


starlette_app = Starlette(
    routes=[
        Route("/", index),
        Route("/engine.io.min.js", client_bundle),
        Route("/api/clients", clients),
        Route("/api/broadcast", broadcast, methods=["POST"]),
    ],
    lifespan=lifespan,
)
app = trio_engineio.ASGIApp(eio, other_asgi_app=starlette_app)
