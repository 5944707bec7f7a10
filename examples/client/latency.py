"""Measure Engine.IO round trips from Trio: send ``ping``, wait for ``pong``, repeat.

Start the latency server (``trio-engineio serve examples.latency.app:app``), then::

    python examples/client/latency.py [URL] [--count 10] [--pause 0.5] [--transport polling|websocket]

Each round trip is printed with the transport it used (by default the client
long-polls first, then upgrades to a websocket), and a summary at the end::

    10 round trips: min 0.31 ms, mean 0.52 ms, max 1.80 ms
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence

import trio

from trio_engineio import AsyncClient


async def measure(client: AsyncClient, count: int, pause: float = 0.5) -> list[float]:
    """Time ``count`` ping/pong round trips on a connected client.

    Args:
        client: a connected client; the server answers each message with one reply.
        count: how many round trips.
        pause: seconds to wait between a pong and the next ping.

    Returns:
        Each round trip, in seconds.
    """
    round_trips: list[float] = []
    for index in range(count):
        if index and pause:
            await trio.sleep(pause)
        start = trio.current_time()
        with trio.fail_after(5):  # a lost pong fails the run instead of hanging it
            await client.send("ping")
            reply = await client.receive()
        elapsed = trio.current_time() - start
        round_trips.append(elapsed)
        print(f"{reply} after {elapsed * 1000:.2f} ms over {client.transport()}", flush=True)
    return round_trips


def summary(round_trips: Sequence[float]) -> str:
    """One line: how many round trips, and their min, mean and max in milliseconds.

    Example:
        >>> summary([0.001, 0.002, 0.003])
        '3 round trips: min 1.00 ms, mean 2.00 ms, max 3.00 ms'
    """
    in_ms = [value * 1000 for value in round_trips]
    return (
        f"{len(in_ms)} round trips: min {min(in_ms):.2f} ms, mean {statistics.fmean(in_ms):.2f} ms, "
        f"max {max(in_ms):.2f} ms"
    )


async def run(url: str, count: int, pause: float, transports: list[str] | None) -> list[float]:
    """Connect to ``url``, :func:`measure`, print the :func:`summary`, disconnect."""
    async with AsyncClient() as client:
        await client.connect(url, transports=transports)
        round_trips = await measure(client, count, pause)
        await client.disconnect()
    print(summary(round_trips))
    return round_trips


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run :func:`run`; the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:8000", help="the latency server's URL")
    parser.add_argument("--count", type=int, default=10, help="round trips to measure (default 10)")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between round trips (default 0.5)")
    parser.add_argument("--transport", choices=["polling", "websocket"], help="use only this transport")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    transports = [args.transport] if args.transport else None
    trio.run(run, args.url, args.count, args.pause, transports)
    return 0


if __name__ == "__main__":
    sys.exit(main())
