"""The Django integration through ``examples/django_notify``: ``manage.py runserver``
(socketio_sync's, with WebSocket; and Django's plain one, polling only) and gunicorn with
socketio_sync's gevent WebSocket worker.

Clients log in through the example's login form; their session cookie gives handlers
``socket.request.user``, the ``history`` handler reads the ORM and ``POST
/api/notify/<user>`` (a Django view) stores a notification and emits it to the user's
room. Every test has its own SQLite database, migrated first.
"""
from __future__ import annotations

import json
import queue
import socket
from pathlib import Path
from typing import Any, Callable

import pytest
import requests
import socketio

from tests.devservers import (  # noqa: F401  (dev_server: fixture)
    DJANGO_EXAMPLE, DevServer, cookie_header, dev_server, disconnect_python_client, django_env, django_login, migrate,
    notify, runserver,
)
from tests.jsclient import NodeClients

pytestmark = [pytest.mark.integration]

DevServerFactory = Callable[..., DevServer]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "notify.sqlite3"
    migrate(path)
    return path


def node_connect(nc: NodeClients, name: str, url: str, transports: list[str], cookie: str | None = None,
                 **opts: Any) -> dict[str, Any]:
    if cookie is not None:
        opts["extraHeaders"] = {"Cookie": cookie}
    return nc.connect(name, url, transports=transports, reconnection=False, **opts)


def check_user_orm_and_view_emit(nc: NodeClients, name: str, url: str, username: str,
                                 earlier: list[dict[str, Any]]) -> None:
    """``request.user`` in handlers, the ORM in ``history``, and a view's emit to the room."""
    who = nc.call(name, "whoami")[0]
    assert who["username"] == username and isinstance(who["id"], int)
    assert [{"id": n["id"], "text": n["text"]} for n in nc.call(name, "history")[0]] == earlier
    sent = notify(url, username, f"hello {username}")
    note = nc.wait_for_event(name, "notification")[0]
    assert (note["id"], note["text"]) == (sent["id"], f"hello {username}")
    assert [n["text"] for n in nc.call(name, "history")[0]] == [n["text"] for n in earlier] + [note["text"]]


def websocket_requests(srv: DevServer) -> int:
    """WebSocket requests runserver logged: it logs "101" once the WebSocket is over."""
    return srv.count(r'"GET /socket\.io/\?[^"]*transport=websocket[^"]* HTTP/1\.1" 101')


def finish(srv: DevServer, nc: NodeClients, names: list[str], websockets: int) -> None:
    """Disconnect, wait for runserver to log the end of every WebSocket, stop it and check
    the whole log: no traceback, and no "Bad request" from reading a taken-over socket."""
    for name in names:
        nc.disconnect(name)
    srv.wait_for_log(lambda lines: websocket_requests(srv) >= websockets, what=f"{websockets} WebSocket(s) ending")
    assert requests.get(srv.url + "/login/", timeout=5).status_code == 200
    srv.stop()
    srv.assert_clean_log()


def handshake(url: str, cookie: str | None = None) -> dict[str, Any]:
    resp = requests.get(url + "/socket.io/", params={"EIO": "4", "transport": "polling"},
                        headers={"Cookie": cookie} if cookie else {}, timeout=5)
    assert resp.status_code == 200 and resp.text.startswith("0"), (resp.status_code, resp.text)
    return json.loads(resp.text[1:])


def raw_websocket_request(port: int) -> str:
    """A WebSocket handshake to /socket.io/; returns the status line and headers."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.decode("latin-1")


# ------------------------------------------------------------------ manage.py runserver (ours)

@pytest.mark.js
@pytest.mark.parametrize("transports", [["websocket"], ["polling", "websocket"]], ids=["websocket", "upgrade"])
def test_runserver_user_orm_and_view_emit(dev_server: DevServerFactory, db: Path, node_clients: NodeClients,
                                          transports: list[str]) -> None:
    srv = runserver(dev_server, db)
    nc = node_clients
    http = django_login(srv.url, "alice")
    first = notify(srv.url, "alice", "before connecting")
    node_connect(nc, "n1", srv.url, transports, cookie_header(http))
    opened = nc.wait_for("n1", "manager_open")
    assert opened["transport"] == transports[0]
    if len(transports) == 2:
        assert opened["upgrades"] == ["websocket"]
        assert nc.wait_for("n1", "upgrade")["transport"] == "websocket"
    assert nc.state("n1")["transport"] == "websocket"
    check_user_orm_and_view_emit(nc, "n1", srv.url, "alice",
                                 [{"id": first["id"], "text": "before connecting"}])
    # Not for another user: bob's notification does not reach alice.
    django_login(srv.url, "bob")
    notify(srv.url, "bob", "for bob")
    assert nc.call("n1", "whoami")[0]["username"] == "alice"
    nc.sync()
    assert [m[0]["text"] for m in nc.messages("n1", "notification")] == ["hello alice"]
    finish(srv, nc, ["n1"], websockets=1)


@pytest.mark.js
def test_runserver_refuses_anonymous_clients(dev_server: DevServerFactory, db: Path,
                                             node_clients: NodeClients) -> None:
    srv = runserver(dev_server, db)
    reply = node_connect(node_clients, "anon", srv.url, ["websocket"], expect_error=True)
    assert reply["error"]["message"] == "log in first"
    reply = node_connect(node_clients, "anon2", srv.url, ["polling"], expect_error=True)
    assert reply["error"]["message"] == "log in first"
    srv.wait_for_log(lambda lines: websocket_requests(srv) >= 1, what="the refused WebSocket ending")
    srv.stop()
    srv.assert_clean_log()


@pytest.mark.parametrize("plain", [False, True], ids=["ours", "plain"])
def test_runserver_polling_request_with_connection_close(dev_server: DevServerFactory, db: Path,
                                                         plain: bool) -> None:
    """Node's socket.io-client sends ``Connection: close`` on its polling requests. wsgiref
    (under runserver) refuses hop-by-hop headers from the application, so the engine's
    answer must not carry one."""
    srv = runserver(dev_server, db, plain=plain)
    resp = requests.get(srv.url + "/socket.io/", params={"EIO": "4", "transport": "polling"},
                        headers={"Connection": "close"}, timeout=5)
    assert resp.status_code == 200, (resp.status_code, resp.text, srv.log)
    assert json.loads(resp.text[1:])["upgrades"] == ([] if plain else ["websocket"])
    srv.stop()
    assert "Traceback" not in srv.log, srv.log


# ------------------------------------------------------------------ Django's plain runserver

def test_plain_runserver_offers_no_upgrade_and_polling_works(dev_server: DevServerFactory, db: Path) -> None:
    srv = runserver(dev_server, db, plain=True)
    http = django_login(srv.url, "carl")
    cookie = cookie_header(http)
    assert handshake(srv.url, cookie)["upgrades"] == []
    # A WebSocket request cannot be served: 400, and clients fall back to polling.
    status = raw_websocket_request(srv.port).split("\r\n", 1)[0]
    assert status.split()[1] == "400", status
    got: queue.Queue[Any] = queue.Queue()
    client = socketio.Client(reconnection=False)
    client.on("notification", got.put)
    client.connect(srv.url, headers={"Cookie": cookie}, transports=["polling", "websocket"])
    try:
        assert client.transport() == "polling"
        who = client.call("whoami", timeout=5)
        assert who["username"] == "carl"
        assert client.call("history", timeout=5) == []
        sent = notify(srv.url, "carl", "polling works")
        note = got.get(timeout=5)
        assert (note["id"], note["text"]) == (sent["id"], "polling works")
        assert client.call("history", timeout=5) == [note]
    finally:
        disconnect_python_client(client)
    srv.stop()
    assert "Traceback" not in srv.log, srv.log


@pytest.mark.js
def test_plain_runserver_node_client_stays_on_polling(dev_server: DevServerFactory, db: Path,
                                                      node_clients: NodeClients) -> None:
    srv = runserver(dev_server, db, plain=True)
    nc = node_clients
    cookie = cookie_header(django_login(srv.url, "dora"))
    node_connect(nc, "n1", srv.url, ["polling", "websocket"], cookie)
    assert nc.wait_for("n1", "manager_open")["upgrades"] == []
    check_user_orm_and_view_emit(nc, "n1", srv.url, "dora", [])
    nc.sync()
    assert nc.events("n1", "upgrade") == [] and nc.events("n1", "upgrading") == []
    assert nc.state("n1")["transport"] == "polling"
    # A WebSocket-only client cannot connect at all.
    reply = node_connect(nc, "ws", srv.url, ["websocket"], cookie, expect_error=True)
    assert reply["error"]["message"] == "websocket error", reply
    nc.disconnect("n1")
    srv.stop()
    assert "Traceback" not in srv.log, srv.log


# ------------------------------------------------------------------ gunicorn

@pytest.mark.js
def test_gunicorn_user_orm_and_view_emit(gunicorn_server: Any, db: Path, node_clients: NodeClients) -> None:
    srv = gunicorn_server("notify_site.wsgi:application", cwd=DJANGO_EXAMPLE, env=django_env(db))
    nc = node_clients
    http = django_login(srv.url, "erin")
    cookie = cookie_header(http)
    first = notify(srv.url, "erin", "stored earlier")
    earlier = [{"id": first["id"], "text": "stored earlier"}]

    # python-socketio over polling, logged in as the same user (so in the same room).
    got: queue.Queue[Any] = queue.Queue()
    py = socketio.Client(reconnection=False)
    py.on("notification", got.put)
    py.connect(srv.url, headers={"Cookie": cookie}, transports=["polling"])
    try:
        assert py.transport() == "polling"
        assert py.call("whoami", timeout=5)["username"] == "erin"
        assert [n["text"] for n in py.call("history", timeout=5)] == ["stored earlier"]

        node_connect(nc, "n1", srv.url, ["websocket"], cookie)
        assert nc.state("n1")["transport"] == "websocket"
        check_user_orm_and_view_emit(nc, "n1", srv.url, "erin", earlier)
        # The view's emit went to the room "erin": the Python client has it too.
        assert got.get(timeout=5)["text"] == "hello erin"
    finally:
        disconnect_python_client(py)

    # Anonymous clients are refused by the handlers' middleware.
    reply = node_connect(nc, "anon", srv.url, ["websocket"], expect_error=True)
    assert reply["error"]["message"] == "log in first"
    errors: queue.Queue[Any] = queue.Queue()
    anon = socketio.Client(reconnection=False)
    anon.on("connect_error", errors.put)
    with pytest.raises(socketio.exceptions.ConnectionError):
        anon.connect(srv.url, transports=["polling"], wait_timeout=5)
    assert errors.get(timeout=5) == {"message": "log in first"}
    anon.disconnect()
    nc.disconnect("n1")
    assert srv.stop() == 0
    output = "\n".join(srv.output)
    assert "Traceback" not in output, output
