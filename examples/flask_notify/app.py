"""Per-user notifications pushed from a REST endpoint, with Flask and socketio_sync.

* ``/login`` is an ordinary form view: it puts the name in ``flask.session["user"]``.
* The page at ``/`` connects with the official Socket.IO client; the browser sends the
  session cookie with the handshake, and the connection handler (which runs in a Flask
  request context built from that handshake) joins the socket to a room named after the
  user. Every tab the user opens is in that room.
* ``POST /api/notify/<user>`` with a JSON body pushes it to that room:
  ``io.to(user).emit("notification", body)``. Any view, a script or another service can
  do that; the answer says how many of the user's sockets are connected.

Run it (the page's client bundle comes from the chat example's ``npm ci``)::

    python examples/flask_notify/app.py [HOST] [PORT]      # 127.0.0.1:5000 by default

or, from the top of the repository, with gunicorn (one worker: the Socket.IO sessions
and, with the default random SECRET_KEY, the login cookies belong to that process)::

    gunicorn -k socketio_sync.gunicorn.GeventWebSocketWorker -w 1 'examples.flask_notify.app:build()'

then log in as alice at http://127.0.0.1:5000/ and, from a shell::

    curl -X POST -H 'Content-Type: application/json' -d '{"text": "hello"}' \\
        http://127.0.0.1:5000/api/notify/alice

The endpoint is open to anyone, to keep the example short: in a real application check
an API key or a logged-in administrator there.
"""
# Run as a script: before anything else, so that blocking libraries yield to other
# greenlets. Imported (by gunicorn's gevent worker, which patches itself, or by tests
# using io.test_client) it leaves the process as it is.
if __name__ == "__main__":
    from gevent import monkey

    monkey.patch_all()

import argparse  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import flask  # noqa: E402

import socketio_sync  # noqa: E402
from socketio_sync.integrations.flask import SocketIO  # noqa: E402

HERE = Path(__file__).resolve().parent
CLIENT_JS = HERE.parent / "chat" / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
MAX_NAME = 32


def build(secret_key: str | None = None, **options: Any) -> flask.Flask:
    """The Flask app, with Socket.IO at ``/socket.io/``; ``options`` go to
    :class:`socketio_sync.Server`."""
    app = flask.Flask(__name__, template_folder=str(HERE / "templates"))
    app.secret_key = secret_key or os.environ.get("SECRET_KEY") or secrets.token_hex(32)
    io = SocketIO(app, **options).io

    # -- Socket.IO: one room per user -----------------------------------------------------

    @io.use
    def logged_in_only(socket: socketio_sync.Socket, next: Any) -> None:
        if "user" not in flask.session:                 # the handshake's cookie session
            return next(socketio_sync.ConnectionRefused("log in first"))
        next()

    @io.on("connection")
    def on_connection(socket: socketio_sync.Socket) -> None:
        socket.join(flask.session["user"])

    # -- pages ----------------------------------------------------------------------------

    @app.get("/")
    def index() -> Any:
        if "user" not in flask.session:
            return flask.redirect(flask.url_for("login"))
        return flask.render_template("index.html", user=flask.session["user"])

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        error = None
        if flask.request.method == "POST":
            user = flask.request.form.get("user", "").strip()
            if user and len(user) <= MAX_NAME:
                flask.session["user"] = user
                return flask.redirect(flask.url_for("index"))
            error = f"Enter a name of 1 to {MAX_NAME} characters."
        return flask.render_template("login.html", error=error), 400 if error else 200

    @app.post("/logout")
    def logout() -> Any:
        flask.session.pop("user", None)
        return flask.redirect(flask.url_for("login"))

    @app.get("/socket.io.min.js")
    def client_bundle() -> Any:
        if not CLIENT_JS.is_file():
            return f"{CLIENT_JS} is missing: run `npm ci` in examples/chat\n", 500, {"Content-Type": "text/plain"}
        return flask.send_file(CLIENT_JS, mimetype="application/javascript")

    # -- the REST endpoint ----------------------------------------------------------------

    @app.post("/api/notify/<user>")
    def notify(user: str) -> Any:
        body = flask.request.get_json(silent=True)
        if body is None:
            return {"error": "send a JSON body (Content-Type: application/json)"}, 400
        io.to(user).emit("notification", body)
        return {"user": user, "sockets": len(io.in_(user).fetch_sockets())}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="socketio_sync Flask notifications example")
    parser.add_argument("host", nargs="?", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("port", nargs="?", type=int, default=int(os.environ.get("PORT", "5000")))
    args = parser.parse_args(argv)
    print(f"notifications example on http://{args.host}:{args.port}/ (Ctrl+C stops)", flush=True)
    socketio_sync.run(build(), args.host, args.port)


if __name__ == "__main__":
    main()
