"""Sphinx configuration for trio_engineio's documentation."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

project = "trio_engineio"
author = "trio_engineio developers"
copyright = "2026, trio_engineio developers"  # noqa: A001
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.intersphinx", "sphinx.ext.viewcode"]
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
exclude_patterns = ["_build"]
html_theme = "alabaster"
suppress_warnings = ["ref.python"]


def _write_transition_table() -> None:
    """Draw the session state machine from the code's own table (docs/design.rst includes it)."""
    from trio_engineio.protocol.server_session import TRANSITIONS

    rows = [("State", "Trigger", "Next state")]
    rows += [(state.value, trigger.value, target.value) for (state, trigger), target in TRANSITIONS.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    rule = "  ".join("=" * width for width in widths)
    lines = [rule, "  ".join(cell.ljust(width) for cell, width in zip(rows[0], widths, strict=True)), rule]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows[1:]]
    lines.append(rule)
    target = Path(__file__).resolve().parent / "_generated"
    target.mkdir(exist_ok=True)
    (target / "transitions.rst").write_text("\n".join(lines) + "\n")


_write_transition_table()
exclude_patterns.append("_generated")
