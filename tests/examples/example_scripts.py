"""Run an example script the way its docstring says, as a subprocess of this Python, with a deadline."""

from __future__ import annotations

import sys
from pathlib import Path

import trio

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"


async def run_example_script(relative_path: str, *args: str, deadline: float = 30) -> str:
    """Run ``python examples/<relative_path> args...``; return its stdout.

    Raises:
        AssertionError: it exited with an error (its output is in the message).
        trio.TooSlowError: it ran longer than ``deadline`` seconds (it is killed).
    """
    with trio.fail_after(deadline):
        completed = await trio.run_process(
            [sys.executable, str(EXAMPLES / relative_path), *args],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    stdout = completed.stdout.decode(errors="replace")
    stderr = completed.stderr.decode(errors="replace")
    assert completed.returncode == 0, f"{relative_path} exited with {completed.returncode}\n{stdout}\n{stderr}"
    return stdout
