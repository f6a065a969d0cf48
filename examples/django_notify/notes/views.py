import json
from pathlib import Path

from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from socketio_sync.integrations.django import io

from .models import Notification


def login_view(request: HttpRequest) -> HttpResponse:
    """Demo login: any name logs in (the user is created on first use). Not for production."""
    if request.method == "POST":
        name = request.POST.get("username", "").strip()
        if not name or len(name) > 150:
            return render(request, "notes/login.html", {"error": "pick a name"}, status=400)
        user, _ = get_user_model().objects.get_or_create(username=name)
        login(request, user)
        return redirect("index")
    return render(request, "notes/login.html")


@login_required
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "notes/index.html")


@csrf_exempt  # an API for other services; protect it with a token in a real app
@require_POST
def notify(request: HttpRequest, username: str) -> JsonResponse:
    """Store a notification (the ORM) and push it to the user's open pages (a room)."""
    user = get_object_or_404(get_user_model(), username=username)
    try:
        body = json.loads(request.body or b"{}")
        text = str(body["text"])[:500]
    except (ValueError, KeyError, TypeError):
        return HttpResponseBadRequest("JSON body with a 'text' field expected")
    note = Notification.objects.create(user=user, text=text)
    io.to(username).emit("notification", note.as_dict())
    return JsonResponse({"user": username, "id": note.id})


CLIENT_JS = (Path(__file__).resolve().parents[2]
             / "chat" / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js")


def client_js(request: HttpRequest) -> HttpResponse:
    """The official browser client, from examples/chat/node_modules (`make run` or
    `npm ci` in examples/chat fetches it); use your own static files in a real project."""
    try:
        return HttpResponse(CLIENT_JS.read_bytes(), content_type="application/javascript")
    except FileNotFoundError:
        return HttpResponse(f"{CLIENT_JS} is missing: run `npm ci` in examples/chat", status=500,
                            content_type="text/plain")
