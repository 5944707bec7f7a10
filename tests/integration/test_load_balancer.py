"""Several server processes: sticky sessions behind nginx, and what breaks without them.

A session lives in one process, so every request of a polling session must reach the
process that created it (docs/server.rst, "Several workers"). Here two single-process
``hypercorn --worker-class trio`` backends serve ``lb_echo_app.py`` behind nginx with
``deploy/nginx/engineio-sticky.conf`` (the file the docs include; only its ports are
replaced); the processes start once for the module. Each sticky run is 200
:class:`~trio_engineio.AsyncClient` clients, 20 at a time,
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
  change source address on every polling request (127.0.N.1, two addresses that ip_hash sends to
  different backends), so the cookie alone keeps them sticky, and the handshakes spread
  over both backends.

Why not ``hash $cookie_io consistent``, with the server's ``cookie="io"``: the handshake
has no cookie yet, so nginx places it without the hash, and the session's later requests
go wherever the hash of its sid points, which is the creating backend only by chance.
``hash $arg_sid`` fails the same way. One negative control shows it.

The negative controls, which show what the docs warn about (each asserts that
"Session ID unknown" answers do happen, and that clients lose messages):

* ``hypercorn --worker-class trio -w 2``, no balancer: two processes accept on one shared
  socket, and the kernel gives each new connection (a client's second polling
  connection, its websocket) to either;
* nginx hashing the ``io`` cookie (50 clients);
* the deployed config with clients that change address and keep no cookies: ip_hash
  alone then splits them, which proves that the cookie run passes thanks to the cookie
  (50 clients).

nginx comes from the system; when it is missing, the ``nginx`` fixture installs it
once with apt-get (as root, or with passwordless sudo) and skips only if that fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import itertools
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path

import httpx
import pytest
import trio
from processes import free_port

from trio_engineio import AsyncClient, EngineIOError
from trio_engineio._transports import TrioWebSocketConnector

_REPO = Path(__file__).resolve().parents[2]
_DEPLOY_CONFIG = _REPO / "deploy" / "nginx" / "engineio-sticky.conf"
_APP = "tests.integration.lb_echo_app:app"
_READY = "lb_echo_app ready"
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
    """What nginx's access log says about some sessions."""

    statuses: dict[str, int]
    backends_by_session: dict[str, set[str]]

    @classmethod
    def read(cls, path: Path, sids: Collection[str]) -> AccessLog:
        """The lines of the sessions ``sids`` (an nginx serves several tests' clients)."""
        statuses: dict[str, int] = {}
        backends: dict[str, set[str]] = {}
        for line in path.read_text().splitlines():
            status, _method, sid, io, upstream = line.split(" ", 4)
            session = sid.removeprefix("sid=")
            if session == "-":  # a handshake: the io cookie it set names its session
                session = io.removeprefix("io=")
            if session in sids:
                statuses[status] = statuses.get(status, 0) + 1
                backends.setdefault(session, set()).add(upstream.removeprefix("up="))
        return cls(statuses, backends)

    def sessions_per_backend(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for backends in self.backends_by_session.values():
            for backend in backends:
                counts[backend] = counts.get(backend, 0) + 1
        return counts


async def _read_access_log(path: Path, sids: Collection[str]) -> AccessLog:
    """The log of ``sids``, once it has their websockets (5 s at most): nginx logs each when both ends have closed."""
    with trio.move_on_after(5):
        while AccessLog.read(path, sids).statuses.get("101", 0) < len(sids):  # noqa: ASYNC110
            await trio.sleep(0.02)  # nothing to wait on but nginx's file
    return AccessLog.read(path, sids)


# -- processes ----------------------------------------------------------------------


class _Process:
    """A server process of the tests, in a process group of its own, its output in a file."""

    def __init__(self, name: str, command: Sequence[str], output: Path, stop: signal.Signals) -> None:
        self.name = name
        self.output = output
        self._stop = stop
        with output.open("wb") as sink:
            self._popen = subprocess.Popen(
                list(command),
                cwd=_REPO,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # hypercorn's workers are its children: stop them with it
            )

    def wait_until(self, ready: Callable[[], bool], what: str) -> None:
        """Wait (30 s at most) for ``ready()``; fail at once if the process exits."""
        deadline = time.monotonic() + 30
        while not ready():
            if self._popen.poll() is not None:
                raise AssertionError(f"{self.name} exited ({self._popen.returncode}):\n{self.output.read_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: {what} did not happen in 30 s:\n{self.output.read_text()}")
            time.sleep(0.05)  # a process starting up: nothing to wait on but its output or port

    def printed(self, text: str, count: int = 1) -> bool:
        return self.output.read_text().count(text) >= count

    def stop(self) -> None:
        """Send the stop signal, wait 15 s at most, then kill what is left of the process group."""
        with contextlib.suppress(ProcessLookupError):
            self._popen.send_signal(self._stop)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._popen.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._popen.pid, signal.SIGKILL)
        self._popen.wait()


@contextlib.contextmanager
def _running(name: str, command: Sequence[str], output: Path, stop: signal.Signals) -> Iterator[_Process]:
    process = _Process(name, command, output, stop)
    try:
        yield process
    finally:
        process.stop()


def _start_hypercorn(stack: contextlib.ExitStack, directory: Path, workers: int) -> tuple[_Process, int]:
    """Start ``hypercorn --worker-class trio -w workers`` serving lb_echo_app on a free port."""
    port = free_port()
    command = [sys.executable, "-m", "hypercorn", "--worker-class", "trio", "--workers", str(workers)]
    command += ["--bind", f"127.0.0.1:{port}", "--graceful-timeout", "1", _APP]
    name = f"hypercorn -w {workers} on port {port}"
    return stack.enter_context(_running(name, command, directory / f"hypercorn-{port}.log", signal.SIGTERM)), port


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@dataclasses.dataclass(frozen=True)
class Balancer:
    """An nginx in front of the two backends."""

    url: str
    access_log: Path


def _start_nginx(stack: contextlib.ExitStack, nginx: Nginx, directory: Path, site: str, port: int) -> Balancer:
    """nginx serving ``site`` with everything in ``directory`` (config, pid, logs, temp files).

    One process (``master_process off``: no privilege drop, so it works as root and not).
    """
    (directory / "temp").mkdir(parents=True)
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
    process = stack.enter_context(_running(f"nginx on port {port}", command, directory / "output.log", signal.SIGTERM))
    process.wait_until(lambda: _accepts(port), f"listening on port {port}")
    return Balancer(f"http://127.0.0.1:{port}", directory / "access.log")


@dataclasses.dataclass(frozen=True)
class Deployment:
    """Two single-process hypercorn backends, behind two nginx configurations."""

    sticky: Balancer
    """``deploy/nginx/engineio-sticky.conf``."""
    hash_io_cookie: Balancer
    """``hash $cookie_io consistent``: the naive cookie config."""


@pytest.fixture(scope="module")
def deployment(nginx: Nginx, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """The processes, started once for the module (the backends take a second or two to start)."""
    directory = tmp_path_factory.mktemp("load_balancer")
    with contextlib.ExitStack() as stack:
        backends = [_start_hypercorn(stack, directory, 1) for _ in range(2)]  # both start at once
        for backend, _ in backends:
            backend.wait_until(functools.partial(backend.printed, _READY), "its lifespan startup")
        ports = [port for _, port in backends]
        port = free_port()
        sticky = _start_nginx(stack, nginx, directory / "sticky", _deployed_config(port, ports), port)
        port = free_port()
        site = _HASH_IO_COOKIE_CONFIG.format(port=port, backend1=ports[0], backend2=ports[1])
        hashing = _start_nginx(stack, nginx, directory / "hash-io-cookie", site, port)
        yield Deployment(sticky, hashing)


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[str]:
    """``hypercorn --worker-class trio -w 2`` serving lb_echo_app, both workers started; yield its URL."""
    with contextlib.ExitStack() as stack:
        workers, port = _start_hypercorn(stack, tmp_path, 2)
        workers.wait_until(functools.partial(workers.printed, _READY, 2), "the startup of both workers")
        yield f"http://127.0.0.1:{port}"


# -- clients ------------------------------------------------------------------------


@dataclasses.dataclass
class Tally:
    """What the clients of one run saw."""

    clients: int
    delivered: int = 0
    unknown_sid: int = 0
    sids: list[str] = dataclasses.field(default_factory=list)
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
            f"{self.clients - len(self.failures)}/{self.clients} clients got all their echoes, "
            f"{self.delivered}/{self.clients * _MESSAGES} echoes, {self.unknown_sid} 'Session ID unknown' answers"
        )


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every client of the module: building one costs 40-50 ms of CPU.

    httpx builds one per client, and AsyncClient's default websocket connector one per
    websocket (even for ws://): 200 clients would spend ~18 s on them.
    """
    return ssl.create_default_context()


class _MovingTransport(httpx.AsyncBaseTransport):
    """Sends each request from the next source address in turn: a client whose address keeps changing."""

    def __init__(self, addresses: Sequence[str], first: int) -> None:
        self._transports = [
            httpx.AsyncHTTPTransport(local_address=address, verify=_tls_context()) for address in addresses
        ]
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
    return httpx.AsyncClient(
        transport=transport, verify=_tls_context(), cookies=jar, event_hooks={"response": [tally.note_response]}
    )


async def _one_client(number: int, url: str, http: httpx.AsyncClient, tally: Tally, *, sticky: bool) -> None:
    connector = TrioWebSocketConnector(_tls_context(), {})  # the default one, but without a TLS context of its own
    async with http, AsyncClient(http_session=http, websocket_connector=connector) as client:
        try:
            with trio.fail_after(20):
                await client.connect(url, transports=["polling", "websocket"])
                assert client.sid is not None
                tally.sids.append(client.sid)
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


async def _run_clients(
    url: str, make_http: Callable[[Tally, int], httpx.AsyncClient], *, sticky: bool, clients: int = _CLIENTS
) -> Tally:
    """``clients`` clients, 20 at a time; ``sticky`` ones also wait for their upgrade halfway."""
    tally = Tally(clients)
    limiter = trio.CapacityLimiter(_CONCURRENT)

    async def client(number: int) -> None:
        async with limiter:
            await _one_client(number, url, make_http(tally, number), tally, sticky=sticky)

    async with trio.open_nursery() as nursery:
        for number in range(clients):
            nursery.start_soon(client, number)
    print(f"\n{tally.summary()}")
    return tally


def _assert_sticky(tally: Tally, log: AccessLog) -> None:
    assert tally.failures == [], f"{tally.summary()}; first failures: {tally.failures[:5]}"
    assert tally.delivered == _CLIENTS * _MESSAGES
    assert tally.unknown_sid == 0
    print(f"nginx access log: statuses {log.statuses}, sessions per backend {log.sessions_per_backend()}")
    assert set(log.statuses) <= {"101", "200"}, log.statuses  # no 400 for polling nor for an upgrade
    assert log.statuses["101"] == _CLIENTS  # every client upgraded
    assert len(log.backends_by_session) == _CLIENTS
    split = {sid: backends for sid, backends in log.backends_by_session.items() if len(backends) != 1}
    assert split == {}, "sessions served by more than one backend"


def _assert_broken(tally: Tally) -> None:
    assert tally.unknown_sid > 0, tally.summary()
    assert len(tally.failures) > 0, tally.summary()
    # A session that failed may have had a POST under way; httpx leaves its body's async
    # generator unclosed, and Trio warns when it is collected: collect it under the filter.
    gc.collect()


# httpx's request body generator, left by a POST that was cancelled or failed (_assert_broken).
_UNCLOSED_BODY = "ignore:Async generator 'httpx._content.ByteStream.__aiter__' was garbage collected:ResourceWarning"


# -- the tests ----------------------------------------------------------------------


async def test_sticky_by_client_address(deployment: Deployment) -> None:
    """Clients that keep no cookies stick by address (ip_hash): every session holds, on one backend."""
    balancer = deployment.sticky
    tally = await _run_clients(balancer.url, lambda tally, number: _http_client(tally, cookies=False), sticky=True)
    log = await _read_access_log(balancer.access_log, tally.sids)
    _assert_sticky(tally, log)
    assert len(log.sessions_per_backend()) == 1  # every test client is 127.0.0.1: one address, one backend


async def test_sticky_by_route_cookie_when_the_address_changes(deployment: Deployment) -> None:
    """Clients that keep cookies stick by nginx's route cookie, whatever address each request comes from.

    Their polling requests alternate between two source addresses that ip_hash sends to
    different backends (their websocket comes from 127.0.0.1): without the cookie they break
    (``test_nginx_without_a_working_sticky_key_breaks_polling_sessions[ip_hash-moving]``).
    Handshakes come from either address, so sessions spread over both backends.
    """
    balancer = deployment.sticky
    moving = _moving_addresses()
    tally = await _run_clients(
        balancer.url,
        lambda tally, number: _http_client(tally, cookies=True, moving=moving, number=number),
        sticky=True,
    )
    log = await _read_access_log(balancer.access_log, tally.sids)
    _assert_sticky(tally, log)
    assert len(log.sessions_per_backend()) == 2


@pytest.mark.filterwarnings(_UNCLOSED_BODY)
async def test_hypercorn_workers_without_a_balancer_break_polling_sessions(two_workers: str) -> None:
    """``hypercorn --worker-class trio -w 2``: two workers accept on one shared socket (docs/server.rst warns).

    The kernel gives each new connection to either worker: a client's second polling
    connection (a POST while its GET waits) or its websocket often reaches the worker
    that does not have its session.
    """
    tally = await _run_clients(two_workers, lambda tally, number: _http_client(tally, cookies=True), sticky=False)
    _assert_broken(tally)


@pytest.mark.filterwarnings(_UNCLOSED_BODY)
@pytest.mark.parametrize("config", ["hash-io-cookie", "ip_hash-moving"])
async def test_nginx_without_a_working_sticky_key_breaks_polling_sessions(deployment: Deployment, config: str) -> None:
    """nginx, but the key it routes by does not follow the session (50 clients are plenty).

    ``hash-io-cookie``: ``hash $cookie_io consistent``; cookie-keeping clients from 127.0.0.1.
    ``ip_hash-moving``: the deployed config; clients that change address and keep no cookies.
    """
    moving: Sequence[str] = ()
    if config == "hash-io-cookie":
        balancer = deployment.hash_io_cookie
    else:
        balancer, moving = deployment.sticky, _moving_addresses()
    tally = await _run_clients(
        balancer.url,
        lambda tally, number: _http_client(tally, cookies=not moving, moving=moving, number=number),
        sticky=False,
        clients=50,
    )
    _assert_broken(tally)
