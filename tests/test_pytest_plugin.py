"""The pytest plugin as an installed package delivers it: its ``pytest11`` entry point, and without pytest-trio.

Each user suite runs in process under ``pytester``. ``-p no:trio`` blocks
pytest-trio's entry point (named ``trio``), which is what a user who did not
install it sees. The suites with the documented ``pytest_plugins`` line are in
``tests/test_testing.py``; ``tests/integration/test_wheel.py`` checks the entry
point from a wheel installed in a fresh virtual environment.
"""

from __future__ import annotations

from importlib import metadata

import pytest

import trio_engineio.pytest_plugin

pytest_plugins = ["pytester"]

INSTALL_HINT = "pip install 'engineio-trio[testing]'"

APP_CONFTEST = """
import pytest
import trio_engineio


@pytest.fixture
def asgi_app():
    eio = trio_engineio.AsyncServer()

    @eio.on("message")
    async def message(sid, data):
        await eio.send(sid, data)

    return trio_engineio.ASGIApp(eio)
"""

HTTP_TEST = """
async def test_http(engineio_http):
    response = await engineio_http.get("/engine.io/", params={"EIO": "4", "transport": "polling"})
    assert response.status_code == 200


def test_unrelated():
    assert True
"""


def test_the_plugin_is_registered_through_its_pytest11_entry_point() -> None:
    """As anyio's and pytest-asyncio's are; named after its module, so that the documented line finds it loaded."""
    [entry_point] = [ep for ep in metadata.entry_points(group="pytest11") if ep.value == "trio_engineio.pytest_plugin"]
    assert entry_point.name == "trio_engineio.pytest_plugin"
    assert entry_point.dist is not None
    assert entry_point.dist.name == "engineio-trio"
    assert entry_point.load() is trio_engineio.pytest_plugin


def test_the_fixtures_exist_without_a_conftest_line(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ntrio_mode = true\nfilterwarnings = error\naddopts = -p no:cacheprovider\n")
    pytester.makeconftest(APP_CONFTEST)  # no pytest_plugins line
    pytester.makepyfile(HTTP_TEST)
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)


def test_trio_mode_without_pytest_trio_is_a_usage_error_that_says_what_to_install(pytester: pytest.Pytester) -> None:
    """Following docs/testing.rst without pytest-trio used to end in ``INTERNALERROR … Unknown config option``."""
    pytester.makeini("[pytest]\ntrio_mode = true\nfilterwarnings = error\naddopts = -p no:cacheprovider\n")
    pytester.makeconftest(APP_CONFTEST + '\npytest_plugins = ["trio_engineio.pytest_plugin"]\n')
    pytester.makepyfile(HTTP_TEST)
    result = pytester.runpytest("-p", "no:trio")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in output
    assert "trio_mode is set in" in output
    assert "pytest-trio" in output
    assert INSTALL_HINT in output


def test_a_fixture_without_pytest_trio_fails_the_test_with_the_install_line(pytester: pytest.Pytester) -> None:
    """Without ``trio_mode`` the suite runs: tests that do not use the fixtures pass, the others say what to do."""
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")
    pytester.makeconftest(APP_CONFTEST)
    pytester.makepyfile(HTTP_TEST)
    result = pytester.runpytest("-p", "no:trio")
    result.assert_outcomes(passed=1, errors=1)
    [line] = [line for line in result.stdout.lines if line.startswith("engineio_http: ")]
    assert "need pytest-trio" in line
    assert INSTALL_HINT in line
