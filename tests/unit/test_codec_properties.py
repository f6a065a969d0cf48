"""Property tests for both codecs: decoding any input either works or raises our
RemoteProtocolError (never anything else), and encode/decode round-trips."""
from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from socketio_sync import eio, sio
from socketio_sync.exceptions import RemoteProtocolError

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)
with_binary = st.recursive(
    st.one_of(json_scalars, st.binary(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=20,
)
event_names = st.text(min_size=1, max_size=12).filter(lambda s: s not in sio.RESERVED_EVENTS)
namespaces = st.one_of(st.just("/"), st.from_regex(r"/[a-z0-9_-]{1,10}", fullmatch=True))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_eio_payload_decode_never_raises_anything_else(body: str) -> None:
    try:
        eio.decode_payload(body, max_packets=100)
    except RemoteProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=100), st.binary(max_size=100)))
def test_eio_packet_decode_never_raises_anything_else(frame: str | bytes) -> None:
    try:
        eio.decode_packet(frame)
    except RemoteProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=30).filter(lambda t: "\x1e" not in t), st.binary(max_size=30)),
                min_size=1, max_size=8))
def test_eio_payload_round_trip(messages: list[str | bytes]) -> None:
    packets = [eio.Packet(eio.PacketType.MESSAGE, m) for m in messages]
    assert eio.decode_payload(eio.encode_payload(packets)) == packets


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=80), st.binary(max_size=20)), min_size=1, max_size=4))
def test_sio_decoder_never_raises_anything_else(items: list[str | bytes]) -> None:
    dec = sio.Decoder(max_attachments=3)
    for item in items:
        try:
            dec.add(item)
        except RemoteProtocolError:
            return


@settings(max_examples=300, deadline=None)
@given(st.sampled_from("0123456"), namespaces, st.one_of(st.none(), st.integers(0, 10**6)),
       st.one_of(st.none(), json_values))
def test_sio_decoder_on_structured_garbage(ptype: str, nsp: str, ack: int | None, data: Any) -> None:
    import json

    text = ptype + ("" if nsp == "/" else nsp + ",") + ("" if ack is None else str(ack))
    if data is not None:
        text += json.dumps(data)
    try:
        sio.Decoder().add(text)
    except RemoteProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(namespaces, event_names, st.lists(with_binary, max_size=4), st.one_of(st.none(), st.integers(0, 10**9)))
def test_sio_event_round_trip(nsp: str, event: str, args: list[Any], ack: int | None) -> None:
    packet = sio.Packet(sio.PacketType.EVENT, nsp, [event, *args], ack)
    wire = sio.Encoder().encode(packet)
    dec = sio.Decoder(max_attachments=1000)
    results = [dec.add(item) for item in wire]
    got = results[-1]
    assert got is not None and all(r is None for r in results[:-1])
    assert (got.nsp, got.data, got.id) == (nsp, [event, *args], ack)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=5), json_values, max_size=3), st.integers(0, 5))
def test_placeholders_cannot_escape(extra: dict[str, Any], num: int) -> None:
    """A client-made placeholder only ever resolves to one of its own attachments."""
    import json

    placeholder = {"_placeholder": True, "num": num, **extra}
    text = "51-" + json.dumps(["ev", placeholder])
    dec = sio.Decoder()
    try:
        assert dec.add(text) is None
        got = dec.add(b"attachment")
    except RemoteProtocolError:
        return
    assert got is not None
    assert got.data == ["ev", b"attachment"]


# -- Engine.IO v3 and Socket.IO v4 (allow_eio3) ---------------------------------------------

v3_packets = st.lists(
    st.one_of(
        st.builds(eio.Packet, st.just(eio.PacketType.MESSAGE), st.one_of(st.text(max_size=30), st.binary(max_size=30))),
        st.builds(eio.Packet, st.sampled_from([eio.PacketType.PING, eio.PacketType.PONG, eio.PacketType.NOOP])),
    ),
    min_size=1, max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(v3_packets)
def test_eio3_payloads_round_trip(packets: list[eio.Packet]) -> None:
    """Text (lengths in UTF-16 units, any character, the separator included) and XHR2."""
    assert eio.v3.decode_payload(eio.v3.encode_payload(packets)) == packets
    assert eio.v3.decode_payload_binary(eio.v3.encode_payload_binary(packets)) == packets
    for packet in packets:
        assert eio.v3.decode_packet(eio.v3.encode_packet(packet)) == packet


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=100), st.from_regex(r"(\d{1,3}:[0-9b][^:]{0,8}){1,4}", fullmatch=True)))
def test_eio3_text_payload_decode_never_raises_anything_else(body: str) -> None:
    try:
        eio.v3.decode_payload(body, max_packets=100)
    except RemoteProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=100),
                 st.lists(st.tuples(st.integers(0, 1), st.lists(st.integers(0, 9), min_size=1, max_size=3),
                                    st.binary(max_size=12)), max_size=4)
                 .map(lambda recs: b"".join(bytes([k, *ds, 255]) + data for k, ds, data in recs))))
def test_eio3_binary_payload_decode_never_raises_anything_else(body: bytes) -> None:
    try:
        eio.v3.decode_payload_binary(body, max_packets=100)
    except RemoteProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_sio_v4_split_namespace_never_raises_anything_else(nsp: str) -> None:
    try:
        name, query = sio.v4.split_namespace(nsp)
    except RemoteProtocolError:
        return
    assert name.startswith("/") and "?" not in name and isinstance(query, dict)
