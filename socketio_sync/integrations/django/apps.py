"""The Django app: ``"socketio_sync.integrations.django"`` in ``INSTALLED_APPS`` gives
``manage.py runserver`` WebSocket support and loads ``SOCKETIO_SYNC["HANDLERS"]``."""
from __future__ import annotations

from django.apps import AppConfig


class SocketIOSyncConfig(AppConfig):
    name = "socketio_sync.integrations.django"
    label = "socketio_sync"
    verbose_name = "socketio_sync"

    def ready(self) -> None:
        from . import load_handlers, settings_dict

        settings_dict()  # a bad SOCKETIO_SYNC fails at startup, not at the first connection
        load_handlers()
