"""The ``trio-engineio`` command line, run as a user runs it: a subprocess on real sockets."""

from __future__ import annotations

import functools
import subprocess
import sys
from typing import TYPE_CHECKING

import httpx
import trio
from processes import free_port, wait_listening

from trio_engineio import ASGIApp, AsyncServer
from trio_engineio.__main__ import format_message
from trio_engineio._http import Receive, Scope, Send
from trio_engineio.testing import serve_hypercorn

if TYPE_CHECKING:
    from conftest import OpenRawWebSocket


def _echo_app() -> ASGIApp:
    eio = AsyncServer()

    @eio.on("message")
    async def message(sid: str, data: object) -> None:
        await eio.send(sid, data)  # type: ignore[arg-type]

    return ASGIApp(eio)


def test_binary_is_shown_as_hex_and_json_as_json() -> None:
    """`connect` prints what it receives so that any payload is readable."""
    assert format_message(b"\x00\x01\xff") == "< [binary, 3 bytes] 00 01 ff"
    assert format_message("plain text") == "< plain text"
    assert format_message({"a": [1, "é"]}) == '< {"a": [1, "é"]}'


async def _run_connect(url: str, *arguments: str, lines: str) -> subprocess.CompletedProcess[bytes]:
    with trio.fail_after(30):
        return await trio.run_process(
            [sys.executable, "-m", "trio_engineio", "connect", url, "--linger", "0.3", *arguments],
            stdin=lines.encode(),
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )


async def test_connect_sends_typed_lines_and_prints_the_echoes() -> None:
    """Each line typed is a text message; what comes back is printed; end of input disconnects."""
    async with serve_hypercorn(_echo_app()) as url:
        for arguments in ((), ("--transport", "polling"), ("--transport", "websocket")):
            result = await _run_connect(url, *arguments, lines='hello\n{"n": 1}\n')
            assert result.returncode == 0, result.stderr
            assert result.stdout.decode().splitlines() == ["< hello", '< {"n": 1}']
            stderr = result.stderr.decode()
            assert "* connected" in stderr
            if arguments:
                assert f"transport {arguments[1]}" in stderr


async def test_connect_sends_headers_and_reports_a_refusal() -> None:
    """`--header` reaches the server (here the connect handler refuses without it); a refusal exits 1."""
    eio = AsyncServer()
    eio.on("connect", lambda sid, environ: environ.get("HTTP_X_TOKEN") == "secret")
    async with serve_hypercorn(ASGIApp(eio)) as url:
        refused = await _run_connect(url, lines="")
        assert refused.returncode == 1
        assert "could not connect" in refused.stderr.decode()
        accepted = await _run_connect(url, "--header", "X-Token: secret", lines="")
        assert accepted.returncode == 0, accepted.stderr


async def test_serve_closes_sessions_gracefully_on_sigterm(open_raw_websocket: OpenRawWebSocket) -> None:
    """On SIGTERM `serve` shuts the Engine.IO server down first: a connected client gets its CLOSE packet.

    (hypercorn alone would first wait for open connections, then cut them.)
    """
    port = free_port()
    command = [sys.executable, "-m", "trio_engineio", "serve", "--bind", f"127.0.0.1:{port}"]
    async with trio.open_nursery() as nursery:
        process = await nursery.start(functools.partial(trio.run_process, command, check=False))
        try:
            await wait_listening(port)
            async with open_raw_websocket(f"http://127.0.0.1:{port}/engine.io/") as ws:
                assert str(await ws.get_message()).startswith("0{")
                process.terminate()
                with trio.fail_after(10):
                    assert await ws.get_message() == "1"
        except BaseException:
            process.kill()
            raise
    assert process.returncode == 0  # and it exited by itself, gracefully


async def test_serve_runs_the_demo_under_hypercorns_trio_worker() -> None:
    """`trio-engineio serve` with no app serves the echo demo: its page and a working Engine.IO endpoint."""
    port = free_port()
    command = [sys.executable, "-m", "trio_engineio", "serve", "--bind", f"127.0.0.1:{port}"]
    async with trio.open_nursery() as nursery:
        process = await nursery.start(functools.partial(trio.run_process, command, check=False))
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                with trio.fail_after(20):
                    while True:
                        try:
                            page = await http.get("/")
                            break
                        except httpx.ConnectError:
                            await trio.sleep(0.05)  # a process starting up: nothing to wait on but its port
                assert "trio_engineio" in page.text
                handshake = await http.get("/engine.io/", params={"EIO": "4", "transport": "polling"})
                assert handshake.status_code == 200
                assert handshake.text.startswith('0{"sid":')
                sid = handshake.text.split('"sid":"', 1)[1].split('"', 1)[0]
                goodbye = await http.post(
                    "/engine.io/", params={"EIO": "4", "transport": "polling", "sid": sid}, content="1"
                )
                assert goodbye.text == "ok"  # a client close: shutdown has no session to wait for
        finally:
            process.terminate()


# -- connect: what it says when something goes wrong, and as the connection changes ------------------


def _closing_app() -> ASGIApp:
    """Engine.IO at /engine.io/, and an app that closes every other websocket before accepting it.

    ASGI servers answer such a close with 403, as many frameworks' routers make them do.
    """

    async def closes_websockets(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1000})
        else:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    return ASGIApp(AsyncServer(), other_asgi_app=closes_websockets)


def _refusing_app() -> ASGIApp:
    eio = AsyncServer()
    eio.on("connect", lambda sid, environ: {"reason": "no token"})
    return ASGIApp(eio)


async def test_connect_failures_name_the_url_and_the_likely_cause() -> None:
    """Each failure: no traceback, a non-zero exit, the URL tried, the likely cause and the server's answer.

    It used to print a traceback for a URL without a scheme, ``ConnectError('')`` for https to a
    plain-HTTP port, "Unexpected status code 404" for a wrong path (403 over websocket), hide a
    refusal's JSON body, and ignore a path in the URL.
    """
    async with (
        serve_hypercorn(_echo_app()) as url,
        serve_hypercorn(_closing_app()) as closing_url,
        serve_hypercorn(_refusing_app()) as refusing_url,
    ):
        host = url.split("://", 1)[1]
        https = url.replace("http://", "https://")
        nobody = f"http://127.0.0.1:{free_port()}"
        cases: list[tuple[list[str], int, list[str]]] = [
            ([host], 2, [f"has no scheme: try http://{host}"]),
            ([f"ftp://{host}"], 2, ["the scheme must be http, https, ws or wss"]),
            ([f"{url}/one/", "--path", "two"], 2, ["disagree"]),
            ([https], 1, [f"{https}/engine.io/", "TLS handshake failed", "use http://"]),
            ([https, "--transport", "websocket"], 1, [f"wss://{host}/engine.io/", "use http://"]),
            ([f"{url}/nope/"], 1, [f"{url}/nope/", "nothing is served at /nope/ (404)", "--path"]),
            ([f"{url}/nope/", "--transport", "websocket"], 1, [f"ws://{host}/nope/", "(404)"]),
            ([closing_url, "--path", "nope", "--transport", "websocket"], 1, ["(403)", "the path /nope/ may be wrong"]),
            ([refusing_url], 1, ["(401)", 'the server said: {"reason": "no token"}']),
            ([refusing_url, "--transport", "websocket"], 1, ["(401)", '{"reason": "no token"}']),
            ([nobody], 1, [f"{nobody}/engine.io/", "connection refused"]),
        ]
        for arguments, status, expected in cases:
            result = await _run_connect(*arguments, lines="")
            stderr = result.stderr.decode()
            assert result.returncode == status, (arguments, stderr)
            assert "Traceback" not in stderr, (arguments, stderr)
            for text in expected:
                assert text in stderr, (arguments, text, stderr)


async def test_connect_honours_a_path_in_the_url() -> None:
    """``http://host/socket.io/`` connects to the Engine.IO endpoint at /socket.io/ (it was silently /engine.io/)."""
    eio = AsyncServer()
    async with serve_hypercorn(ASGIApp(eio, engineio_path="socket.io")) as url:
        result = await _run_connect(f"{url}/socket.io/?EIO=4&transport=polling", "--transport", "polling", lines="")
        stderr = result.stderr.decode()
        assert result.returncode == 0, stderr
        assert f"* connecting to {url}/socket.io/" in stderr
        assert "ignoring EIO, transport from the URL" in stderr


async def test_connect_reports_the_upgrade_and_why_it_was_disconnected() -> None:
    """``* upgraded to websocket`` when it happens; the disconnect line says who closed and why."""
    eio = AsyncServer()

    @eio.on("message")
    async def message(sid: str, data: object) -> None:
        await eio.disconnect(sid)  # any message: the server closes the session

    async with serve_hypercorn(ASGIApp(eio)) as url:
        command = [sys.executable, "-m", "trio_engineio", "connect", url]
        process = await trio.lowlevel.open_process(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        assert process.stdin is not None
        assert process.stderr is not None
        stderr = b""
        try:
            with trio.fail_after(20):
                while b"* upgraded to websocket" not in stderr:
                    chunk = await process.stderr.receive_some()
                    assert chunk, stderr
                    stderr += chunk
                await process.stdin.send_all(b"close me\n")
                async for chunk in process.stderr:
                    stderr += chunk
                await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()
                await process.stdin.aclose()
                await process.stderr.aclose()
    lines = stderr.decode().splitlines()
    assert lines[-1] == "* disconnected by the server: the server sent CLOSE", lines
    assert process.returncode == 0


def test_a_refusal_by_an_older_server_is_explained() -> None:
    """An Engine.IO v3 server's refusal (error code 5) names the version mismatch; the body is shown."""
    from trio_engineio.__main__ import explain_failure
    from trio_engineio.exceptions import ConnectionError

    refused = ConnectionError(
        "Unexpected status code 400 in server response",
        status_code=400,
        error_body={"code": 5, "message": "Unsupported protocol version"},
    )
    lines = explain_failure(refused, "http://old/engine.io/?transport=polling&EIO=4", "engine.io", "polling")
    assert lines[0] == "! could not connect to http://old/engine.io/?transport=polling&EIO=4"
    assert "another Engine.IO version" in lines[1]
    assert lines[2] == '  the server said: {"code": 5, "message": "Unsupported protocol version"}'
