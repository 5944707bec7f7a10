"""JSON for messages, shared by the server and the client, with the module the user chose (``json=``)."""

from __future__ import annotations

import json as stdlib_json
from typing import Any

from trio_engineio.protocol import Packet, PacketType, check_sendable

__all__ = ["decode_message", "encode_json", "message_payload"]


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


def message_payload(json_module: Any, data: object) -> str | bytes:
    """What ``send(data)`` puts in a MESSAGE packet: the one rule of the server and the client.

    ``str`` goes as text, bytes-like (``bytes``, ``bytearray``, ``memoryview``) as binary, and
    anything else as JSON text written by ``json_module`` (a ``dict`` or ``list``, as a rule).

    Raises:
        TypeError: ``data`` cannot be written as JSON.
        LocalProtocolError: text with a lone surrogate, which has no UTF-8 encoding (refused
            at the call, not later by the task that writes it).

    Example:
        >>> message_payload(stdlib_json, {"a": [1]}), message_payload(stdlib_json, bytearray(b"x"))
        ('{"a":[1]}', b'x')
    """
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    text = data if isinstance(data, str) else encode_json(json_module, data)
    if not text.isascii():
        check_sendable(Packet(PacketType.MESSAGE, text))
    return text
