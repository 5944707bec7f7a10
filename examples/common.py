"""What the example apps share: the official JavaScript engine.io-client bundle their pages load.

The bundle is the one trio_engineio ships as package data for its built-in demo
(``trio_engineio/_static/engine.io.min.js``, MIT, its license beside it), so the
pages need no network access and no npm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio_engineio

__all__ = ["CLIENT_BUNDLE", "page_static_files"]

CLIENT_BUNDLE = Path(trio_engineio.__file__).resolve().parent / "_static" / "engine.io.min.js"
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
