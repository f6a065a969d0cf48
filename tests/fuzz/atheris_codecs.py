"""Coverage-guided fuzzing (atheris / libFuzzer) of everything that parses client input:
the Engine.IO packet and payload decoders (v4, and v3 for Socket.IO v2 clients: text and
XHR2 binary payloads, frames with a type byte), the Socket.IO decoder (attachments
included), the v4 namespace query split, the msgpack parser's decoder and the WebSocket
reader's fast path.

A decoder may only return a value or raise ``RemoteProtocolError``; anything else is a
crash. What decodes must survive a round trip through the encoder. The fast WebSocket path
must agree with the ``websockets`` protocol on every input it accepts.

    python tests/fuzz/atheris_codecs.py -max_total_time=600     # a longer run
    python tests/fuzz/atheris_codecs.py CORPUS_DIR -max_total_time=3600

``tests/unit/test_fuzz_atheris.py`` runs it for a bounded time in CI.
"""
from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["socketio_sync"]):
    from socketio_sync import eio, sio
    from socketio_sync.exceptions import RemoteProtocolError
    from socketio_sync.wsgi.websocket import _carry_after, _simple_messages

from websockets.frames import Opcode  # noqa: E402
from websockets.protocol import SERVER, State  # noqa: E402
from websockets.protocol import Protocol as WsProtocol  # noqa: E402


def _eio_payload(text: str) -> None:
    try:
        packets = eio.decode_payload(text, 1000)
    except RemoteProtocolError:
        return
    again = eio.decode_payload(eio.encode_payload(packets), 1000)
    assert again == packets, (text, packets, again)


def _eio_packet(frame: str | bytes) -> None:
    try:
        packet = eio.decode_packet(frame)
    except RemoteProtocolError:
        return
    assert eio.decode_packet(eio.encode_packet(packet)) == packet, (frame, packet)


def _eio3_payload(body: str | bytes) -> None:
    try:
        if isinstance(body, bytes):
            packets = eio.v3.decode_payload_binary(body, 1000)
        else:
            packets = eio.v3.decode_payload(body, 1000)
    except RemoteProtocolError:
        return
    assert eio.v3.decode_payload(eio.v3.encode_payload(packets)) == packets, (body, packets)
    assert eio.v3.decode_payload_binary(eio.v3.encode_payload_binary(packets)) == packets, (body, packets)


def _eio3_packet(frame: str | bytes) -> None:
    try:
        packet = eio.v3.decode_packet(frame)
    except RemoteProtocolError:
        return
    assert eio.v3.decode_packet(eio.v3.encode_packet(packet)) == packet, (frame, packet)


def _sio_v4_connect(nsp: str) -> None:
    try:
        name, query = sio.v4.split_namespace(nsp)
    except RemoteProtocolError:
        return
    assert name.startswith("/") and "?" not in name and isinstance(query, dict), (nsp, name)


def _sio_messages(messages: list[str | bytes]) -> None:
    decoder = sio.Decoder(max_attachments=10)
    encoder = sio.Encoder()
    for message in messages:
        try:
            packet = decoder.add(message)
        except RemoteProtocolError:
            return
        if packet is None:
            continue
        if packet.type in (sio.PacketType.EVENT, sio.PacketType.ACK,
                           sio.PacketType.BINARY_EVENT, sio.PacketType.BINARY_ACK):
            # What the server accepts, it can send back in the same shape.
            check = sio.Decoder(max_attachments=10)
            out = None
            for item in encoder.encode(sio.Packet(packet.type, packet.nsp, packet.data, packet.id)):
                out = check.add(item)
            assert out is not None and out.data == packet.data and out.nsp == packet.nsp, (packet, out)


def _msgpack_message(data: bytes) -> None:
    try:
        packet = sio.MsgpackDecoder().add(data)
    except RemoteProtocolError:
        return
    assert packet is not None
    # What the server accepts, it can send back, and it decodes to the same packet
    # (compared as bytes: NaN is not equal to itself).
    (wire,) = sio.MsgpackEncoder().encode(packet)
    again = sio.MsgpackDecoder().add(wire)
    assert again is not None and sio.MsgpackEncoder().encode(again) == [wire], (data, packet, again)


def _msgpack_packet(fdp: atheris.FuzzedDataProvider) -> None:
    # A well-formed map head with fuzzed fields, to get past the first checks more often.
    ptype = fdp.ConsumeIntInRange(0, 6)
    nsp = fdp.PickValueInList([b"\xa1/", b"\xa5/chat", b"\xa0", b"\x01"])
    head = b"\x84\xa4type" + bytes([ptype]) + b"\xa3nsp" + nsp + b"\xa2id" + \
        fdp.PickValueInList([b"\x01", b"\xc0", b"\xd4\x00\x00", b"\xff"]) + b"\xa4data"
    _msgpack_message(head + fdp.ConsumeBytes(fdp.remaining_bytes()))


def _ws_fast_path(data: bytes) -> None:
    _carry_after(0, data)
    fast = _simple_messages(data, 1 << 16)
    if fast is None:
        return
    proto = WsProtocol(SERVER, state=State.OPEN, max_size=1 << 16)
    proto.receive_data(data)
    slow: list[str | bytes] = []
    for frame in proto.events_received():
        if frame.opcode is Opcode.TEXT:
            slow.append(bytes(frame.data).decode("utf-8"))
        elif frame.opcode is Opcode.BINARY:
            slow.append(bytes(frame.data))
    assert proto.parser_exc is None and fast == slow, (data, fast, slow, proto.parser_exc)


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 9)
    if mode == 0:
        _eio_payload(fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes()))
    elif mode == 1:
        if fdp.ConsumeBool():
            _eio_packet(fdp.ConsumeBytes(fdp.remaining_bytes()))
        else:
            _eio_packet(fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes()))
    elif mode == 2:
        messages: list[str | bytes] = []
        while fdp.remaining_bytes() and len(messages) < 16:
            size = fdp.ConsumeIntInRange(0, 200)
            messages.append(fdp.ConsumeBytes(size) if fdp.ConsumeBool()
                            else fdp.ConsumeUnicodeNoSurrogates(size))
        _sio_messages(messages)
    elif mode == 3:
        # Text that looks like Socket.IO: a type digit, maybe attachments, nsp, id, JSON.
        head = fdp.PickValueInList(["0", "1", "2", "3", "4", "5", "6", "51-", "61-", "2/chat,", "3/a,12"])
        _sio_messages([head + fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes())])
    elif mode == 4:
        _ws_fast_path(fdp.ConsumeBytes(fdp.remaining_bytes()))
    elif mode == 5:
        if fdp.ConsumeBool():
            _eio3_payload(fdp.ConsumeBytes(fdp.remaining_bytes()))
        else:
            _eio3_payload(fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes()))
    elif mode == 6:
        if fdp.ConsumeBool():
            _eio3_packet(fdp.ConsumeBytes(fdp.remaining_bytes()))
        else:
            _eio3_packet(fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes()))
    elif mode == 7:
        _sio_v4_connect("/" + fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes()))
    elif mode == 8:
        _msgpack_message(fdp.ConsumeBytes(fdp.remaining_bytes()))
    else:
        _msgpack_packet(fdp)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
