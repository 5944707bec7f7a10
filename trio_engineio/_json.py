"""JSON for messages, shared by the server and the client, with the module the user chose (``json=``)."""

from __future__ import annotations

import json as stdlib_json
from typing import Any

__all__ = ["decode_message", "encode_json"]


def encode_json(json_module: Any, data: Any) -> str:
    """Serialise a ``dict``/``list`` message with ``json_module``.

    The standard library's module writes compact JSON with UTF-8 as is (the wire
    is UTF-8; ``\\uXXXX`` escapes would only make it longer). Any other module is
    called as ``dumps(data)``, since modules such as orjson take no keyword
    arguments; a ``bytes`` result is decoded as UTF-8.

    Example:
        >>> encode_json(stdlib_json, {"a": "é"})
        '{"a":"é"}'
    """
    if json_module is stdlib_json:
        return stdlib_json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    result = json_module.dumps(data)
    return result.decode("utf-8") if isinstance(result, bytes) else str(result)


def decode_message(json_module: Any, data: str | bytes) -> Any:
    """A received message as handlers get it: text that is a JSON object or array decoded.

    Any other text stays the exact string; binary stays ``bytes``.

    Example:
        >>> decode_message(stdlib_json, '{"n": 1}'), decode_message(stdlib_json, "null")
        ({'n': 1}, 'null')
    """
    if isinstance(data, str) and data[:1] in ("{", "["):
        try:
            return json_module.loads(data)
        except ValueError:
            return data
    return data
