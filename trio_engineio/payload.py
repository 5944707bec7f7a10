"""python-engineio's ``engineio.payload`` module: several packets in one polling body.

:class:`Payload` has python-engineio's constructor, ``encode()`` and ``decode()``;
the encoding is the sans-IO core's (:mod:`trio_engineio.protocol.payload`), and
the packets are :class:`trio_engineio.packet.Packet` objects. This module does no
I/O and imports no Trio.

Example:
    >>> from trio_engineio import packet, payload
    >>> payload.Payload([packet.Packet(packet.MESSAGE, "hi"), packet.Packet(packet.PING)]).encode()
    '4hi\\x1e2'
    >>> [p.data for p in payload.Payload(encoded_payload="4a\\x1e4b").packets]
    ['a', 'b']
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from trio_engineio import packet
from trio_engineio.exceptions import EngineIOError
from trio_engineio.protocol.payload import RECORD_SEPARATOR, decode_jsonp_body, encode_jsonp

__all__ = ["Payload"]


class Payload:
    """Packets to send or received in one polling body, as python-engineio's ``engineio.payload.Payload``.

    Args:
        packets: the packets (:class:`~trio_engineio.packet.Packet` objects).
        encoded_payload: decode this instead (see :meth:`decode`).

    Attributes:
        packets: the packets, in order.

    Raises:
        ValueError: an ``encoded_payload`` that cannot be decoded.

    Example:
        >>> Payload(encoded_payload="2\\x1e4hello").packets[1].data
        'hello'
    """

    max_decode_packets = 16
    """The most packets :meth:`decode` accepts in one body (python-engineio's default).
    The server does not use this class: its own limit is ``max_packets_per_post``."""

    def __init__(
        self, packets: Iterable[packet.Packet] | None = None, encoded_payload: str | bytes | None = None
    ) -> None:
        self.packets: list[Any] = list(packets or [])
        if encoded_payload is not None:
            self.decode(encoded_payload)

    def encode(self, jsonp_index: int | str | None = None) -> str:
        """Encode the packets as one polling body.

        Args:
            jsonp_index: the client's JSONP index (its ``j`` parameter), to wrap the
                body in a ``___eio[<index>]("...");`` call.

        Returns:
            The packets joined with ``\\x1e``, binary ones as ``b`` and base64.

        Raises:
            TypeError, ValueError: a packet that cannot be encoded (see
                :meth:`trio_engineio.packet.Packet.encode`).

        Example:
            >>> Payload([packet.Packet(packet.MESSAGE, b"\\x01")]).encode(jsonp_index=0)
            '___eio[0]("bAQ==");'
        """
        encoded = RECORD_SEPARATOR.join(_text(p.encode(b64=True)) for p in self.packets)
        if jsonp_index is not None:
            return encode_jsonp(encoded, str(jsonp_index))
        return encoded

    def decode(self, encoded_payload: str | bytes) -> None:
        """Set :attr:`packets` from a polling body (a JSONP ``d=...`` form body too).

        Args:
            encoded_payload: the body; an empty body holds no packets.

        Raises:
            ValueError: more than :attr:`max_decode_packets` packets, or one that
                cannot be decoded.

        Example:
            >>> len(Payload(encoded_payload="d=4a%1E4b").packets)
            2
        """
        self.packets = []
        text = encoded_payload.decode("utf-8") if isinstance(encoded_payload, bytes) else encoded_payload
        if not text:
            return
        if text.startswith("d="):
            try:
                text = decode_jsonp_body(text.encode("utf-8"))
            except EngineIOError as exc:
                raise ValueError(str(exc)) from exc
        parts = text.split(RECORD_SEPARATOR, self.max_decode_packets)
        if len(parts) > self.max_decode_packets:
            raise ValueError("Too many packets in payload")
        self.packets = [packet.Packet(encoded_packet=part) for part in parts]


def _text(encoded: str | bytes) -> str:
    assert isinstance(encoded, str)  # b64=True encodes binary as text
    return encoded
