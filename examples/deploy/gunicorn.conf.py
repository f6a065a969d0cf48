"""gunicorn settings for socketio_sync behind nginx (see nginx.conf beside this file).

    REDIS_URL=redis://127.0.0.1:6379/0 gunicorn -c examples/deploy/gunicorn.conf.py app:app

Every worker is a separate process with its own Engine.IO sessions. With the Redis adapter
any worker answers any request (requests for a session owned by another worker are
forwarded to it over Redis), so ``WORKERS=4`` on one port works for every transport;
behind nginx, ``ip_hash`` over several instances saves the forwarding hop. To restart instances one at a time (a deploy), send each
gunicorn SIGTERM: its clients are disconnected at the transport level, reconnect through
nginx to the instances still running, and the stopped one exits with status 0. Rooms and broadcasts cross processes through Redis:
build the server with ``socketio_sync.RedisAdapter(os.environ["REDIS_URL"])``.
"""
import os

bind = os.environ.get("BIND", "127.0.0.1:8001")
workers = int(os.environ.get("WORKERS", "1"))
# socketio_sync's worker: validates WebSocket requests before answering 101, keeps
# gunicorn's access log, and on SIGTERM closes its clients' connections so that they
# reconnect at once (through nginx, to another instance) instead of holding the worker.
# gevent-websocket's worker works too, without that shutdown:
#   worker_class = "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"
worker_class = "socketio_sync.gunicorn.GeventWebSocketWorker"
worker_connections = 10000
# For gevent workers this is the worker's heartbeat (it reports every second), not a
# limit on requests: long-polls and WebSockets are not cut by it.
timeout = 60
# On SIGTERM socketio_sync's worker stops accepting, closes every Engine.IO session (the
# clients reconnect elsewhere) and exits when its last request is done, usually within a
# second or two; graceful_timeout only bounds requests of the rest of the application.
# (With gevent-websocket's worker, open WebSockets and long-polls keep it alive for all
# of graceful_timeout, then are cut.)
graceful_timeout = 10
accesslog = "-"
