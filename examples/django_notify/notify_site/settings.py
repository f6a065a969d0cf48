"""Settings of the django_notify example (development values: not for production)."""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-notify-example-not-secret")
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    # First, so that `manage.py runserver` is socketio_sync's (WebSocket support).
    # Set SOCKETIO_SYNC_PLAIN_RUNSERVER=1 to see Django's own: clients fall back to polling.
    *([] if os.environ.get("SOCKETIO_SYNC_PLAIN_RUNSERVER") else ["socketio_sync.integrations.django"]),
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "notes",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

ROOT_URLCONF = "notify_site.urls"
WSGI_APPLICATION = "notify_site.wsgi.application"

TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
    ]},
}]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_DB_PATH", str(BASE_DIR / "db.sqlite3")),
    }
}

STATIC_URL = "static/"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "/login/"

# socketio_sync: everything in one dict.
SOCKETIO_SYNC = {
    "HANDLERS": ["notes.sockets"],
    "OPTIONS": {"ping_interval": 25},
    "REDIS_URL": os.environ.get("REDIS_URL"),  # set it to run several gunicorn workers
}
