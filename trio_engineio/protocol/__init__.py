"""The sans-IO Engine.IO v4 core: packets, payloads, handshakes and session state.

Nothing here does I/O, imports trio or reads a clock; time comes in as ``now``.
"""

from trio_engineio.protocol.client_session import (
    CLIENT_TRANSITIONS,
    ClientEvent,
    ClientSession,
    ClientState,
    ClientTrigger,
    Connected,
    HandshakeInfo,
    UpgradeReady,
    parse_open_packet,
)
from trio_engineio.protocol.handshake import (
    EngineIORequest,
    ErrorCode,
    HandshakeError,
    Transport,
    error_body,
    open_packet,
    parse_query,
    parse_request,
)
from trio_engineio.protocol.packet import Packet, PacketType, check_sendable, decode_frame, encode_frame
from trio_engineio.protocol.payload import (
    decode_jsonp_body,
    decode_payload,
    decode_payload_bytes,
    encode_jsonp,
    encode_payload,
    encode_payload_packet,
    split_batch,
)
from trio_engineio.protocol.server_session import (
    Event,
    MessageReceived,
    PollDecision,
    ServerSession,
    SessionClosed,
    SessionState,
    UpgradeAbandoned,
    UpgradeCompleted,
    UpgradeProbed,
)

__all__ = [
    "CLIENT_TRANSITIONS",
    "ClientEvent",
    "ClientSession",
    "ClientState",
    "ClientTrigger",
    "Connected",
    "HandshakeInfo",
    "UpgradeReady",
    "parse_open_packet",
    "EngineIORequest",
    "ErrorCode",
    "Event",
    "HandshakeError",
    "MessageReceived",
    "Packet",
    "PacketType",
    "PollDecision",
    "ServerSession",
    "SessionClosed",
    "SessionState",
    "Transport",
    "UpgradeAbandoned",
    "UpgradeCompleted",
    "UpgradeProbed",
    "check_sendable",
    "decode_frame",
    "decode_jsonp_body",
    "decode_payload",
    "decode_payload_bytes",
    "encode_frame",
    "encode_jsonp",
    "encode_payload",
    "encode_payload_packet",
    "error_body",
    "open_packet",
    "parse_query",
    "parse_request",
    "split_batch",
]
