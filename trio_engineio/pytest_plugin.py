"""A pytest plugin with fixtures for testing Engine.IO apps under pytest-trio.

Enable it with one line in your ``conftest.py``::

    pytest_plugins = ["trio_engineio.pytest_plugin"]

then define an ``asgi_app`` fixture returning your application, and ask for
``engineio_url`` (real hypercorn on 127.0.0.1 port 0), ``engineio_http`` (an
httpx client, in memory) or ``engineio_client`` (an
:class:`~trio_engineio.AsyncClient`, in memory)::

    @pytest.fixture
    def asgi_app():
        return myproject.app

    async def test_handshake(engineio_url):
        async with httpx.AsyncClient() as http:
            response = await http.get(engineio_url + "/engine.io/?EIO=4&transport=polling")
        assert response.status_code == 200

The fixtures are async (pytest-trio runs them in the test's own nursery), so
use them from ``async def`` tests only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from trio_engineio.client import AsyncClient
from trio_engineio.testing import open_client, open_http_client, open_lifespan, serve_hypercorn

__all__ = ["engineio_client", "engineio_http", "engineio_url"]


@pytest.fixture
async def engineio_url(asgi_app: Any) -> AsyncIterator[str]:
    """Serve the ``asgi_app`` fixture under hypercorn's trio worker; yield ``http://127.0.0.1:PORT``.

    Real sockets need real time: do not use it with ``autojump_clock``. The
    Engine.IO sessions are closed gracefully, then hypercorn, after the test
    (see :func:`~trio_engineio.testing.serve_hypercorn`).

    Args:
        asgi_app: your fixture returning the application.

    Yields:
        The server's base URL.

    Example::

        async def test_real_client(engineio_url):
            async with trio_engineio.AsyncClient() as client:
                await client.connect(engineio_url)
    """
    async with serve_hypercorn(asgi_app) as url:
        yield url


@pytest.fixture
async def engineio_http(asgi_app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Run the ``asgi_app`` fixture's lifespan and yield an in-memory ``httpx.AsyncClient`` to it.

    Safe with ``autojump_clock``: no sockets are involved.

    Args:
        asgi_app: your fixture returning the application.

    Yields:
        The HTTP client (base URL ``http://testserver``).

    Example::

        async def test_handshake(engineio_http):
            response = await engineio_http.get("/engine.io/", params={"EIO": "4", "transport": "polling"})
            assert response.status_code == 200
    """
    async with open_lifespan(asgi_app), open_http_client(asgi_app) as client:
        yield client


@pytest.fixture
async def engineio_client(asgi_app: Any) -> AsyncIterator[AsyncClient]:
    """Run the ``asgi_app`` fixture's lifespan and yield an :class:`~trio_engineio.AsyncClient` wired to it in memory.

    The client is not connected yet: ``await engineio_client.connect(trio_engineio.testing.BASE_URL)``.
    It is closed, then the app's lifespan shut down, after the test. Safe with
    ``autojump_clock``: no sockets are involved (see :func:`trio_engineio.testing.open_client`).

    Args:
        asgi_app: your fixture returning the application.

    Yields:
        The client, inside its ``async with`` block.

    Example::

        async def test_echo(engineio_client, autojump_clock):
            await engineio_client.connect(BASE_URL)
            await engineio_client.send("hello")
            assert await engineio_client.receive() == "hello"
    """
    async with open_lifespan(asgi_app), open_client(asgi_app) as client:
        yield client
