"""docs/socketio.rst shows only files of docs/examples_socketio/ (literalinclude); run them as a suite."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLES = DOCS / "examples_socketio"


def test_every_example_of_the_socketio_page_runs(pytester: pytest.Pytester) -> None:
    page = (DOCS / "socketio.rst").read_text()
    for path in sorted(EXAMPLES.iterdir()):
        if path.is_file():
            shutil.copy(path, pytester.path / path.name)
            if path.suffix == ".py":
                assert f"examples_socketio/{path.name}" in page, f"{path.name} is not shown in docs/socketio.rst"
    result = pytester.runpytest("-p", "trio_engineio.pytest_plugin")
    result.assert_outcomes(passed=2)
