"""Pure pieces of the migration layers and of the test-time source rewriting."""
from __future__ import annotations

import pytest

from socketio_sync.compat import flask_socketio, python_socketio
from socketio_sync.compat._dispatch import Dispatcher, accepts, event_args
from tests.compat_sources import literal_blocks, rewrite_imports


def test_event_args_follow_the_tuple_convention() -> None:
    assert event_args(()) == []
    assert event_args((None,)) == []
    assert event_args(({"a": 1},)) == [{"a": 1}]
    assert event_args((("a", 2),)) == ["a", 2]
    assert event_args(([1, 2],)) == [[1, 2]]       # a list is one argument
    assert event_args((1, 2)) == [1, 2]


def test_accepts_reads_the_signature_once() -> None:
    def none() -> None: ...
    def one(auth): ...  # noqa: ANN001
    def opt(auth=None): ...  # noqa: ANN001
    def many(*args): ...  # noqa: ANN002
    assert accepts(none, 0) and not accepts(none, 1)
    assert accepts(one, 1) and not accepts(one, 0)
    assert accepts(opt, 0) and accepts(opt, 1)
    assert accepts(many, 3)
    assert accepts(print, 1)  # builtins without a signature are given the benefit of the doubt


def test_dispatcher_routes_every_event() -> None:
    calls = []
    table = Dispatcher(lambda event, *args: calls.append((event, args)) or "ack")
    (fn,) = table.get("anything")
    assert fn(1, 2) == "ack"
    assert calls == [("anything", (1, 2))]
    with pytest.raises(RuntimeError):
        table.setdefault("x", [])


@pytest.mark.parametrize("module", [flask_socketio, python_socketio])
def test_connection_refused_error_payloads(module: object) -> None:
    err = module.ConnectionRefusedError  # type: ignore[attr-defined]
    assert err().to_payload() == {"message": "Connection rejected by server"}
    assert err("no").to_payload() == {"message": "no"}
    assert err("no", {"a": 1}).to_payload() == {"message": "no", "data": {"a": 1}}
    assert err("no", 1, 2).to_payload() == {"message": "no", "data": [1, 2]}


def test_rewrite_imports_only_touches_flask_socketio_imports() -> None:
    src = "import flask\nfrom flask_socketio import SocketIO, \\\n    emit\n    from flask_socketio import send\nx = 'flask_socketio'\n"
    out = rewrite_imports(src)
    assert out == src.replace("from flask_socketio import", "from socketio_sync.compat.flask_socketio import")
    with pytest.raises(AssertionError):
        rewrite_imports("import flask_socketio\n")


def test_literal_blocks() -> None:
    rst = "Title\n=====\n\nAn example::\n\n    a = 1\n\n    b = 2\n\nText.\n\nAnother::\n\n  c = 3\n"
    assert literal_blocks(rst) == ["a = 1\n\nb = 2\n", "c = 3\n"]
