import pytest
from echo_app import create_app

from trio_engineio import ASGIApp

# Optional: pytest loads the plugin by itself, unless PYTEST_DISABLE_PLUGIN_AUTOLOAD is set.
pytest_plugins = ["trio_engineio.pytest_plugin"]


@pytest.fixture
def asgi_app() -> ASGIApp:
    return create_app()
