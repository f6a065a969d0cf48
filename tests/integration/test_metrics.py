"""The Prometheus endpoint (``socketio_sync.metrics``) scraped before and after real
traffic from the official Node client and a raw Engine.IO client.

Server: ``tests/apps/observe_app.py`` (``Metrics(io).wsgi_app()`` at ``/metrics``; its
Admin UI bridge is on too, but nobody connects to ``/admin`` here).
"""
from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.jsclient import NodeClients
from tests.rawclient import EIOHttp, request

pytestmark = [pytest.mark.integration, pytest.mark.js]

APP = "tests.apps.observe_app:build"
SAMPLE = re.compile(r'^([a-z_]+)(\{[^}]*\})? (\S+)$')


def scrape(url: str) -> dict[str, float]:
    """``{'name{labels}': value}`` of every sample, after checking the format's shape."""
    resp = request(url, "GET", "/metrics")
    assert resp.status == 200
    assert resp.header("content-type") == "text/plain; version=0.0.4; charset=utf-8"
    text = resp.text
    assert text.endswith("\n")
    samples: dict[str, float] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram")
            typed.add(name)
            continue
        if line.startswith("# HELP "):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels, value = m.groups()
        assert re.sub(r"_(bucket|sum|count)$", "", name) in typed, f"{name} has no # TYPE"
        key = name + (labels or "")
        assert key not in samples, f"duplicate sample {key}"
        samples[key] = float(value)
    return samples


def test_metrics_count_real_traffic(live_server: Any, node_clients: NodeClients) -> None:
    nc = node_clients
    srv = live_server(APP)
    before = scrape(srv.url)
    assert before['socketio_connected_sockets{namespace="/"}'] == 0
    assert before['socketio_engine_sessions{transport="websocket"}'] == 0
    assert before["socketio_messages_received_total"] == 0
    assert before["socketio_bytes_received_total"] == 0
    assert before["socketio_ack_latency_seconds_count"] == 0
    assert not any(k.startswith(("socketio_connections_total", "socketio_errors_total")) for k in before)

    nc.connect("alice", srv.url, transports=["websocket"], reconnection=False)
    nc.connect("bob", srv.url, transports=["polling"], reconnection=False)
    nc.connect("carol", srv.url + "/chat", transports=["websocket"], reconnection=False)
    for name in ("alice", "bob"):
        assert nc.call(name, "enter", "lobby") == ["lobby"]
    nc.ack_with("alice", "question", "answer")
    assert nc.call("alice", "ask", "question") == ["answer"]       # a server-initiated ack
    nc.emit("bob", "boom")                                          # the handler raises
    assert nc.call("bob", "echo", "é" * 10) == ["é" * 10]           # after boom: same queue
    # An unsupported protocol version and a broken packet from a raw client.
    assert request(srv.url, "GET", "/socket.io/?EIO=3&transport=polling").status == 400
    eio = EIOHttp(srv.url, path="/socket.io/")
    sid = eio.open()
    assert eio.send(sid, "4" + "9garbage").status == 400            # an invalid Socket.IO packet
    during = scrape(srv.url)
    nc.connect("lost", srv.url + "/nope", transports=["websocket"], reconnection=False,
               expect_error=True)                               # an unknown namespace
    nc.disconnect("alice")
    nc.call("bob", "echo", 1)
    # alice's DISCONNECT travels on her own connection: wait until the server has read it.
    deadline = time.monotonic() + 5
    while True:
        after = scrape(srv.url)
        if after['socketio_connected_sockets{namespace="/"}'] == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.05)

    assert during['socketio_connected_sockets{namespace="/"}'] == 2
    assert during['socketio_connected_sockets{namespace="/chat"}'] == 1
    assert during['socketio_engine_sessions{transport="websocket"}'] == 2
    assert during['socketio_engine_sessions{transport="polling"}'] == 1
    assert after['socketio_connected_sockets{namespace="/"}'] == 1
    assert after['socketio_engine_connections_total{transport="websocket"}'] == 3
    assert after['socketio_engine_connections_total{transport="polling"}'] == 2   # bob, the raw one
    assert after['socketio_connections_total{namespace="/"}'] == 2
    assert after['socketio_connections_total{namespace="/chat"}'] == 1
    assert after['socketio_disconnects_total{namespace="/",reason="client namespace disconnect"}'] == 1
    assert after['socketio_engine_disconnects_total{reason="parse error"}'] == 1
    # enter x2, ask, boom, echo x2 in "/"; the question to alice
    assert after['socketio_events_received_total{namespace="/"}'] == 6
    assert after['socketio_events_sent_total{namespace="/"}'] == 1
    # Socket.IO packets from the clients: CONNECT x4, the 6 events, alice's ack, her
    # DISCONNECT, and the raw client's broken one.
    assert after["socketio_messages_received_total"] == 13
    # ... whose bytes include at least the 10 two-byte "é" of the echo (twice: in and out).
    assert after["socketio_bytes_received_total"] >= 20 + 11 * 2
    assert after["socketio_bytes_sent_total"] > during["socketio_bytes_sent_total"] > 20
    # CONNECT replies x3, the CONNECT_ERROR, acks x5 (enter x2, ask, echo x2; boom asked
    # for none), the question
    assert after["socketio_messages_sent_total"] == 10
    assert after['socketio_errors_total{kind="handler_exception"}'] == 1
    assert after['socketio_errors_total{kind="parse_error"}'] == 1
    assert after['socketio_errors_total{kind="request_refused"}'] == 2   # EIO=3, then the broken POST
    assert after['socketio_errors_total{kind="connection_refused"}'] == 1
    assert after["socketio_ack_latency_seconds_count"] == 1
    assert after['socketio_ack_latency_seconds_bucket{le="+Inf"}'] == 1
    assert 0 < after["socketio_ack_latency_seconds_sum"] < 5
    buckets = [v for k, v in after.items() if k.startswith("socketio_ack_latency_seconds_bucket")]
    assert buckets == sorted(buckets)      # cumulative
    assert after["socketio_engine_upgrades_total"] == 0

    # The endpoint itself: HEAD, other methods, other paths.
    assert request(srv.url, "HEAD", "/metrics").status == 200
    assert request(srv.url, "POST", "/metrics", b"x").status == 405
    assert request(srv.url, "GET", "/metrics/other").status == 404
