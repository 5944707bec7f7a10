"""The package as users get it: a wheel built from this checkout, installed into a fresh virtual environment.

Offline: hatchling (a ``dev`` requirement) builds the wheel without build
isolation, and the fresh environment gets the wheel alone (``--no-index
--no-deps``). Its dependencies (trio, hypercorn, pytest, pytest-trio, ...) come
from this test's own environment through a ``.pth`` file, which adds that
``site-packages`` to ``sys.path`` without running its ``.pth`` files: the
editable install of this checkout stays out, and the wheel's copy of
``trio_engineio`` is the one imported (each test checks where it came from).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

import pytest

import trio_engineio

REPOSITORY = Path(__file__).resolve().parents[2]
DISTRIBUTION = "engineio-trio"
PIP_WHEEL = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "--quiet"]


class FreshVenv:
    """A virtual environment with the wheel installed; ``run`` runs a command there, away from this checkout."""

    def __init__(self, root: Path, wheel: Path) -> None:
        self.root = root
        self.wheel = wheel
        self.python = root / "venv" / "bin" / "python"
        self.bin = root / "venv" / "bin"
        self.work = root / "work"
        self.work.mkdir()
        self.environment = {
            name: value
            for name, value in os.environ.items()
            if name not in {"PYTHONPATH", "PYTEST_ADDOPTS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_PLUGINS"}
        }

    def run(self, *command: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(part) for part in command],
            cwd=cwd or self.work,
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _check(completed: subprocess.CompletedProcess[str]) -> str:
    assert completed.returncode == 0, f"{completed.args} failed:\n{completed.stdout}\n{completed.stderr}"
    return completed.stdout


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> FreshVenv:
    if importlib.util.find_spec("hatchling") is None:
        pytest.skip("hatchling builds the wheel offline and is missing: pip install -e '.[dev]' -c constraints.txt")
    root = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [*PIP_WHEEL, "--wheel-dir", str(root / "dist"), str(REPOSITORY)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, f"pip wheel failed:\n{build.stdout}\n{build.stderr}"
    [wheel] = (root / "dist").glob("*.whl")
    venv = FreshVenv(root, wheel)
    _check(venv.run(sys.executable, "-m", "venv", "--without-pip", root / "venv"))
    _check(venv.run(sys.executable, "-m", "pip", "--python", venv.python, "install", "--no-index", "--no-deps", wheel))
    purelib = _check(venv.run(venv.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"))
    ours = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    (Path(purelib.strip()) / "_test_dependencies.pth").write_text("".join(f"{path}\n" for path in ours))
    return venv


def test_the_wheel_is_named_and_carries_the_bundle_the_plugin_and_the_command(fresh_venv: FreshVenv) -> None:
    assert fresh_venv.wheel.name == f"engineio_trio-{trio_engineio.__version__}-py3-none-any.whl"
    with zipfile.ZipFile(fresh_venv.wheel) as wheel:
        names = set(wheel.namelist())
        info = f"engineio_trio-{trio_engineio.__version__}.dist-info"
        metadata = wheel.read(f"{info}/METADATA").decode()
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    for name in [
        "py.typed",
        "pytest_plugin.py",
        "_static/engine.io.min.js",
        "_static/LICENSE",
        "protocol/packet.py",
        "testing/__init__.py",
        "testing/_asgi.py",
    ]:
        assert f"trio_engineio/{name}" in names
    assert f"Name: {DISTRIBUTION}\n" in metadata
    assert "Provides-Extra: testing\n" in metadata
    assert "Requires-Dist: pytest-trio>=0.8; extra == 'testing'\n" in metadata
    assert "[pytest11]\ntrio_engineio.pytest_plugin = trio_engineio.pytest_plugin\n" in entry_points
    assert "trio-engineio = trio_engineio.__main__:main\n" in entry_points


PROBE = """
import json
from importlib import metadata, resources

import trio_engineio

[plugin] = [ep for ep in metadata.entry_points(group="pytest11") if ep.value == "trio_engineio.pytest_plugin"]
print(json.dumps({
    "package": trio_engineio.__file__,
    "distribution": metadata.distribution("engineio-trio").metadata["Name"],
    "version": metadata.version("engineio-trio"),
    "server": trio_engineio.AsyncServer.__name__,
    "plugin": [plugin.name, plugin.dist.metadata["Name"], str(plugin.dist.locate_file("trio_engineio"))],
    "plugin_module": plugin.load().__name__,
    "bundle": (resources.files("trio_engineio") / "_static" / "engine.io.min.js").read_bytes()[:23].decode(),
}))
"""


def test_the_installed_package_imports_and_registers_its_pytest_plugin(fresh_venv: FreshVenv) -> None:
    probe: dict[str, Any] = json.loads(_check(fresh_venv.run(fresh_venv.python, "-c", PROBE)))
    package = fresh_venv.root / "venv" / "lib"
    assert Path(probe["package"]).is_relative_to(package), probe  # the wheel's copy, not this checkout
    assert probe["distribution"] == DISTRIBUTION
    assert probe["version"] == trio_engineio.__version__
    assert probe["server"] == "AsyncServer"
    name, distribution, location = probe["plugin"]
    assert (name, distribution) == ("trio_engineio.pytest_plugin", DISTRIBUTION)
    assert Path(location).is_relative_to(package)
    assert probe["plugin_module"] == "trio_engineio.pytest_plugin"
    assert probe["bundle"] == "/*!\n * Engine.IO v6.6.8"


def test_the_command_names_the_distribution(fresh_venv: FreshVenv) -> None:
    version = _check(fresh_venv.run(fresh_venv.bin / "trio-engineio", "--version"))
    assert version == f"trio-engineio ({DISTRIBUTION} {trio_engineio.__version__})\n"


def test_pytest_in_the_fresh_venv_has_the_fixtures_without_a_conftest_line(fresh_venv: FreshVenv) -> None:
    suite = fresh_venv.work / "suite"
    suite.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\ntrio_mode = true\nfilterwarnings = error\n")
    (suite / "conftest.py").write_text(
        "import pytest\nimport trio_engineio\n\n\n"
        "@pytest.fixture\ndef asgi_app():\n    return trio_engineio.ASGIApp(trio_engineio.AsyncServer())\n"
    )
    (suite / "test_handshake.py").write_text(
        "import trio_engineio\n\n\n"
        "async def test_handshake(engineio_http):\n"
        "    assert trio_engineio.__file__.startswith(" + repr(str(fresh_venv.root)) + ")\n"
        '    response = await engineio_http.get("/engine.io/", params={"EIO": "4", "transport": "polling"})\n'
        "    assert response.status_code == 200\n"
    )
    pytest_command: list[str | Path] = [fresh_venv.python, "-m", "pytest", "-p", "no:cacheprovider"]
    fixtures = _check(fresh_venv.run(*pytest_command, "--fixtures", cwd=suite))
    assert "engineio_url" in fixtures
    assert "engineio_client" in fixtures
    result = fresh_venv.run(*pytest_command, "-q", cwd=suite)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
