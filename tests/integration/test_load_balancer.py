"""Several server processes: sticky sessions behind nginx, and what breaks without them.

A session lives in one process, so every request of a polling session must reach the
process that created it (docs/server.rst, "Several workers"). Here two single-process
``hypercorn --worker-class trio`` backends serve ``lb_echo_app.py`` behind nginx with
``deploy/nginx/engineio-sticky.conf`` (the file the docs include; only its ports are
replaced). Each run is 200 :class:`~trio_engineio.AsyncClient` clients, 20 at a time,
allowed to upgrade (polling, then websocket): each sends 5 messages and checks their echoes,
2 over polling and 3 once upgraded. nginx's access log records, for each request, the
session (``?sid=``, or for a handshake the ``io`` cookie it set) and the backend that
answered: a sticky run has each session on one backend, no 400 and every echo back.

Two ways to stick, both in the one config file:

* By client address (``ip_hash``), for clients that keep no cookies (a cross-site page,
  the Node.js engine.io-client without ``withCredentials: true``). Every test
  client comes from 127.0.0.1, so ip_hash sends them all to one backend: this shows that
  sessions hold, not that load spreads.
* By a route cookie that nginx itself sets (``engineio_route=app1``) on each response,
  for clients that keep cookies (browsers on the same site, and AsyncClient: its httpx
  client keeps them, and sends them with the websocket upgrade too). The test's clients
  change source address on every request (127.0.N.1, two addresses that ip_hash sends to
  different backends), so the cookie alone keeps them sticky, and the handshakes spread
  over both backends.

Why not ``hash $cookie_io consistent``, with the server's ``cookie="io"``: the handshake
has no cookie yet, so nginx places it without the hash, and the session's later requests
go wherever the hash of its sid points, which is the creating backend only by chance.
``hash $arg_sid`` fails the same way. One negative control shows it.

The negative controls, which show what the docs warn about (each asserts that
"Session ID unknown" answers do happen):

* ``hypercorn --worker-class trio -w 2``, no balancer: two processes accept on one shared
  socket, and the kernel gives each new connection (a client's second polling
  connection, its websocket) to either;
* nginx hashing the ``io`` cookie;
* the deployed config with clients that change address and keep no cookies: ip_hash
  alone then splits them, which proves that the cookie run passes thanks to the cookie.

nginx comes from the system; when it is missing, the ``nginx`` fixture installs it
once with apt-get (as root, or with passwordless sudo) and skips only if that fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path

import httpx
import pytest
import trio

from trio_engineio import AsyncClient, EngineIOError

_REPO = Path(__file__).resolve().parents[2]
_DEPLOY_CONFIG = _REPO / "deploy" / "nginx" / "engineio-sticky.conf"
_APP = "tests.integration.lb_echo_app:app"
_READY = b"lb_echo_app ready"
_CLIENTS = 200
_CONCURRENT = 20
_MESSAGES = 5
_MESSAGES_BEFORE_UPGRADE = 2
_UNKNOWN_SID = {"code": 1, "message": "Session ID unknown"}

# The test nginx's access log: each request's status, its session and the backend that answered it.
_LOG_FORMAT = "'$status $request_method sid=$arg_sid io=$upstream_cookie_io up=$upstream_addr'"

# The naive cookie config (see the module docstring): the io cookie hashed to a backend.
_HASH_IO_COOKIE_CONFIG = """
upstream engineio {{
    hash $cookie_io consistent;
    server 127.0.0.1:{backend1};
    server 127.0.0.1:{backend2};
}}

map $http_upgrade $connection_upgrade {{
    default upgrade;
    ''      close;
}}

server {{
    listen 127.0.0.1:{port};

    location /engine.io/ {{
        proxy_pass http://engineio;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection $connection_upgrade;
        proxy_buffering off;
        proxy_read_timeout 60s;
    }}
}}
"""


# -- nginx --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Nginx:
    """The nginx binary, and the temp-path directives that keep it inside a test's directory."""

    path: str
    temp_paths: str


def _find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found is None and os.access("/usr/sbin/nginx", os.X_OK):  # not on a non-root PATH
        found = "/usr/sbin/nginx"
    return found


def _install_nginx() -> str:
    """``apt-get install`` nginx-light, else nginx; return why it failed ("" when it worked)."""
    if shutil.which("apt-get") is None:
        return "there is no apt-get on this machine"
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if sudo and shutil.which("sudo") is None:
        return "not root, and there is no sudo"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    update = subprocess.run([*sudo, "apt-get", "update", "-q"], env=env, capture_output=True, check=False)
    if update.returncode != 0:
        return f"apt-get update failed: {update.stderr.decode(errors='replace')[-500:]}"
    why = ""
    for package in ("nginx-light", "nginx"):
        install = subprocess.run(
            [*sudo, "apt-get", "install", "-y", "-q", package], env=env, capture_output=True, check=False
        )
        if install.returncode == 0:
            return ""
        why = f"apt-get install {package} failed: {install.stderr.decode(errors='replace')[-500:]}"
    return why


@pytest.fixture(scope="session")
def nginx() -> Nginx:
    """nginx from the system, installed with apt-get once if missing; else the tests skip."""
    path = _find_nginx()
    if path is None:
        why = _install_nginx()
        path = _find_nginx()
        if path is None:
            pytest.skip(f"nginx is not installed and could not be installed: {why or 'not found afterwards'}")
    version = subprocess.run([path, "-V"], capture_output=True, check=True)
    configured = version.stderr.decode(errors="replace")
    # Each compiled-in module has a temp directory, by default outside the test's directory.
    modules = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    present = [name for name in modules if f"--http-{name.replace('_', '-')}-temp-path" in configured]
    directives = " ".join(f"{name}_temp_path temp/{name};" for name in {"client_body", "proxy", *present})
    return Nginx(path, directives)


def _deployed_config(port: int, backends: Sequence[int]) -> str:
    """``deploy/nginx/engineio-sticky.conf`` with its listen port and backend ports replaced."""
    text = _DEPLOY_CONFIG.read_text()
    assert "listen 80;" in text, f"{_DEPLOY_CONFIG} no longer has 'listen 80;': update this test"
    assert len(re.findall(r"server 127\.0\.0\.1:800[12];", text)) == 4, f"update this test for {_DEPLOY_CONFIG}"
    text = text.replace("listen 80;", f"listen 127.0.0.1:{port};")
    # In one pass, so that a port put in is never replaced again.
    return re.sub(r"127\.0\.0\.1:800([12])\b", lambda match: f"127.0.0.1:{backends[int(match[1]) - 1]}", text)


def _ip_hash_backend(address: str, backends: int) -> int:
    """The backend (its index) that nginx's ``ip_hash`` picks for an IPv4 client, all up and of equal weight.

    nginx hashes the first three octets (ngx_http_upstream_ip_hash_module.c).
    """
    value = 89
    for octet in address.split(".")[:3]:
        value = (value * 113 + int(octet)) % 6271
    return value % backends


def _moving_addresses() -> tuple[str, str]:
    """Two loopback source addresses that ip_hash sends to different backends (of two)."""
    candidates = [f"127.0.{n}.1" for n in range(1, 64)]
    first = next(address for address in candidates if _ip_hash_backend(address, 2) == 0)
    second = next(address for address in candidates if _ip_hash_backend(address, 2) == 1)
    return first, second


@dataclasses.dataclass
class AccessLog:
    """nginx's access log, read after nginx has exited."""

    statuses: dict[str, int]
    backends_by_session: dict[str, set[str]]
    upgrades: int

    @classmethod
    def read(cls, path: Path) -> AccessLog:
        statuses: dict[str, int] = {}
        backends: dict[str, set[str]] = {}
        upgrades = 0
        for line in path.read_text().splitlines():
            status, _method, sid, io, upstream = line.split(" ", 4)
            statuses[status] = statuses.get(status, 0) + 1
            upgrades += status == "101"
            session = sid.removeprefix("sid=")
            if session == "-":  # a handshake: the io cookie it set names its session
                session = io.removeprefix("io=")
            if session != "-":
                backends.setdefault(session, set()).add(upstream.removeprefix("up="))
        return cls(statuses, backends, upgrades)


async def _wait_logged_upgrades(access_log: Path, count: int) -> None:
    """Wait (5 s at most) until nginx has logged ``count`` websockets: it logs each once both ends have closed."""
    with trio.move_on_after(5):
        while True:
            text = await trio.Path(access_log).read_text()
            if sum(line.startswith("101 ") for line in text.splitlines()) >= count:
                return
            await trio.sleep(0.02)  # nothing to wait on but nginx's file


# -- processes ----------------------------------------------------------------------


class _Running:
    """A process the test started, and what it printed (stdout and stderr together)."""

    def __init__(self, name: str, process: trio.Process) -> None:
        self.name = name
        self.process = process
        self.output = b""
        self.ended = False
        self._changed = trio.Event()

    async def collect(self) -> None:
        assert self.process.stdout is not None
        async for chunk in self.process.stdout:
            self.output += chunk
            self._changed.set()
            self._changed = trio.Event()
        self.ended = True
        self._changed.set()

    async def wait_printed(self, text: bytes, count: int) -> None:
        with trio.fail_after(30):
            while self.output.count(text) < count:
                if self.ended:
                    await self.process.wait()
                    raise AssertionError(f"{self.name} exited ({self.process.returncode}):\n{self.output.decode()}")
                await self._changed.wait()

    async def wait_listening(self, port: int, describe: Callable[[], str]) -> None:
        with trio.fail_after(30):
            while True:
                if self.process.poll() is not None:
                    raise AssertionError(f"{self.name} exited ({self.process.returncode}):\n{describe()}")
                try:
                    stream = await trio.open_tcp_stream("127.0.0.1", port)
                except OSError:
                    await trio.sleep(0.05)  # a process starting up: nothing to wait on but its port
                else:
                    await stream.aclose()
                    return


@contextlib.asynccontextmanager
async def _run(name: str, command: Sequence[str], stop: signal.Signals) -> AsyncIterator[_Running]:
    """Run ``command`` in its own process group; at the end send ``stop``, then kill the group after 15 s."""
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(
            functools.partial(
                trio.run_process,
                list(command),
                cwd=_REPO,
                check=False,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # hypercorn's workers are its children: end them with it
            )
        )
        running = _Running(name, process)
        nursery.start_soon(running.collect)
        try:
            yield running
        finally:
            with trio.CancelScope(shield=True):
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(stop)
                with trio.move_on_after(15) as timer:
                    await process.wait()
                if timer.cancelled_caught:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    await process.wait()
                with contextlib.suppress(ProcessLookupError):  # a worker left behind
                    os.killpg(process.pid, signal.SIGKILL)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def _start_hypercorn(workers: int) -> AsyncIterator[tuple[_Running, int]]:
    """Start ``hypercorn --worker-class trio -w workers`` serving lb_echo_app; yield it and its port."""
    port = _free_port()
    command = [sys.executable, "-m", "hypercorn", "--worker-class", "trio", "--workers", str(workers)]
    command += ["--bind", f"127.0.0.1:{port}", "--graceful-timeout", "1", _APP]
    async with _run(f"hypercorn -w {workers} on port {port}", command, signal.SIGTERM) as backend:
        yield backend, port


@contextlib.asynccontextmanager
async def _serve_backends() -> AsyncIterator[list[int]]:
    """Two single-process hypercorn backends, started together (each takes a second); yield their ports."""
    async with _start_hypercorn(1) as (first, first_port), _start_hypercorn(1) as (second, second_port):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(first.wait_printed, _READY, 1)
            nursery.start_soon(second.wait_printed, _READY, 1)
        yield [first_port, second_port]


@contextlib.asynccontextmanager
async def _serve_nginx(nginx: Nginx, directory: Path, site: str, port: int) -> AsyncIterator[Path]:
    """nginx in ``directory`` (config, pid, logs, temp files) serving ``site``; yield its access log.

    One process (``master_process off``: no privilege drop, so it works as root and not).
    """
    (directory / "temp").mkdir()
    (directory / "site.conf").write_text(site)
    (directory / "nginx.conf").write_text(
        f"""daemon off;
master_process off;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format engineio {_LOG_FORMAT};
    access_log {directory}/access.log engineio;
    {nginx.temp_paths}
    include {directory}/site.conf;
}}
"""
    )
    command = [
        nginx.path,
        "-p",
        str(directory),
        "-c",
        str(directory / "nginx.conf"),
        "-e",
        str(directory / "error.log"),
    ]
    async with _run(f"nginx on port {port}", command, signal.SIGTERM) as running:
        error_log = directory / "error.log"
        await running.wait_listening(port, lambda: running.output.decode() + error_log.read_text())
        yield directory / "access.log"


# -- clients ------------------------------------------------------------------------


@dataclasses.dataclass
class Tally:
    """What the clients of one run saw."""

    delivered: int = 0
    unknown_sid: int = 0
    failures: list[str] = dataclasses.field(default_factory=list)

    async def note_response(self, response: httpx.Response) -> None:
        """An httpx response hook: count the "Session ID unknown" answers to polling requests."""
        if response.status_code == 400:
            await response.aread()
            with contextlib.suppress(ValueError):
                if json.loads(response.content) == _UNKNOWN_SID:
                    self.unknown_sid += 1

    def summary(self) -> str:
        return (
            f"{_CLIENTS - len(self.failures)}/{_CLIENTS} clients got all their echoes, "
            f"{self.delivered}/{_CLIENTS * _MESSAGES} echoes, {self.unknown_sid} 'Session ID unknown' answers"
        )


class _MovingTransport(httpx.AsyncBaseTransport):
    """Sends each request from the next source address in turn: a client whose address keeps changing."""

    def __init__(self, addresses: Sequence[str], first: int) -> None:
        self._transports = [httpx.AsyncHTTPTransport(local_address=address) for address in addresses]
        self._turns = itertools.count(first)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._transports[next(self._turns) % len(self._transports)]
        return await transport.handle_async_request(request)

    async def aclose(self) -> None:
        for transport in self._transports:
            await transport.aclose()


def _http_client(tally: Tally, *, cookies: bool, moving: Sequence[str] = (), number: int = 0) -> httpx.AsyncClient:
    """The httpx client of one Engine.IO client: with or without a cookie jar, from 127.0.0.1 or moving."""
    transport = _MovingTransport(moving, number) if moving else None
    jar = CookieJar() if cookies else CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))  # keeps none
    return httpx.AsyncClient(transport=transport, cookies=jar, event_hooks={"response": [tally.note_response]})


async def _one_client(number: int, url: str, http: httpx.AsyncClient, tally: Tally, *, sticky: bool) -> None:
    async with http, AsyncClient(http_session=http) as client:
        try:
            with trio.fail_after(20):
                await client.connect(url, transports=["polling", "websocket"])
                for index in range(_MESSAGES):
                    if sticky and index == _MESSAGES_BEFORE_UPGRADE:
                        # The client has no upgrade event to wait for: poll its transport.
                        while client.transport() != "websocket":  # noqa: ASYNC110
                            await trio.sleep(0.005)
                    text = f"client {number} message {index}"
                    await client.send(text)
                    echo = await client.receive()
                    if echo != text:
                        raise AssertionError(f"sent {text!r}, got back {echo!r}")
                    tally.delivered += 1
        except (EngineIOError, trio.TooSlowError, AssertionError) as exc:
            tally.failures.append(f"client {number}: {exc!r}")


async def _run_clients(url: str, make_http: Callable[[Tally, int], httpx.AsyncClient], *, sticky: bool) -> Tally:
    """200 clients, 20 at a time; ``sticky`` ones also wait for their upgrade halfway."""
    tally = Tally()
    limiter = trio.CapacityLimiter(_CONCURRENT)

    async def client(number: int) -> None:
        async with limiter:
            await _one_client(number, url, make_http(tally, number), tally, sticky=sticky)

    async with trio.open_nursery() as nursery:
        for number in range(_CLIENTS):
            nursery.start_soon(client, number)
    print(f"\n{tally.summary()}")
    return tally


def _assert_sticky(tally: Tally, log: AccessLog) -> None:
    assert tally.failures == [], f"{tally.summary()}; first failures: {tally.failures[:5]}"
    assert tally.delivered == _CLIENTS * _MESSAGES
    assert tally.unknown_sid == 0
    print(f"nginx access log: statuses {log.statuses}, {log.upgrades} upgrades")
    assert set(log.statuses) <= {"101", "200"}, log.statuses  # no 400 for polling nor for an upgrade
    assert len(log.backends_by_session) == _CLIENTS
    split = {sid: backends for sid, backends in log.backends_by_session.items() if len(backends) != 1}
    assert split == {}, "sessions served by more than one backend"
    assert log.upgrades == _CLIENTS


# -- the tests ----------------------------------------------------------------------


async def test_sticky_by_client_address(nginx: Nginx, tmp_path: Path) -> None:
    """Clients that keep no cookies stick by address (ip_hash): every session holds, on one backend."""
    port = _free_port()
    async with (
        _serve_backends() as backends,
        _serve_nginx(nginx, tmp_path, _deployed_config(port, backends), port) as access_log,
    ):
        tally = await _run_clients(
            f"http://127.0.0.1:{port}", lambda tally, number: _http_client(tally, cookies=False), sticky=True
        )
        await _wait_logged_upgrades(access_log, _CLIENTS)
    log = AccessLog.read(access_log)
    _assert_sticky(tally, log)
    # Every test client is 127.0.0.1: one address, one backend.
    assert len({backend for backends in log.backends_by_session.values() for backend in backends}) == 1


async def test_sticky_by_route_cookie_when_the_address_changes(nginx: Nginx, tmp_path: Path) -> None:
    """Clients that keep cookies stick by nginx's route cookie, whatever address each request comes from.

    Their polling requests alternate between two source addresses that ip_hash sends to
    different backends (their websocket comes from 127.0.0.1): without the cookie they break
    (``test_nginx_without_a_working_sticky_key_breaks_polling_sessions[ip_hash-moving]``).
    Handshakes come from either address, so sessions spread over both backends.
    """
    port = _free_port()
    moving = _moving_addresses()
    async with (
        _serve_backends() as backends,
        _serve_nginx(nginx, tmp_path, _deployed_config(port, backends), port) as access_log,
    ):
        tally = await _run_clients(
            f"http://127.0.0.1:{port}",
            lambda tally, number: _http_client(tally, cookies=True, moving=moving, number=number),
            sticky=True,
        )
        await _wait_logged_upgrades(access_log, _CLIENTS)
    log = AccessLog.read(access_log)
    _assert_sticky(tally, log)
    per_backend: dict[str, int] = {}
    for (backend,) in log.backends_by_session.values():
        per_backend[backend] = per_backend.get(backend, 0) + 1
    print(f"sessions per backend: {per_backend}")
    assert sorted(per_backend) == sorted(f"127.0.0.1:{backend}" for backend in backends)


async def test_hypercorn_workers_without_a_balancer_break_polling_sessions() -> None:
    """``hypercorn --worker-class trio -w 2``: two workers accept on one shared socket (docs/server.rst warns).

    The kernel gives each new connection to either worker: a client's second polling
    connection (a POST while its GET waits) or its websocket often reaches the worker
    that does not have its session.
    """
    async with _start_hypercorn(2) as (workers, port):
        await workers.wait_printed(_READY, 2)  # both take connections before the clients start
        tally = await _run_clients(
            f"http://127.0.0.1:{port}", lambda tally, number: _http_client(tally, cookies=True), sticky=False
        )
    assert tally.unknown_sid > 0, tally.summary()
    assert len(tally.failures) > 0, tally.summary()


@pytest.mark.parametrize("config", ["hash-io-cookie", "ip_hash-moving"])
async def test_nginx_without_a_working_sticky_key_breaks_polling_sessions(
    nginx: Nginx, tmp_path: Path, config: str
) -> None:
    """nginx, but the key it routes by does not follow the session.

    ``hash-io-cookie``: ``hash $cookie_io consistent``; cookie-keeping clients from 127.0.0.1.
    ``ip_hash-moving``: the deployed config; clients that change address and keep no cookies.
    """
    port = _free_port()
    async with _serve_backends() as backends:
        if config == "hash-io-cookie":
            site = _HASH_IO_COOKIE_CONFIG.format(port=port, backend1=backends[0], backend2=backends[1])
            moving: Sequence[str] = ()
        else:
            site = _deployed_config(port, backends)
            moving = _moving_addresses()
        async with _serve_nginx(nginx, tmp_path, site, port):
            tally = await _run_clients(
                f"http://127.0.0.1:{port}",
                lambda tally, number: _http_client(tally, cookies=not moving, moving=moving, number=number),
                sticky=False,
            )
    assert tally.unknown_sid > 0, tally.summary()
    assert len(tally.failures) > 0, tally.summary()
