"""The examples in the package's docstrings run, and give what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import trio_engineio

# Not the pytest plugin: importing it here would stop pytest from rewriting its asserts when a
# pytester run enables it (tests/test_testing.py does); it has no >>> examples anyway.
MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(trio_engineio.__path__, prefix="trio_engineio.")
    if info.name != "trio_engineio.pytest_plugin"
)


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name: str) -> None:
    """Every ``>>>`` example of the module passes (a module with none passes trivially)."""
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {module_name}"


def test_the_protocol_core_documents_itself_with_examples() -> None:
    """The sans-IO core is the part users read first: its modules carry runnable examples."""
    attempted = sum(
        doctest.testmod(importlib.import_module(f"trio_engineio.protocol.{name}")).attempted
        for name in ("packet", "payload", "handshake", "server_session", "client_session")
    )
    assert attempted >= 20
