"""What the example apps share: the official JavaScript engine.io-client bundle their pages load.

The bundle comes from the npm package that ``make install`` puts in
``tests/js/node_modules`` (the same one the interop tests run), so the pages
need no network access.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["CLIENT_BUNDLE", "page_static_files"]

REPOSITORY = Path(__file__).resolve().parent.parent
CLIENT_BUNDLE = REPOSITORY / "tests" / "js" / "node_modules" / "engine.io-client" / "dist" / "engine.io.min.js"
"""``engine.io.min.js``: defines the global function ``eio``: ``eio(url, options)`` opens a socket."""


def page_static_files(page: Path) -> dict[str, Any]:
    """``static_files`` for :class:`trio_engineio.ASGIApp`: ``page`` at ``/``, the client bundle beside it.

    Args:
        page: the HTML file served at ``/``.

    Returns:
        The mapping, serving ``/`` and ``/engine.io.min.js``.
    """
    return {
        "/": {"filename": str(page), "content_type": "text/html; charset=utf-8"},
        "/engine.io.min.js": {"filename": str(CLIENT_BUNDLE), "content_type": "application/javascript"},
    }
