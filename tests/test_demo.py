"""The built-in demo (``trio-engineio serve`` with no app) and the example pages, in memory.

The JavaScript client is package data (``trio_engineio/_static``), the official
bundle with its license beside it, so the pages need no CDN and no npm; the pages
declare their icon, so that browsers do not ask for a ``/favicon.ico`` that
answers 404. ``tests/browser/test_browser_offline.py`` opens them in Chromium
with the network unreachable; ``tests/integration/test_wheel.py`` checks that the
wheel carries the bundle.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trio.testing

import trio_engineio
from examples.common import CLIENT_BUNDLE
from trio_engineio import _demo
from trio_engineio.testing import open_http_client, open_lifespan

STATIC = Path(trio_engineio.__file__).resolve().parent / "_static"
REPOSITORY = Path(__file__).resolve().parent.parent
NPM_BUNDLE = REPOSITORY / "tests" / "js" / "node_modules" / "engine.io-client" / "dist" / "engine.io.min.js"
EXAMPLE_PAGES = sorted((REPOSITORY / "examples").glob("*/index.html"))


def test_the_packaged_bundle_is_the_official_engine_io_client_with_its_license() -> None:
    bundle = (STATIC / "engine.io.min.js").read_bytes()
    assert bundle.startswith(f"/*!\n * Engine.IO v{_demo.CLIENT_VERSION}\n".encode())
    assert b"Released under the MIT License." in bundle[:200]
    notice = (STATIC / "LICENSE").read_text()
    assert f"engine.io-client {_demo.CLIENT_VERSION}" in notice
    assert notice.count("Permission is hereby granted, free of charge") == 2  # engine.io-client, component-emitter
    if not NPM_BUNDLE.is_file():
        pytest.skip("tests/js/node_modules is not installed (make install): cannot compare with the npm package")
    assert bundle == NPM_BUNDLE.read_bytes(), "update trio_engineio/_static/ with the npm package of tests/js"


async def test_the_demo_serves_its_page_and_the_packaged_bundle(autojump_clock: trio.testing.MockClock) -> None:
    async with open_lifespan(_demo.app), open_http_client(_demo.app) as http:
        page = await http.get("/")
        bundle = await http.get("/engine.io.min.js")
        favicon = await http.get("/favicon.ico")
    assert page.status_code == 200
    assert '<script src="/engine.io.min.js"></script>' in page.text
    assert re.findall(r"(?:src|href)=\"([^\"]*)\"", page.text) == ["data:,", "/engine.io.min.js"]  # no CDN
    assert '<link rel="icon" href="data:,">' in page.text
    assert bundle.status_code == 200
    assert bundle.headers["content-type"] == "application/javascript"
    assert bundle.content == (STATIC / "engine.io.min.js").read_bytes()
    assert favicon.status_code == 404  # browsers do not ask: the page declares its icon


@pytest.mark.parametrize("page", EXAMPLE_PAGES, ids=lambda page: page.parent.name)
def test_the_example_pages_declare_their_icon(page: Path) -> None:
    assert '<link rel="icon" href="data:,">' in page.read_text()


def test_the_examples_serve_the_packaged_bundle() -> None:
    """``make run`` needs no npm: the examples serve the bundle of the package."""
    assert CLIENT_BUNDLE == STATIC / "engine.io.min.js"
    assert CLIENT_BUNDLE.is_file()
