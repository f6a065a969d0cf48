"""The local links of session forwarding (socketio_sync/wsgi/cluster.py): Unix sockets
between the processes of one host, with the same message semantics as a Redis channel."""
from __future__ import annotations

import os
from gevent import socket

import gevent
import pytest

from socketio_sync.wsgi.cluster import _LocalLinks


@pytest.fixture
def links(tmp_path):  # type: ignore[no-untyped-def]
    made = []

    def make(received: list[bytes]) -> _LocalLinks:
        link = _LocalLinks(str(tmp_path), "socket.io", received.append)
        made.append(link)
        return link

    yield make
    for link in made:
        if link._server is not None:
            link._server.stop()


def test_messages_arrive_in_order_and_unknown_nodes_go_to_redis(links) -> None:  # type: ignore[no-untyped-def]
    got_a: list[bytes] = []
    a = links(got_a)
    a.start("nodeAAAA")
    b = links([])
    b.start("nodeBBBB")
    for i in range(200):
        assert b.send("nodeAAAA", b"m%d" % i + b"x" * (i * 37)) == 1
    with gevent.Timeout(5):
        while len(got_a) < 200:
            gevent.sleep(0.01)
    assert [m.split(b"x")[0] for m in got_a] == [b"m%d" % i for i in range(200)]
    assert b.send("elsewher", b"hi") is None  # not on this host: the caller uses Redis


def test_a_dead_peer_reads_as_gone_and_its_socket_is_removed(links, tmp_path) -> None:  # type: ignore[no-untyped-def]
    b = links([])
    b.start("nodeBBBB")
    stale = os.path.join(str(tmp_path), "socket_io-deadnode.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(stale)
    sock.close()  # bound, never listening: what a SIGKILLed process leaves behind
    assert b.knows("deadnode")
    assert b.send("deadnode", b"hello") == 0
    assert not os.path.exists(stale)
    assert b.send("deadnode", b"hello") is None


def test_oversized_frame_closes_only_that_link(links) -> None:  # type: ignore[no-untyped-def]
    got: list[bytes] = []
    a = links(got)
    a.start("nodeAAAA")
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.connect(a.path("nodeAAAA"))
    raw.sendall((_LocalLinks.MAX_FRAME + 1).to_bytes(4, "big"))
    raw.settimeout(5)
    assert raw.recv(10) == b""  # closed
    b = links([])
    b.start("nodeBBBB")
    assert b.send("nodeAAAA", b"still fine") == 1
    with gevent.Timeout(5):
        while not got:
            gevent.sleep(0.01)
    assert got == [b"still fine"]
