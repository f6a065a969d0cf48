"""The WSGI application: Django, with Socket.IO at /socket.io/.

    gunicorn -k socketio_sync.gunicorn.GeventWebSocketWorker notify_site.wsgi:application
"""
import os

from django.core.wsgi import get_wsgi_application

from socketio_sync.integrations.django import wrap

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notify_site.settings")

application = wrap(get_wsgi_application())
