"""Run a test application on a loopback port in its own process.

Usage: ``python -m tests.apps.serve MODULE:FACTORY [--port N] [--opt key=json ...]``

``FACTORY(**opts)`` returns a WSGI application (usually a ``socketio_sync.WSGIApp``).
The process prints ``LISTENING <port>`` on stdout once the socket is bound, then serves
until it gets SIGTERM/SIGINT.
"""
from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("factory")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--opt", action="append", default=[])
    args = parser.parse_args()
    logging.basicConfig(
        level=os.environ.get("TEST_LOG_LEVEL", "WARNING"),
        format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    opts = {}
    for item in args.opt:
        key, _, value = item.partition("=")
        opts[key] = json.loads(value)
    module_name, _, func_name = args.factory.partition(":")
    factory = getattr(importlib.import_module(module_name), func_name or "build")
    app = factory(**opts)

    from socketio_sync.wsgi.serving import make_server

    server = make_server(app, args.host, args.port)
    server.start()
    print("LISTENING", server.server_port, flush=True)

    def stop(*_: object) -> None:
        gevent.spawn(server.stop, 1)

    gevent.signal_handler(signal.SIGTERM, stop)
    gevent.signal_handler(signal.SIGINT, stop)
    server._stop_event.wait()


if __name__ == "__main__":
    main()
