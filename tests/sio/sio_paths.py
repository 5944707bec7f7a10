"""Put tests/integration on ``sys.path``: the Socket.IO tests share its process helpers.

Imported first by the modules that need ``nodejs`` or ``processes`` (a conftest.py here would
share its module name with tests/integration's).
"""

from __future__ import annotations

import sys
from pathlib import Path

INTEGRATION = str(Path(__file__).resolve().parent.parent / "integration")
if INTEGRATION not in sys.path:
    sys.path.insert(0, INTEGRATION)
