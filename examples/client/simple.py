"""A Trio client: connect, send, read the replies with ``async for``, disconnect.

Start a server that echoes (``make run`` serves the echo example on
http://127.0.0.1:8000), then::

    python examples/client/simple.py [URL] [--transport polling|websocket]

It sends a text, a binary and a JSON message, prints each reply as it arrives,
and disconnects once all three are back; the ``async for`` loop ends with the
connection.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import trio

from trio_engineio import AsyncClient

MESSAGES: list[str | bytes | dict[str, Any]] = ["hello from Trio", b"\x00\x01\x02 binary", {"json": ["is", "fine"]}]


async def talk(url: str, transports: list[str] | None = None) -> list[Any]:
    """Send :data:`MESSAGES` to the server at ``url`` and return its replies, in order.

    Args:
        url: the server, e.g. ``http://127.0.0.1:8000``.
        transports: ``["polling"]`` or ``["websocket"]`` to use only one; by
            default the client long-polls first and upgrades to a websocket.

    Returns:
        The replies: text as ``str``, binary as ``bytes``, JSON text decoded.
    """
    replies: list[Any] = []
    async with AsyncClient() as client:
        await client.connect(url, transports=transports)
        print(f"connected: sid {client.sid}, transport {client.transport()}")
        for message in MESSAGES:
            await client.send(message)
        async for data in client:
            print(f"received {data!r} (transport {client.transport()})")
            replies.append(data)
            if len(replies) == len(MESSAGES):
                await client.disconnect()  # the loop ends when the connection does
    print("disconnected")
    return replies


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run :func:`talk`; the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:8000", help="the server's URL")
    parser.add_argument("--transport", choices=["polling", "websocket"], help="use only this transport")
    args = parser.parse_args(argv)
    transports = [args.transport] if args.transport else None

    async def run() -> None:
        with trio.fail_after(10):  # a Trio program bounds its waits from the outside
            await talk(args.url, transports)

    trio.run(run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
