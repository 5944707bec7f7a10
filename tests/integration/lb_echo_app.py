"""The backend of ``test_load_balancer.py``: an echo server, served by ``hypercorn --worker-class trio``.

Each process prints ``lb_echo_app ready <pid>`` once its lifespan startup is done, so
that the test knows when every worker (``-w 2``) takes connections. ``cookie="io"``
makes the handshake set ``io=<sid>``: nginx's access log reads it
(``$upstream_cookie_io``) to tie each handshake to the session it created, and the
HAProxy configurations of docs/server.rst key on it.
"""

from __future__ import annotations

import os
from typing import Any

from trio_engineio import ASGIApp, AsyncServer

# close_timeout: at shutdown, sessions whose client has gone (the negative controls leave
# some) are not waited for long.
eio = AsyncServer(async_mode="asgi", cookie="io", close_timeout=1)


@eio.on("message")
async def message(sid: str, data: Any) -> None:
    await eio.send(sid, data)


def _ready() -> None:
    print(f"lb_echo_app ready {os.getpid()}", flush=True)


app = ASGIApp(eio, on_startup=_ready)
