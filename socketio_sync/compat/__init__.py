"""Migration layers: the APIs of other Socket.IO servers, built on socketio_sync.

* :mod:`socketio_sync.compat.flask_socketio`: Flask-SocketIO's ``SocketIO``, ``emit``,
  ``send``, ``join_room``... and its test client; an app moves by changing its imports.
* :mod:`socketio_sync.compat.python_socketio`: python-socketio's ``Server`` with its
  sid-based calls (``emit(..., to=sid)``, ``enter_room``, sessions) and ``WSGIApp``.

Nothing here is imported by the rest of socketio_sync.
"""
