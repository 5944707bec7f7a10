"""Sphinx configuration for trio_engineio's documentation."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

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


def _table(transitions: dict[tuple[Any, Any], Any]) -> str:
    rows = [("State", "Trigger", "Next state")]
    rows += [(state.value, trigger.value, target.value) for (state, trigger), target in transitions.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    rule = "  ".join("=" * width for width in widths)
    lines = [rule, "  ".join(cell.ljust(width) for cell, width in zip(rows[0], widths, strict=True)), rule]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows[1:]]
    lines.append(rule)
    return "\n".join(lines) + "\n"


def _write_transition_tables() -> None:
    """Draw the session state machines from the code's own tables (docs/design.rst includes them)."""
    from trio_engineio.protocol.client_session import CLIENT_TRANSITIONS
    from trio_engineio.protocol.server_session import TRANSITIONS

    target = Path(__file__).resolve().parent / "_generated"
    target.mkdir(exist_ok=True)
    (target / "transitions.rst").write_text(_table(TRANSITIONS))
    (target / "client_transitions.rst").write_text(_table(CLIENT_TRANSITIONS))


_write_transition_tables()
exclude_patterns.append("_generated")


# The package re-exports names at its top level (trio_engineio.EngineIOError) and in
# trio_engineio.protocol (trio_engineio.protocol.Packet); the reference documents each where it
# is defined. Let references written with the re-exported names resolve to those entries.
_REEXPORTS = {
    "trio_engineio.": ("trio_engineio.exceptions.",),
    "trio_engineio.protocol.": tuple(
        f"trio_engineio.protocol.{module}."
        for module in ("packet", "payload", "handshake", "server_session", "client_session")
    ),
}


def _resolve_reexport(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    if node.get("refdomain") != "py":
        return None
    target: str = node.get("reftarget", "")
    domain = env.get_domain("py")
    for prefix, homes in _REEXPORTS.items():
        name = target[len(prefix) :]
        if not target.startswith(prefix) or "." in name:
            continue
        for home in homes:
            if home + name in domain.objects:
                return domain.resolve_xref(
                    env, node["refdoc"], app.builder, node["reftype"], home + name, node, contnode
                )
    return None


# napoleon types an "Attributes:" entry from the class's annotations. Those written in __init__
# (``self.sid: str = ...``) reach them only once autodoc has read the class's module, which it does
# for the module an automodule names, not for the private modules a package re-exports from
# (trio_engineio.testing). Read them from the class's own module before napoleon runs.
def _add_instance_annotations(app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    if what not in ("class", "exception") or not isinstance(obj, type):
        return
    from sphinx.pycode import ModuleAnalyzer

    analyzer = ModuleAnalyzer.for_module(obj.__module__)
    analyzer.analyze()
    annotations = dict(inspect.get_annotations(obj))
    for (classname, attribute), annotation in analyzer.annotations.items():
        if classname == obj.__qualname__:
            annotations.setdefault(attribute, annotation)
    obj.__annotations__ = annotations


def setup(app: Any) -> None:
    app.connect("missing-reference", _resolve_reexport)
    app.connect("autodoc-process-docstring", _add_instance_annotations, priority=400)
