"""gunicorn settings for socketio_sync behind nginx (see nginx.conf beside this file).

    REDIS_URL=redis://127.0.0.1:6379/0 gunicorn -c examples/deploy/gunicorn.conf.py app:app

Every worker is a separate process with its own Engine.IO sessions: run one worker per
port behind nginx's ``ip_hash`` (several gunicorn instances), or several workers on one
port for WebSocket-only clients. Rooms and broadcasts cross processes through Redis:
build the server with ``socketio_sync.RedisAdapter(os.environ["REDIS_URL"])``.
"""
import os

bind = os.environ.get("BIND", "127.0.0.1:8001")
workers = int(os.environ.get("WORKERS", "1"))
# socketio_sync's worker: validates WebSocket requests before answering 101 and keeps
# gunicorn's access log. gevent-websocket's worker works too:
#   worker_class = "geventwebsocket.gunicorn.workers.GeventWebSocketWorker"
worker_class = "socketio_sync.gunicorn.GeventWebSocketWorker"
worker_connections = 10000
# a long-poll waits up to ping_interval (25 s by default): keep gunicorn from killing it
timeout = 60
graceful_timeout = 10
accesslog = "-"
