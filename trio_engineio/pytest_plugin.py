"""A pytest plugin with fixtures for testing Engine.IO apps under pytest-trio.

Install it with its requirements (pytest and pytest-trio)::

    pip install 'engineio-trio[testing]'

pytest then loads it by itself, through its ``pytest11`` entry point. The line
of earlier versions, in your top-level ``conftest.py``, is still accepted (and
needed when ``PYTEST_DISABLE_PLUGIN_AUTOLOAD`` is set)::

    pytest_plugins = ["trio_engineio.pytest_plugin"]

Define an ``asgi_app`` fixture returning your application, and ask for
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
use them from ``async def`` tests only. Without pytest-trio, a test asking for
one fails with the command that installs it, and ``trio_mode = true`` in the
configuration is a usage error that says the same.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from trio_engineio.client import AsyncClient
from trio_engineio.testing import open_client, open_http_client, open_lifespan, serve_hypercorn

__all__ = ["engineio_client", "engineio_http", "engineio_url"]

_INSTALL = "pip install 'engineio-trio[testing]'"


def _pytest_trio_registered(pluginmanager: pytest.PytestPluginManager) -> bool:
    """Whether pytest-trio is loaded, by its entry point (``trio``) or by module name."""
    return any(getattr(plugin, "__name__", None) == "pytest_trio.plugin" for plugin in pluginmanager.get_plugins())


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """Declare pytest-trio's ``trio_mode`` while pytest-trio is absent, so that :func:`pytest_configure` can explain.

    Without it, ``trio_mode = true`` is an unknown option, which pytest reports
    after collection as a warning (an ``INTERNALERROR`` under ``filterwarnings = error``)
    that does not say what is missing. When pytest-trio is loaded after this
    plugin, its own declaration replaces this one.
    """
    if not _pytest_trio_registered(pluginmanager):
        parser.addini("trio_mode", "pytest-trio's switch (pytest-trio is not installed)", type="bool", default=False)


def pytest_configure(config: pytest.Config) -> None:
    """Refuse ``trio_mode = true`` without pytest-trio with a usage error that names the missing package."""
    if not _pytest_trio_registered(config.pluginmanager) and config.getini("trio_mode"):
        raise pytest.UsageError(
            f"trio_mode is set in {config.inipath or 'the configuration'} but pytest-trio, which reads it, is "
            f"not installed (or is disabled by -p no:trio); trio_engineio's fixtures need it too: {_INSTALL}"
        )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a test that asks for this plugin's fixtures without pytest-trio, saying how to install it."""
    if _pytest_trio_registered(item.config.pluginmanager):
        return
    wanted = [name for name in __all__ if name in getattr(item, "fixturenames", ())]
    if wanted:
        pytest.fail(
            f"{', '.join(wanted)}: trio_engineio's fixtures are async and need pytest-trio, which is not installed "
            f"(or is disabled by -p no:trio): {_INSTALL}, then set trio_mode = true in the pytest configuration",
            pytrace=False,
        )


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
