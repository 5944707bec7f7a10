"""What an idle session holds: its timer task, and nothing else until it needs more.

The design card's shape (each session a task group that owns its ping timer, outbound channel and
transport task) with the tasks started on demand, so that 10,000 idle sessions cost 10,000 tasks,
not 40,000 (docs/design.rst). In memory, on virtual time.
"""

from __future__ import annotations

import gc
import types
from typing import Any

import trio
import trio.testing
from server_helpers import Poller, make_app, probe, upgrade_query, ws_handshake

from trio_engineio.testing import open_websocket


def session_tasks() -> list[str]:
    """The names of the tasks running code of ``trio_engineio._session``."""
    names: list[str] = []
    root = trio.lowlevel.current_root_task()
    assert root is not None
    stack = [root]
    while stack:
        task = stack.pop()
        if task.name.startswith("trio_engineio._session."):
            names.append(task.name.removeprefix("trio_engineio._session.Session."))
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
    return sorted(names)


async def test_an_idle_websocket_session_is_one_task_and_grows_on_demand(
    autojump_clock: trio.testing.MockClock,
) -> None:
    eio, app = make_app(ping_interval=10)

    @eio.on("message")
    async def message(sid: str, data: Any) -> None:
        await eio.send(sid, data)

    async with eio, open_websocket(app) as ws:
        sid = (await ws_handshake(ws))["sid"]
        await trio.testing.wait_all_tasks_blocked()
        assert session_tasks() == ["run"]  # the timer; hypercorn's request task reads the websocket
        # The first message starts the handler runner (async_handlers=True), which stays.
        await ws.send("4hello")
        assert await ws.receive() == "4hello"
        await trio.testing.wait_all_tasks_blocked()
        assert session_tasks() == ["_run_handlers", "run"]
        # The PING is the machine's packet: a writer task sends it and ends.
        await trio.sleep(10)
        assert await ws.receive() == "2"
        await ws.send("3")
        await trio.testing.wait_all_tasks_blocked()
        assert session_tasks() == ["_run_handlers", "run"]
        # Sends that find a write under way queue for a writer, which ends once they are out.
        for index in range(3):
            eio.send_nowait(sid, str(index))
        assert [await ws.receive() for _ in range(3)] == ["40", "41", "42"]
        await trio.testing.wait_all_tasks_blocked()
        assert session_tasks() == ["_run_handlers", "run"]
        # Nothing waits inside an except block: the exception, its traceback and their frames
        # would live as long as the session is idle (they did, for the reader and the runner).
        gc.collect()
        tracebacks = [o for o in gc.get_objects() if isinstance(o, types.TracebackType)]
        assert not [tb for tb in tracebacks if "trio_engineio" in tb.tb_frame.f_code.co_filename]
        # Nor does the session keep the WSGI-style environ of its handshake (a few KiB each).
        assert not [o for o in gc.get_objects() if type(o) is dict and "RAW_URI" in o]
    assert session_tasks() == []


async def test_an_upgraded_session_keeps_no_environ(autojump_clock: trio.testing.MockClock) -> None:
    eio, app = make_app()
    async with eio, Poller.open(app) as poller, trio.open_nursery() as nursery:
        await poller.handshake()
        pending = await poller.start_get(nursery)
        async with open_websocket(app, query=upgrade_query(poller.sid)) as ws:
            await probe(ws, pending)
            await ws.send("5")
            await trio.testing.wait_all_tasks_blocked()
            assert eio.transport(poller.sid) == "websocket"
            gc.collect()
            assert not [o for o in gc.get_objects() if type(o) is dict and "RAW_URI" in o]
