"""Real-socket helpers: serve an app under hypercorn on a loopback port (not on virtual time)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import trio

from trio_engineio.testing._asgi import ASGIApp


@contextlib.asynccontextmanager
async def serve_hypercorn(app: ASGIApp, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve ``app`` with hypercorn's trio worker on an ephemeral port; yield ``http://host:port``.

    The server runs in a nursery inside this context and is shut down (with ASGI
    lifespan shutdown) on exit. If ``app`` serves an :class:`~trio_engineio.AsyncServer`
    (an :class:`~trio_engineio.ASGIApp`), its sessions are closed gracefully first:
    every client gets its CLOSE packet. Do not combine with ``autojump_clock``: real
    sockets need real time.

    Args:
        app: the ASGI application.
        host: the address to listen on (port 0: the system picks a free one).

    Yields:
        The base URL, e.g. ``http://127.0.0.1:41235``.

    Example::

        async def test_real_sockets():  # no autojump_clock
            async with serve_hypercorn(app) as url, trio_engineio.AsyncClient() as client:
                await client.connect(url)
    """
    from hypercorn.config import Config
    from hypercorn.trio import serve

    from trio_engineio.server import AsyncServer

    config = Config()
    config.bind = [f"{host}:0"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 5
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(
            lambda task_status: serve(app, config, shutdown_trigger=shutdown.wait, task_status=task_status)
        )
        try:
            yield binds[0]
        finally:
            try:
                # hypercorn drains open connections (for up to graceful_timeout) *before*
                # it runs ASGI lifespan shutdown, so the AsyncServer.shutdown() that lifespan
                # triggers would find every websocket and long-poll already cut off: clients
                # would wait 5 s and then see the TCP connection drop, with no CLOSE packet.
                # Close the Engine.IO sessions first, as a deployment's shutdown trigger should.
                engineio_server = getattr(app, "engineio_server", None)
                if isinstance(engineio_server, AsyncServer) and engineio_server.running:
                    await engineio_server.shutdown()
            finally:
                shutdown.set()
