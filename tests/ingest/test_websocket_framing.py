"""``BufferedWebSocket.recv_messages``: our fast frame slicer plus websocket-client's
reader for everything else, over a real socket pair, with every byte split the
network might produce."""

from __future__ import annotations

import json
import random
import socket
import struct

import pytest
import websocket

from ingest.binance import BufferedWebSocket
from tests.recordings import aggtrade_frames


def _frame(payload: bytes, opcode: int = 0x1, fin: bool = True) -> bytes:
    """Server-to-client frame (unmasked)."""
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        return bytes([b0, n]) + payload
    if n < 1 << 16:
        return bytes([b0, 126]) + struct.pack("!H", n) + payload
    return bytes([b0, 127]) + struct.pack("!Q", n) + payload


def _read_client_frame(sock: socket.socket) -> tuple[int, bytes]:
    """One masked client frame (pong / close) read back on the server side."""

    def exact(k: int) -> bytes:
        out = b""
        while len(out) < k:
            out += sock.recv(k - len(out))
        return out

    b0, b1 = exact(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", exact(2))[0]
    mask = exact(4)
    data = bytes(c ^ mask[i % 4] for i, c in enumerate(exact(n)))
    return b0 & 0x0F, data


@pytest.fixture
def pair():
    server, client = socket.socketpair()
    ws = BufferedWebSocket(skip_utf8_validation=True, enable_multithread=True)
    ws.sock = client
    ws.connected = True
    client.settimeout(0.02)  # a timeout here means "no more bytes yet"
    yield server, ws
    server.close()
    client.close()


def _collect(ws: BufferedWebSocket, count: int) -> list[bytes]:
    got: list[bytes] = []
    while len(got) < count:
        got.extend(m.encode() if isinstance(m, str) else m for m in ws.recv_messages())
    return got


@pytest.mark.parametrize("seed", range(6))
def test_real_frames_survive_any_byte_split(pair, data_dir, seed):
    server, ws = pair
    payloads = [json.dumps(f, separators=(",", ":")).encode() for f in aggtrade_frames(data_dir, "BTCUSDT")[:300]]
    payloads += [b"x" * 126, b"y" * 65535, b"z" * 70_000, b""]  # every length encoding, and empty
    wire = b"".join(_frame(p) for p in payloads)
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(wire)), 40))
    got: list[bytes] = []
    for lo, hi in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        server.sendall(wire[lo:hi])
        while True:  # read whatever is complete so far; a timeout means "need more bytes"
            try:
                got.extend(m.encode() if isinstance(m, str) else m for m in ws.recv_messages())
            except websocket.WebSocketTimeoutException:
                break
            if len(got) == len(payloads):
                break
    assert got == payloads


def test_pings_fragments_and_binary_go_through_the_library_reader(pair):
    server, ws = pair
    wire = (
        _frame(b'{"a":1}')
        + _frame(b"are you there", opcode=0x9)  # ping between data frames
        + _frame(b'{"a":', opcode=0x1, fin=False)  # fragmented text message
        + _frame(b"2}", opcode=0x0, fin=True)
        + _frame(b"\x00\x01", opcode=0x2)  # binary
        + _frame(b'{"a":3}')
    )
    server.sendall(wire)
    assert _collect(ws, 4) == [b'{"a":1}', b'{"a":2}', b"\x00\x01", b'{"a":3}']
    assert _read_client_frame(server) == (0xA, b"are you there")  # pong, same payload


def test_close_frame_is_answered_and_returns_no_message(pair):
    server, ws = pair
    server.sendall(_frame(b'{"a":1}') + _frame(struct.pack("!H", 1000) + b"bye", opcode=0x8))
    assert _collect(ws, 1) == [b'{"a":1}']
    assert ws.recv_messages() == []
    opcode, data = _read_client_frame(server)
    assert opcode == 0x8 and struct.unpack("!H", data[:2])[0] == 1000


def test_idle_socket_times_out_and_a_dead_one_raises(pair):
    server, ws = pair
    with pytest.raises(websocket.WebSocketTimeoutException):
        ws.recv_messages()
    server.sendall(_frame(b'{"a":1}')[:3])  # half a frame, then the peer dies
    with pytest.raises(websocket.WebSocketTimeoutException):
        ws.recv_messages()
    server.close()
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        ws.recv_messages()


def test_reserved_bits_are_rejected_by_the_library(pair):
    server, ws = pair
    server.sendall(bytes([0x80 | 0x40 | 0x1, 2]) + b"{}")  # RSV1 without a negotiated extension
    with pytest.raises(websocket.WebSocketProtocolException):
        ws.recv_messages()
