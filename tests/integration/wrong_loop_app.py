"""The app of test_wrong_event_loop.py: the smallest Engine.IO app, served by ASGI servers that run asyncio.

Served as ``hypercorn tests.integration.wrong_loop_app:app`` (no ``--worker-class trio``)
or ``uvicorn tests.integration.wrong_loop_app:app``: the mistakes a new user makes.
"""

from __future__ import annotations

from trio_engineio import ASGIApp, AsyncServer

eio = AsyncServer(async_mode="asgi")
app = ASGIApp(eio)
