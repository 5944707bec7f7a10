"""Latency: the page (or ``examples/client/latency.py``) sends ``ping``, the server answers ``pong``.

A port of python-engineio's latency example. Run it from the repository root
(``make install`` first, for the JavaScript client)::

    trio-engineio serve examples.latency.app:app
    # or: hypercorn --worker-class trio examples.latency.app:app

and open http://127.0.0.1:8000: the page sends a ping as soon as the previous pong
is back (after a short pause) and shows each round trip and running statistics.
``?transport=polling`` or ``?transport=websocket`` keeps it on one transport.
Measure from Python instead with ``python examples/client/latency.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio_engineio
from examples.common import page_static_files

__all__ = ["app", "eio"]

HERE = Path(__file__).resolve().parent

eio = trio_engineio.AsyncServer(async_mode="asgi")
app = trio_engineio.ASGIApp(eio, static_files=page_static_files(HERE / "index.html"))


@eio.on("message")
async def message(sid: str, data: Any) -> None:
    """Answer every message with ``pong``, at once."""
    await eio.send(sid, "pong")
