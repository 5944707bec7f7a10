"""After 1,000 real sessions over hypercorn, nothing of them is left: no sid, no task.

Every session is a task group in the server's nursery (``trio_engineio._session``);
when it ends, all of its tasks must end with it. This runs 1,000 sessions of
every shape (websocket only, polling only, polling upgraded to websocket, an
upgrade given up, a dropped connection, an aborted long poll; closed by the
client or by the server) 20 at a time over real sockets, then walks Trio's
whole task tree.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import pytest
import trio
import trio_websocket

from trio_engineio import _session

if TYPE_CHECKING:
    from conftest import EchoServer, OpenRawWebSocket, ServeEcho

SESSIONS = 1000
CONCURRENCY = 20
POLLING = {"EIO": "4", "transport": "polling"}
WEBSOCKET = {"EIO": "4", "transport": "websocket"}


def all_tasks() -> Iterator[trio.lowlevel.Task]:
    """Every live task of this run, from the root task down."""
    root = trio.lowlevel.current_root_task()
    assert root is not None
    stack = [root]
    while stack:
        task = stack.pop()
        yield task
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)


def session_tasks() -> list[str]:
    """The names of live tasks whose coroutine belongs to ``trio_engineio._session``."""
    found = []
    for task in all_tasks():
        code = getattr(task.coro, "cr_code", None)
        if task.name.startswith(_session.__name__ + ".") or (
            code is not None and code.co_filename == _session.__file__
        ):
            found.append(task.name)
    return found


class Sessions:
    """Runs sessions of every shape against an echo server; ``index`` picks the shape and the ending."""

    def __init__(self, echo: EchoServer, open_ws: OpenRawWebSocket, client: httpx.AsyncClient) -> None:
        self.echo = echo
        self.url = echo.engineio_url
        self.open_ws = open_ws
        self.client = client

    async def run(self, index: int) -> None:
        server_closes = index % 10 == 9  # one in ten ends with the server's disconnect()
        shape = index % 6
        if shape == 0:
            await self.websocket_only(server_closes)
        elif shape == 1:
            await self.polling_only(server_closes)
        elif shape == 2:
            await self.upgraded(server_closes, with_stray_get=False)
        elif shape == 3:
            await self.upgraded(server_closes, with_stray_get=True)
        elif shape == 4:
            await self.probe_given_up(server_closes)
        elif index % 12 == 5:
            await self.dropped_websocket()
        else:
            await self.aborted_long_poll()

    # -- websocket ---------------------------------------------------------------

    async def _echo_then_close(self, ws: trio_websocket.WebSocketConnection, server_closes: bool) -> None:
        await ws.send_message("4hello")
        assert await ws.get_message() == "4hello"
        if server_closes:
            await ws.send_message("4please-disconnect")
            assert await ws.get_message() == "1"
            with pytest.raises(trio_websocket.ConnectionClosed) as closed:
                await ws.get_message()
            assert closed.value.reason is not None
            assert closed.value.reason.code == 1000

    async def websocket_only(self, server_closes: bool) -> None:
        async with self.open_ws(self.url) as ws:
            assert str(await ws.get_message()).startswith("0")
            await self._echo_then_close(ws, server_closes)

    async def dropped_websocket(self) -> None:
        """The TCP connection goes away without a websocket close handshake."""
        parts = urlsplit(self.url)
        assert parts.hostname is not None
        assert parts.port is not None
        stream = await trio.open_tcp_stream(parts.hostname, parts.port)
        async with stream, trio.open_nursery() as nursery:
            ws = await trio_websocket.wrap_client_stream(
                nursery, stream, parts.netloc, f"{parts.path}?EIO=4&transport=websocket"
            )
            assert str(await ws.get_message()).startswith("0")
            await ws.send_message("4hello")
            assert await ws.get_message() == "4hello"
            await stream.aclose()
            nursery.cancel_scope.cancel()  # trio-websocket's reader would only notice later

    # -- polling -----------------------------------------------------------------

    async def _handshake(self) -> dict[str, str]:
        opened = await self.client.get(self.url, params=POLLING)
        return {**POLLING, "sid": json.loads(opened.text[1:])["sid"]}

    async def _poll_echo_then_close(self, params: dict[str, str], server_closes: bool) -> None:
        assert (await self.client.post(self.url, params=params, content=b"4hello")).text == "ok"
        assert (await self.client.get(self.url, params=params)).text == "4hello"
        if server_closes:
            assert (await self.client.post(self.url, params=params, content=b"4please-disconnect")).text == "ok"
            assert (await self.client.get(self.url, params=params)).text == "1"
        else:
            assert (await self.client.post(self.url, params=params, content=b"1")).text == "ok"

    async def polling_only(self, server_closes: bool) -> None:
        await self._poll_echo_then_close(await self._handshake(), server_closes)

    async def aborted_long_poll(self) -> None:
        """The client gives up a waiting GET (its connection closes), then closes the session."""
        params = await self._handshake()
        sid = params["sid"]
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(functools.partial(self.client.get, self.url, params=params))
                with trio.fail_after(5):
                    while not self.echo.eio._sessions[sid].machine.get_pending:  # noqa: ASYNC110 (no event)
                        await trio.sleep(0.001)
                scope.cancel()
        assert (await self.client.post(self.url, params=params, content=b"1")).text == "ok"

    # -- upgrade -----------------------------------------------------------------

    async def upgraded(self, server_closes: bool, *, with_stray_get: bool) -> None:
        params = await self._handshake()
        async with self.open_ws(self.url, {**WEBSOCKET, "sid": params["sid"]}) as ws, trio.open_nursery() as nursery:
            if with_stray_get:
                # Wherever it lands (before the probe, during or after the upgrade),
                # it gets NOOP or 400, never a packet meant for the websocket.
                nursery.start_soon(self._stray_get, params)
            await ws.send_message("2probe")
            assert await ws.get_message() == "3probe"
            await ws.send_message("5")
            await self._echo_then_close(ws, server_closes)

    async def _stray_get(self, params: dict[str, str]) -> None:
        response = await self.client.get(self.url, params=params)
        assert (response.status_code, response.text) in ((200, "6"), (400, '{"code":3,"message":"Bad request"}'))

    async def probe_given_up(self, server_closes: bool) -> None:
        """The probe websocket closes before UPGRADE: the session goes on polling."""
        params = await self._handshake()
        async with self.open_ws(self.url, {**WEBSOCKET, "sid": params["sid"]}) as ws:
            await ws.send_message("2probe")
            assert await ws.get_message() == "3probe"
        await self._poll_echo_then_close(params, server_closes)


async def test_1000_sessions_leave_no_sid_and_no_task(
    serve_echo: ServeEcho, open_raw_websocket: OpenRawWebSocket
) -> None:
    """1,000 sessions of every shape, 20 at a time: afterwards no sid and no session task remain.

    Sessions are task groups in the server's nursery: once each has closed
    (whoever closed it, whatever its transport, however it ended), ``eio.sockets``
    is empty, the server's nursery has no child left and no task anywhere in
    the task tree runs code of ``trio_engineio._session``, while the server
    is still running.
    """
    async with serve_echo() as echo:
        # The detector does see session tasks while a session is open.
        async with open_raw_websocket(echo.engineio_url) as ws:
            await ws.get_message()
            live = set(session_tasks())
            # An idle session is one task (its timer); its handler runner and writer start on demand.
            assert "trio_engineio._session.Session.run" in live

        async def worker(first: int) -> None:
            async with httpx.AsyncClient() as client:
                sessions = Sessions(echo, open_raw_websocket, client)
                for index in range(first, SESSIONS, CONCURRENCY):
                    await sessions.run(index)

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for first in range(CONCURRENCY):
                    nursery.start_soon(worker, first)

        assert len(echo.connects) == SESSIONS + 1
        # The last sessions may still be ending; nothing signals "all gone", so poll.
        with trio.fail_after(10):
            while echo.eio.sockets:  # noqa: ASYNC110
                await trio.sleep(0.01)
        assert len(echo.disconnects) == SESSIONS + 1
        assert echo.eio._nursery is not None
        assert echo.eio._nursery.child_tasks == frozenset()
        assert session_tasks() == []
        assert set(echo.disconnects.values()) == {"client disconnect", "server disconnect", "transport close"}
