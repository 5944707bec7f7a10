"""Helpers of the tests that run servers as processes: a free port, and waiting for it to listen."""

from __future__ import annotations

import socket

import trio


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (for a server process to bind)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_listening(port: int, limit: float = 20) -> None:
    """Wait until something accepts connections on ``127.0.0.1:port``.

    Raises:
        trio.TooSlowError: nothing did within ``limit`` seconds.
    """
    with trio.fail_after(limit):
        while True:
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
            except OSError:
                await trio.sleep(0.05)  # a process starting up: nothing to wait on but its port
            else:
                await stream.aclose()
                return
